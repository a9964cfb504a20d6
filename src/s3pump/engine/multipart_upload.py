"""One multipart upload as a state object: create (or the resume check of a journaled upload),
parts handed out, completion, abort.

The scheduler owns the requests (slots, part buffers, retries, timeouts); a
:class:`MultipartUpload` is asked for its next part and told how each part settled, and runs its
control-plane calls (CreateMultipartUpload, ListParts, CompleteMultipartUpload,
AbortMultipartUpload) on the engine's control pool. Everything here runs on the scheduler thread.
An upload's abort is registered the moment CreateMultipartUpload returns (:class:`~.uploads.OpenUploads`);
every way out (a failed part, a changed source, a failed completion) aborts it through that registry.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..config import TransferConfig
from ..errors import NoSuchUploadError, S3PumpError, SourceError
from ..events import EventBus, FileDone, FileFailed, MultipartCreated, MultipartCreating, PartDone, SourceRead
from ..items import PartSource, UploadItem
from ..retry import RetryPolicy
from ..store.base import CompletedPart, PutResult, Store
from ..store.body import PartBody, Throttled
from .completion import complete_upload
from .control import ControlPool
from .inflight import Req
from .limits import TokenBucket
from .multipart import FilePartSource, part_size_for
from .put import sent_attrs
from .resume import list_and_verify_parts, listing_unsupported
from .uploads import OpenUploads, report_abort

__all__ = ["MultipartContext", "MultipartUpload"]


@dataclass(slots=True)
class MultipartContext:
    """What the multipart uploads of one engine share (used on the scheduler thread only)."""

    store: Store
    bucket: str
    config: TransferConfig
    bus: EventBus
    policy: RetryPolicy
    uploads: OpenUploads
    control: ControlPool
    cancel: threading.Event
    wakeup: Callable[[], None]
    #: uploads with parts left to hand out, in round-robin order
    active: deque[MultipartUpload] = field(default_factory=deque)
    #: upload ID -> upload, while this engine works on it (not completing, not aborting)
    open: dict[str, MultipartUpload] = field(default_factory=dict)
    #: uploads started and not finished
    count: int = 0


class MultipartUpload:
    """The multipart upload of ``item``, its parts read from ``source``; see :meth:`start`."""

    __slots__ = ("attempts", "ctx", "done_parts", "exhausted", "failed", "item", "parts_in_flight", "source",
                 "started", "upload_id")

    def __init__(self, ctx: MultipartContext, item: UploadItem, source: PartSource) -> None:
        self.ctx = ctx
        self.item = item
        self.source = source
        self.upload_id: str | None = None
        self.done_parts: dict[int, CompletedPart] = {}
        self.parts_in_flight = 0
        self.exhausted = False
        self.failed: S3PumpError | None = None
        self.started = time.monotonic()
        self.attempts = 1  # of CreateMultipartUpload

    @classmethod
    def start(cls, ctx: MultipartContext, item: UploadItem) -> None:
        """Start ``item``'s upload: a file's journaled upload is checked (ListParts and a re-read,
        :func:`~s3pump.engine.resume.list_and_verify_parts`), any other is created. A file that
        cannot be opened fails at once (FileFailed)."""
        resume = item.resume
        source: PartSource
        try:
            if item.parts is not None:
                source = item.parts
            else:
                assert item.path is not None
                part_size = (resume.part_size_bytes if resume is not None
                             else part_size_for(item.size_bytes, ctx.config.part_size_bytes))
                source = FilePartSource(item.path, item.size_bytes, item.mtime_ns, part_size,
                                        identity=item.identity, follow=ctx.config.follow_symlinks)
        except S3PumpError as e:
            ctx.bus.emit(FileFailed(item.source, item.key, item.size_bytes, e))
            return
        mp = cls(ctx, item, source)
        source.bind(ctx.wakeup)
        ctx.count += 1
        if resume is not None and isinstance(source, FilePartSource):
            ctx.control.call(mp._on_listed, list_and_verify_parts, ctx.store, ctx.bucket, item.key, resume, source,
                             ctx.config.sse)
            return
        mp._create()

    # ------------------------------------------------------------------ create / resume
    def _create(self, delay_s: float = 0.0) -> None:
        """Send CreateMultipartUpload, announced first (MultipartCreating) so a journal records the
        intent before the upload can exist."""
        ctx = self.ctx
        ctx.bus.emit(MultipartCreating(self.item.key))
        ctx.control.call(self._on_created, ctx.uploads.create, self.item.key, sent_attrs(self.item, ctx.config),
                         creates=self, delay_s=delay_s)

    def _on_created(self, result: str | S3PumpError) -> None:
        ctx = self.ctx
        if isinstance(result, S3PumpError):
            delay = None if ctx.cancel.is_set() else ctx.policy.decide(result, self.attempts, (self.item.key, None))
            if delay is not None:
                self.attempts += 1
                self._create(delay)
                return
            self.finish(result)
            return
        self.upload_id = result  # OpenUploads.create registered its abort before it returned
        ctx.open[result] = self
        ctx.bus.emit(MultipartCreated(self.item.key, result, self.source.part_size_bytes))
        if ctx.cancel.is_set():
            return
        ctx.active.append(self)

    def adopt_created(self, upload_id: str, *, announce: bool) -> None:
        """A CreateMultipartUpload answered while the engine was stopping: the upload is open (and
        ``announce``: told as MultipartCreated, for a journal that keeps it)."""
        self.upload_id = upload_id
        self.ctx.open[upload_id] = self
        if announce:
            self.ctx.bus.emit(MultipartCreated(self.item.key, upload_id, self.source.part_size_bytes))

    def _on_listed(self, result: dict[int, CompletedPart] | S3PumpError) -> None:
        """A journaled upload was checked: keep the verified parts, send the rest. An unknown upload
        starts over; so does one on a server without ListParts (its upload is aborted first)."""
        ctx, item = self.ctx, self.item
        resume = item.resume
        assert resume is not None and isinstance(self.source, FilePartSource)
        if isinstance(result, NoSuchUploadError):
            self._create()
            return
        if isinstance(result, S3PumpError) and listing_unsupported(result):
            ctx.control.call(self._on_stale_aborted, ctx.uploads.abort, item.key, resume.upload_id)
            return
        if isinstance(result, S3PumpError):
            self.finish(result)  # the journal keeps the upload for the next rerun
            return
        self.done_parts.update(result)
        self.source.skip_parts(set(self.done_parts))
        self.upload_id = resume.upload_id
        ctx.open[resume.upload_id] = self
        ctx.uploads.register(item.key, resume.upload_id)  # adopted from the journal
        if ctx.cancel.is_set():
            return
        ctx.active.append(self)

    def _on_stale_aborted(self, error: S3PumpError | None) -> None:
        """The upload a resume could not check was aborted (or its abort failed and stays
        recorded): start the file over."""
        resume = self.item.resume
        assert resume is not None
        report_abort(self.ctx.bus, self.ctx.bucket, self.item.key, resume.upload_id, error,
                     "resume not possible: the server has no ListParts")
        self._create()

    # ------------------------------------------------------------------ parts
    def next_part(self) -> tuple[int, PartBody] | Literal[False] | None:
        """The next part to send (counted in flight), None when the source has none ready yet (it
        wakes the engine once it has), or False when this upload hands out no more parts (all handed
        out, or it failed)."""
        if self.failed is not None:
            return False
        try:
            nxt = self.source.next_part()
        except StopIteration:
            self.exhausted = True
            self.maybe_complete()
            return False
        except S3PumpError as e:
            self.fail(e)
            return False
        if nxt is not None:
            if self.source.counts_reads:
                self.ctx.bus.emit(SourceRead(len(nxt[1])))
            self.parts_in_flight += 1
        return nxt

    def part_done(self, part_number: int, size_bytes: int, result: PutResult, latency_s: float) -> None:
        """Part ``part_number`` is stored (PartDone); :meth:`release_part` follows."""
        assert self.upload_id is not None
        self.done_parts[part_number] = CompletedPart(part_number, result.etag, size_bytes, result.checksum)
        self.ctx.bus.emit(PartDone(self.item.key, self.upload_id, part_number, size_bytes, result.etag,
                                   result.checksum, latency_s))

    def send_part(self, req: Req, bw: TokenBucket | None, done: Callable[[PutResult | S3PumpError], None]) -> None:
        """Start UploadPart of ``req``'s part (paced by ``bw`` when given); ``done`` gets its result.
        Raises S3PumpError when refused before it started."""
        assert self.upload_id is not None and req.body is not None
        body = req.body if bw is None else Throttled(req.body, bw, sent=req.sent)
        req.handle = self.ctx.store.upload_part(self.ctx.bucket, self.item.key, self.upload_id, req.part_number,
                                                body, done)

    def late_part_done(self, req: Req, result: PutResult) -> None:
        """A part stored while the engine was stopping: PartDone, so a journal keeps it for the rerun."""
        if self.upload_id is not None:
            self.part_done(req.part_number, len(req.body or b""), result, time.monotonic() - req.first_started)

    def part_failed(self, error: S3PumpError) -> None:
        """A part failed for good; :meth:`release_part` follows (and aborts the upload)."""
        if self.failed is None:
            self.failed = error

    def release_part(self, part_number: int) -> None:
        """A part handed out settled (stored, or failed for good): its source may reuse its buffer."""
        self.parts_in_flight -= 1
        self.source.release(part_number)
        self.maybe_complete()

    def fail(self, error: S3PumpError) -> None:
        """The upload fails with ``error``: aborted once no part is in flight."""
        if self.failed is None:
            self.failed = error
        self.maybe_complete()

    # ------------------------------------------------------------------ complete / abort
    def maybe_complete(self) -> None:
        """Called whenever a part settles: complete, or abort, once nothing is in flight."""
        ctx = self.ctx
        if self.parts_in_flight or self.upload_id is None or self.upload_id not in ctx.open:
            return
        if self.failed is not None:
            self._abort(self.failed)
            return
        if not self.exhausted:
            return
        try:
            self.source.finish()
        except SourceError as e:
            self._abort(e)
            return
        parts = [self.done_parts[n] for n in sorted(self.done_parts)]
        del ctx.open[self.upload_id]
        # a source that read the bytes itself (a stream) knows the whole object's checksum: the server checks it
        full = self.source.full_object_checksum
        ctx.control.call(self._on_completed, self._complete, self.upload_id, parts, full)

    def _complete(self, upload_id: str, parts: list[CompletedPart],
                  full_object_checksum: tuple[str, str] | None) -> PutResult:
        """CompleteMultipartUpload, retried (control thread); the registry forgets the upload then."""
        ctx = self.ctx
        result = complete_upload(ctx.policy, ctx.store, ctx.bucket, self.item.key, upload_id, parts,
                                 full_object_checksum)
        ctx.uploads.completed(upload_id)
        return result

    def _on_completed(self, result: PutResult | S3PumpError) -> None:
        if isinstance(result, S3PumpError):
            assert self.upload_id is not None
            self.ctx.open[self.upload_id] = self
            self._abort(result)
            return
        self.finish(None)
        item = self.item
        size = sum(p.size_bytes for p in self.done_parts.values())
        self.ctx.bus.emit(FileDone(item.source, item.key, size, result.etag, time.monotonic() - self.started,
                                   1, len(self.done_parts), result.version_id, result.checksum))

    def _abort(self, error: S3PumpError) -> None:
        assert self.upload_id is not None
        ctx = self.ctx
        ctx.open.pop(self.upload_id, None)
        self.failed = error
        ctx.control.call(self._on_aborted, ctx.uploads.abort, self.item.key, self.upload_id)

    def _on_aborted(self, abort_error: S3PumpError | None) -> None:
        assert self.upload_id is not None and self.failed is not None
        report_abort(self.ctx.bus, self.ctx.bucket, self.item.key, self.upload_id, abort_error, str(self.failed))
        self.finish(self.failed)

    def finish(self, error: S3PumpError | None) -> None:
        """The upload is over (completed, aborted, or never created): its source is closed, and a
        failure reported (FileFailed)."""
        self.ctx.count -= 1
        self.source.close()
        if error is not None:
            item = self.item
            self.ctx.bus.emit(FileFailed(item.source, item.key, item.size_bytes, error))
