"""The transfer engine: every job's uploads run through :class:`Engine`.

One scheduler thread owns all state. Store callbacks (awscrt threads) and the
control-plane pool only put completions on a queue; the scheduler takes them off,
decides (done, retry, fail, next part), and emits events. So no state is shared
between threads and subscribers need no locks.

Bounds enforced here:

* requests in flight (single PUTs + parts) <= ``concurrency``
* part buffers held (in flight or awaiting retry) <= ``max_parts_in_flight``,
  so multipart memory <= ``max_parts_in_flight * part_size_bytes``
* active multipart uploads <= ``max_parts_in_flight``; while one more large item
  waits, no further items are pulled from the source (the source's own bounded
  queue then applies back-pressure to the walk).

A multipart upload's abort is registered the moment CreateMultipartUpload
returns (:class:`~s3pump.engine.uploads.OpenUploads`, the run's one registry); every
way out (failure, source change, cancel) aborts it through that registry. A part or PUT
that fails with a retryable error is retried as the run's
:class:`~s3pump.retry.RetryPolicy` decides (full-jitter backoff, one budget); what still
fails is reported as a :class:`~s3pump.events.FileFailed`, never dropped.

The engine installs no signal handlers: :meth:`Engine.cancel` is thread-safe, and the
:class:`~s3pump.run.Run` (or any caller) calls it.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..config import TransferConfig
from ..errors import (
    BadDigestError,
    CancelledError,
    FatalStoreError,
    NoSuchUploadError,
    RequestTimeoutError,
    S3PumpError,
    SourceChangedError,
    SourceError,
    ThrottlingError,
)
from ..events import (
    ConcurrencyChanged,
    EventBus,
    FileDone,
    FileFailed,
    MultipartAborted,
    MultipartAbortFailed,
    MultipartCreated,
    MultipartCreating,
    PartDone,
    RetryScheduled,
    SourceRead,
    Tick,
)
from ..fileid import FileIdentity, fd_path, open_version
from ..items import PartSource, UploadItem
from ..retry import RetryPolicy
from ..store.base import CompletedPart, ObjectAttributes, PutResult, Request, Store
from ..store.body import FileRange, PartBody, SentBytes, Throttled
from .completion import complete_with_retries
from .limits import ConcurrencyDecision, EngineLimits
from .multipart import FilePartSource, part_size_for
from .resume import list_and_verify_parts, listing_unsupported
from .throttle import ThrottleRate
from .uploads import OpenUploads

__all__ = ["Engine"]

_log = logging.getLogger("s3pump.engine")


#: A request's timeout grows with its body: ``_TIMEOUT_FLOOR_S + size / _TIMEOUT_MIN_RATE_BPS``,
#: capped at ``config.request_timeout_s``. A stalled 4 KiB PUT is retried after 15 s, not
#: after the 300 s a 5 GiB part may need on a slow link.
_TIMEOUT_FLOOR_S = 15.0
_TIMEOUT_MIN_RATE_BPS = 256 * 1024


def _timeout_for(size_bytes: int, cap_s: float) -> float:
    return min(cap_s, _TIMEOUT_FLOOR_S + size_bytes / _TIMEOUT_MIN_RATE_BPS)


@dataclass(slots=True)
class _Multipart:
    item: UploadItem
    source: PartSource | None = None
    upload_id: str | None = None
    done_parts: dict[int, CompletedPart] = field(default_factory=dict)
    parts_in_flight: int = 0
    exhausted: bool = False
    failed: S3PumpError | None = None
    started: float = 0.0
    attempts: int = 1


@dataclass(slots=True)
class _Req:
    """A data-plane request in flight: a single PUT (``mp is None``) or one part."""

    item: UploadItem
    mp: _Multipart | None = None
    part_number: int = 0
    body: PartBody | None = None
    attempt: int = 1
    started: float = 0.0
    first_started: float = 0.0
    handle: Request | None = None
    timed_out: bool = False
    retried_after: S3PumpError | None = None  # the error of the last retry (its cost is refunded on success)
    timeout_s: float = 0.0
    fd: int | None = None  # a file opened for a paced (--bwlimit) single PUT
    sent: SentBytes | None = None  # the bytes of a paced body read so far (this attempt)


@dataclass(slots=True)
class _Settled:
    """A data-plane request finished (put on the queue by a store callback)."""

    req: _Req
    result: PutResult | S3PumpError


@dataclass(slots=True)
class _Answered:
    """A control-plane call returned (put on the queue by a control thread)."""

    handler: Callable[[Any, Any], None]
    mp: Any
    result: Any
    creates: bool = False  # the call was a CreateMultipartUpload


class Engine:
    """Runs :class:`UploadItem` s against a :class:`~s3pump.store.base.Store`.

    ``run`` may be called once. ``cancel()`` may be called from any thread (e.g. a
    signal handler): in-flight requests are cancelled, open multipart uploads
    aborted, and ``run`` raises :class:`~s3pump.errors.CancelledError`. With
    ``keep_uploads_on_cancel`` (a resume journal records them), open multipart uploads
    are left for a rerun to resume instead (``s3pump cleanup`` aborts orphans).

    ``policy`` and ``uploads`` are the run's retry policy and upload registry (a
    :class:`~s3pump.run.Run` passes its own); by default the engine makes its own, and the
    policy's retries are reported as :class:`~s3pump.events.RetryScheduled` on ``bus``.
    ``limits``: limits shared with other engines of this process (a cluster worker's); by default
    the engine makes its own from ``config``.
    """

    def __init__(self, store: Store, bucket: str, config: TransferConfig, bus: EventBus, *,
                 keep_uploads_on_cancel: bool = False, policy: RetryPolicy | None = None,
                 uploads: OpenUploads | None = None, limits: EngineLimits | None = None) -> None:
        self.keep_uploads_on_cancel = keep_uploads_on_cancel
        self.store = store
        self.bucket = bucket
        self.config = config
        self.bus = bus
        self.limit = config.concurrency
        if policy is None:
            def on_retry(what: tuple[str, int | None], attempt: int, delay_s: float, error: S3PumpError) -> None:
                bus.emit(RetryScheduled(what[0], what[1], attempt, delay_s, error))

            policy = RetryPolicy.from_config(config, on_retry)
        self.policy = policy
        self.uploads = uploads if uploads is not None else OpenUploads(store, bucket, policy)
        self._q: queue.SimpleQueue[_Settled | _Answered | None] = queue.SimpleQueue()
        self._inflight: dict[int, _Req] = {}
        self._buffers = 0
        self._retries: list[tuple[float, int, _Req]] = []
        self._seq = itertools.count()
        self._active: deque[_Multipart] = deque()  # multipart uploads with parts left to send
        self._multiparts = 0  # multipart uploads started and not finished
        self._open_uploads: dict[str, _Multipart] = {}  # upload_id -> mp, while this engine works on it
        self._control_pending = 0
        self._held: UploadItem | None = None  # a large item waiting for a multipart slot
        self._control = ThreadPoolExecutor(max_workers=4, thread_name_prefix="s3pump-control")
        self._cancel = threading.Event()
        self._stopping = False  # _shutdown runs (see hurry)
        self._hurry = False  # stop waiting for in-flight requests; the aborts are still sent
        self._etags_are_md5 = True  # until a PUT of an unchanged file shows otherwise (SSE-KMS)
        self._last_timeout_check = 0.0
        self._last_tick = 0.0
        self._debug = _log.isEnabledFor(logging.DEBUG)  # per-request debug lines cost nothing otherwise
        # limits (engine/limits.py): requests/s, bytes/s as sent, adaptive concurrency
        lim = limits if limits is not None else EngineLimits.from_config(config)
        self._rps = lim.rps
        self._rps_wait_s = 0.0
        self._bandwidth = lim.bandwidth
        self.adaptive = lim.adaptive
        if self.adaptive is not None:
            self.limit = self.adaptive.limit
        # a throttling storm lowers the request rate, as the AWS SDKs' adaptive mode (AIMD does it when adaptive)
        self._throttle = ThrottleRate() if self.adaptive is None else None

    # ------------------------------------------------------------------ public
    def cancel(self) -> None:
        """Ask the run to stop; thread-safe."""
        self._cancel.set()
        self.wakeup()

    @property
    def stopping(self) -> bool:
        """The engine is stopping (aborting or keeping its open uploads); thread-safe."""
        return self._stopping

    def hurry(self) -> None:
        """While stopping, stop waiting for in-flight requests (a second Ctrl-C), but still abort
        the open multipart uploads; thread-safe."""
        self._hurry = True
        self.wakeup()

    def wakeup(self) -> None:
        """Wake the scheduler (a part source has a part ready); thread-safe."""
        self._q.put(None)

    def run(self, items: Iterable[UploadItem]) -> None:
        """Upload every item; return when all are done or failed (events tell which).

        Raises:
            CancelledError: ``cancel()`` was called or the thread got KeyboardInterrupt.
        """
        it: Iterator[UploadItem] = iter(items)
        exhausted = False
        try:
            while True:
                if self._cancel.is_set():
                    raise KeyboardInterrupt
                self._drain()
                self._fire_due_retries()
                self._feed_multiparts()
                while not exhausted and self._can_pull() and not self._cancel.is_set():
                    item = self._held
                    if item is None:
                        try:
                            item = next(it)
                        except StopIteration:
                            exhausted = True
                            break
                    self._held = None
                    self._start_item(item)
                    self._drain()
                    self._feed_multiparts()
                if exhausted and self._idle() and not self._cancel.is_set():
                    return
                self._wait()
                self._check_timeouts()
                self._tick()
        except KeyboardInterrupt:
            kept = self._shutdown()
            if kept:
                raise CancelledError(f"cancelled; {kept} multipart upload(s) kept for the resume journal: "
                                     "running the same job again resumes them", kept_uploads=kept) from None
            raise CancelledError("cancelled; in-flight multipart uploads were aborted") from None
        except BaseException:  # not ours to handle (an item source or a subscriber failed): leave nothing open
            self.keep_uploads_on_cancel = False
            with contextlib.suppress(Exception):
                self._shutdown()
            raise
        finally:
            self._control.shutdown(wait=False)

    # ------------------------------------------------------------------ scheduling
    def _slot_free(self) -> bool:
        """A request may start now: under the concurrency limit and the request rate."""
        if len(self._inflight) >= self.limit:
            return False
        throttle = self._throttle
        if throttle is not None and throttle.enabled:
            wait_s = throttle.wait_s()
            if wait_s > 0.0:
                self._rps_wait_s = wait_s
                return False
        if self._rps is not None:
            self._rps_wait_s = self._rps.wait_s()
            return self._rps_wait_s == 0.0
        return True

    def _tick(self) -> None:
        """Adaptive concurrency closes its windows; about twice a second a Tick event reports state."""
        now = time.monotonic()
        if self.adaptive is not None:
            self._apply(self.adaptive.maybe_adjust(now))
        if now - self._last_tick < 0.5:
            return
        self._last_tick = now
        sending = sum(req.sent.n for req in self._inflight.values() if req.sent is not None)
        self.bus.emit(Tick(len(self._inflight), self.limit, self._buffers, self.policy.budget.tokens, sending))

    def _apply(self, decision: ConcurrencyDecision | None) -> None:
        if decision is None:
            return
        self.limit = decision.new
        _log.debug("concurrency %d -> %d (%s; %.1f MB/s, p50 latency %.1f ms)", decision.old, decision.new,
                   decision.reason, decision.throughput_bps / 1e6, decision.latency_s * 1e3)
        self.bus.emit(ConcurrencyChanged(decision.old, decision.new, decision.reason, decision.throughput_bps,
                                         decision.latency_s))

    def _can_pull(self) -> bool:
        if not self._slot_free():
            return False
        if self._held is not None:
            return self._multiparts < self.config.max_parts_in_flight
        # don't start new work while active multipart uploads could use the request slots
        return not (self._active and self._buffers < self.config.max_parts_in_flight)

    def _idle(self) -> bool:
        return not (self._inflight or self._retries or self._multiparts or self._control_pending
                    or self._held)

    def _wait(self) -> None:
        timeout = 0.5
        if self._retries:
            timeout = max(0.0, min(timeout, self._retries[0][0] - time.monotonic()))
        if self._rps_wait_s:
            timeout = min(timeout, self._rps_wait_s)
            self._rps_wait_s = 0.0
        try:
            msg = self._q.get(timeout=timeout)
        except queue.Empty:
            return
        self._dispatch(msg)

    def _drain(self) -> None:
        q = self._q
        while True:
            try:
                msg = q.get_nowait()
            except queue.Empty:
                return
            self._dispatch(msg)

    def _dispatch(self, msg: _Settled | _Answered | None) -> None:
        if isinstance(msg, _Settled):
            if msg.req.mp is None:
                self._on_put_done(msg.req, msg.result)
            else:
                self._on_part_done(msg.req, msg.result)
        elif isinstance(msg, _Answered):
            self._control_pending -= 1
            msg.handler(msg.mp, msg.result)

    def _start_item(self, item: UploadItem) -> None:
        if item.error is not None:
            self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, item.error))
            return
        if item.path is not None and item.identity is None:
            # a producer that did not stat the file: the version checked after the upload is the one
            # found now, before any byte is read (mtime_ns 0 may mean "not given", and 0 is a real mtime)
            with contextlib.suppress(OSError):
                item.identity = FileIdentity.of_path(item.path, follow=self.config.follow_symlinks)
        large = item.path is not None and item.size_bytes > self.config.multipart_threshold_bytes
        if item.parts is not None or large:
            if self._multiparts >= self.config.max_parts_in_flight:
                self._held = item
                return
            self._start_multipart(item)
            return
        now = time.monotonic()
        self._send(_Req(item, started=now, first_started=now))

    def _send(self, req: _Req) -> None:
        """Start (or restart) the request ``req`` on the store."""
        item = req.item
        req.started = time.monotonic()
        req.timed_out = False
        size = len(req.body) if req.body is not None else (len(item.body) if item.body is not None
                                                            else item.size_bytes)
        req.timeout_s = _timeout_for(size, self.config.request_timeout_s)
        self._inflight[id(req)] = req
        if self._rps is not None:
            self._rps.try_take()  # _slot_free() saw the token; only this thread takes them
        if self._throttle is not None:
            self._throttle.sent()
        q = self._q
        bw = self._bandwidth
        req.sent = None if bw is None else SentBytes()

        def done(result: PutResult | S3PumpError) -> None:
            q.put(_Settled(req, result))

        try:
            if req.mp is not None:
                assert req.mp.upload_id is not None and req.body is not None
                body = req.body if bw is None else Throttled(req.body, bw, sent=req.sent)
                req.handle = self.store.upload_part(
                    self.bucket, item.key, req.mp.upload_id, req.part_number, body, done
                )
            elif item.path is not None:
                # the file the walk listed, opened once (no symlink followed unless --follow-symlinks; the
                # walk's inode): awscrt reads that open file (/proc/self/fd/N), never whatever is at the
                # path by then; under --bwlimit, or without /proc, through a (paced) stream of it
                req.fd = open_version(item.path, item.identity, follow=self.config.follow_symlinks)
                by_fd = fd_path(req.fd)
                if bw is None and by_fd is not None:
                    req.handle = self.store.put_file(self.bucket, item.key, by_fd, item.size_bytes,
                                                     _sent_attrs(item, self.config, req.fd), done)
                else:
                    whole = FileRange(req.fd, 0, item.size_bytes, item.path)
                    body = whole if bw is None else Throttled(whole, bw, sent=req.sent)
                    req.handle = self.store.put_bytes(self.bucket, item.key, body,
                                                      _sent_attrs(item, self.config, req.fd), done)
            else:
                data = item.body if item.body is not None else b""
                req.handle = self.store.put_bytes(self.bucket, item.key,
                                                  data if bw is None else Throttled(data, bw, sent=req.sent),
                                                  item.attrs, done)
        except S3PumpError as e:  # refused before it started (e.g. credentials, unreadable file)
            done(e)

    def _retry_or_fail(self, req: _Req, error: S3PumpError) -> bool:
        """Schedule a retry of ``req`` if allowed; False if the error is final."""
        if self.adaptive is not None and isinstance(error, ThrottlingError):
            self._apply(self.adaptive.on_throttled())
        if self._throttle is not None and isinstance(error, ThrottlingError) and self._throttle.throttled():
            _log.debug("throttled: request rate cut to %.1f/s", self._throttle.rate_per_s)
        if self._cancel.is_set():
            return False
        delay = self.policy.decide(error, req.attempt, (req.item.key, req.part_number or None))
        if delay is None:
            return False
        req.attempt += 1
        req.retried_after = error
        heapq.heappush(self._retries, (time.monotonic() + delay, next(self._seq), req))
        return True

    def _fire_due_retries(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now and self._slot_free():
            _, _, req = heapq.heappop(self._retries)
            if req.mp is not None and req.mp.failed is not None:
                self._release_part(req)
                continue
            self._send(req)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        if now - self._last_timeout_check < 1.0:
            return
        self._last_timeout_check = now
        for req in list(self._inflight.values()):
            if not req.timed_out and now - req.started > req.timeout_s and req.handle is not None:
                req.timed_out = True
                req.handle.cancel()

    def _error_of(self, req: _Req, result: S3PumpError) -> S3PumpError:
        item = req.item
        if item.path is not None and result.retryable:
            # a short read (a file truncated under the request) fails the request in ways that look like
            # the network's: a changed file is a source change, failed at once, never retried (a
            # SourceChangedError already says how it changed, e.g. replaced by a link: kept as it is)
            changed = _source_changed(item, follow=self.config.follow_symlinks)
            if changed is not None:
                return changed
        if req.timed_out:
            return RequestTimeoutError(
                f"s3://{self.bucket}/{req.item.key}: no response within {req.timeout_s:.0f} s"
            )
        return result

    # ------------------------------------------------------------------ single PUT
    def _on_put_done(self, req: _Req, result: PutResult | S3PumpError) -> None:
        self._inflight.pop(id(req), None)
        req.handle = None  # break req -> handle -> store request -> on_done -> req: the cycle pins the body
        item = req.item
        if self._debug:
            _log.debug("PutObject s3://%s/%s (%d bytes, attempt %d): %s", self.bucket, item.key, item.size_bytes,
                       req.attempt, result)
        if req.fd is not None:
            os.close(req.fd)
            req.fd = None
        if isinstance(result, S3PumpError):
            error = self._error_of(req, result)
            if not self._retry_or_fail(req, error):
                self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, error))
            return
        self.policy.succeeded(req.retried_after)
        if self._throttle is not None:
            self._throttle.succeeded()
        if self.adaptive is not None:
            self.adaptive.on_success(item.size_bytes, time.monotonic() - req.started)
        if item.path is not None:
            changed = self._changed(item, result)
            if changed is not None:
                # the object holds a version the file no longer has (maybe cut short): remove it,
                # so the run ends with the key absent and listed as failed, never a torn object
                self._control_call(_ignore, None, self._delete_quietly, item.key)
                self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, changed))
                return
        self.bus.emit(FileDone(
            item.source, item.key, item.size_bytes, result.etag, time.monotonic() - req.first_started,
            req.attempt, 0, result.version_id, result.checksum,
        ))

    def _changed(self, item: UploadItem, result: PutResult) -> SourceChangedError | None:
        """Whether the file is no longer the version that was planned (every file is checked: an
        mtime of 0 is a valid mtime), or the PUT sent other bytes than the planner hashed."""
        try:
            now = os.stat(item.path, follow_symlinks=self.config.follow_symlinks)  # type: ignore[arg-type]
        except OSError:
            return SourceChangedError(f"{item.source}: removed while uploading; rerun to sync")
        if item.identity is not None:
            same = item.identity.matches(now) and now.st_size == item.size_bytes
        else:
            same = now.st_size == item.size_bytes and now.st_mtime_ns == item.mtime_ns
        if (same and item.md5 and self._etags_are_md5 and _is_plain_md5(result.etag, self.config.sse)
                and result.etag.lower() != item.md5.lower()):
            same = self._etag_mismatch_explained(item)
        if not same:
            return SourceChangedError(
                f"{item.source}: changed while uploading; rerun to upload the new version"
            )
        return None

    def _etag_mismatch_explained(self, item: UploadItem) -> bool:
        """A single PUT's ETag is not the MD5 the planner hashed: either other bytes were sent, or
        the bucket's ETags are no MD5s (default SSE-KMS encryption). Re-read the file once: if it
        still has that MD5, it is the latter, and ETags are not compared again in this run."""
        try:
            fd = open_version(item.path or "", item.identity, follow=self.config.follow_symlinks)
            with os.fdopen(fd, "rb", buffering=0) as f:
                now = hashlib.file_digest(f, "md5").hexdigest()
        except (OSError, S3PumpError):
            return False
        if now != (item.md5 or "").lower():
            return False
        _log.info("s3://%s: ETags are not MD5s here (SSE-KMS?); not compared with the files' MD5s", self.bucket)
        self._etags_are_md5 = False
        return True

    def _delete_quietly(self, key: str) -> None:
        with contextlib.suppress(S3PumpError):
            self.store.delete_objects(self.bucket, [key])

    # ------------------------------------------------------------------ multipart
    def _start_multipart(self, item: UploadItem) -> None:
        mp = _Multipart(item, started=time.monotonic())
        resume = item.resume
        try:
            if item.parts is not None:
                mp.source = item.parts
            else:
                assert item.path is not None
                part_size = (resume.part_size_bytes if resume is not None
                             else part_size_for(item.size_bytes, self.config.part_size_bytes))
                mp.source = FilePartSource(item.path, item.size_bytes, item.mtime_ns, part_size,
                                           identity=item.identity, follow=self.config.follow_symlinks)
        except S3PumpError as e:
            self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, e))
            return
        mp.source.bind(self.wakeup)
        self._multiparts += 1
        if resume is not None and isinstance(mp.source, FilePartSource):
            self._control_call(self._on_listed, mp, list_and_verify_parts, self.store, self.bucket, item.key,
                               resume, mp.source, self.config.sse)
            return
        self._create(mp)

    def _create(self, mp: _Multipart, delay_s: float = 0.0) -> None:
        """Send CreateMultipartUpload for ``mp``, announced first (MultipartCreating) so a journal
        records the intent before the upload can exist."""
        self.bus.emit(MultipartCreating(mp.item.key))
        self._control_call(self._on_created, mp, self.uploads.create, mp.item.key, _sent_attrs(mp.item, self.config),
                           creates=True, delay_s=delay_s)

    def _on_listed(self, mp: _Multipart, result: dict[int, CompletedPart] | S3PumpError) -> None:
        """A journaled upload was checked (ListParts, and each part re-read from the file, see
        :func:`~s3pump.engine.resume.list_and_verify_parts`): keep the verified parts, send the
        rest. An unknown upload starts over; so does one on a server without ListParts (its
        upload is aborted first)."""
        item = mp.item
        resume = item.resume
        assert resume is not None and isinstance(mp.source, FilePartSource)
        if isinstance(result, NoSuchUploadError):
            self._create(mp)
            return
        if isinstance(result, S3PumpError) and listing_unsupported(result):
            self._control_call(self._on_stale_aborted, mp, self.uploads.abort, item.key, resume.upload_id)
            return
        if isinstance(result, S3PumpError):
            self._finish_multipart(mp, result)  # the journal keeps the upload for the next rerun
            return
        mp.done_parts.update(result)
        mp.source.skip_parts(set(mp.done_parts))
        mp.upload_id = resume.upload_id
        self._open_uploads[resume.upload_id] = mp
        self.uploads.register(item.key, resume.upload_id)  # adopted from the journal
        if self._cancel.is_set():
            return
        self._active.append(mp)

    def _on_stale_aborted(self, mp: _Multipart, error: S3PumpError | None) -> None:
        """The upload a resume could not check was aborted (or its abort failed and stays
        recorded): start the file over."""
        resume = mp.item.resume
        assert resume is not None
        self._report_abort(mp.item.key, resume.upload_id, error, "resume not possible: the server has no ListParts")
        self._create(mp)

    def _report_abort(self, key: str, upload_id: str, error: S3PumpError | None, reason: str) -> None:
        if error is None:
            self.bus.emit(MultipartAborted(key, upload_id, reason))
        else:  # the registry keeps it (the run's final sweep tries again), and so does the journal
            _log.warning("s3://%s/%s: aborting multipart upload %s failed (%s); it stays open until a rerun "
                         "or `s3pump cleanup s3://%s/%s --older-than 0s` aborts it", self.bucket, key, upload_id,
                         error, self.bucket, key)
            self.bus.emit(MultipartAbortFailed(key, upload_id, error))

    def _control_call(self, handler: Callable[[Any, Any], None], mp: Any,
                      fn: Callable[..., Any], *args: Any, creates: bool = False, delay_s: float = 0.0) -> None:
        """Run ``fn(*args)`` on a control thread (after ``delay_s``); ``handler(mp, result or error)``
        then runs on the scheduler thread."""
        self._control_pending += 1
        q = self._q

        def work() -> None:
            if delay_s:
                time.sleep(delay_s)
            try:
                result: Any = fn(*args)
            except S3PumpError as e:
                result = e
            except Exception as e:  # a bug must fail the file, not leave the run waiting forever
                _log.exception("control-plane call %s failed", getattr(fn, "__name__", fn))
                result = S3PumpError(f"internal error in {getattr(fn, '__name__', 'a control call')}: {e!r}")
            q.put(_Answered(handler, mp, result, creates))

        self._control.submit(work)

    def _on_created(self, mp: _Multipart, result: str | S3PumpError) -> None:
        item = mp.item
        if isinstance(result, S3PumpError):
            delay = None if self._cancel.is_set() else self.policy.decide(result, mp.attempts, (item.key, None))
            if delay is not None:
                mp.attempts += 1
                self._create(mp, delay)
                return
            self._finish_multipart(mp, result)
            return
        mp.upload_id = result  # OpenUploads.create registered its abort before it returned
        self._open_uploads[result] = mp
        assert mp.source is not None
        self.bus.emit(MultipartCreated(item.key, result, mp.source.part_size_bytes))
        if self._cancel.is_set():
            return
        self._active.append(mp)

    def _feed_multiparts(self) -> None:
        """Hand out parts of active multipart uploads, round-robin, within the buffer and request bounds."""
        max_buffers = self.config.max_parts_in_flight
        idle = 0  # uploads in a row that had no part ready
        while self._active and idle < len(self._active):
            if self._buffers >= max_buffers or not self._slot_free():
                return
            mp = self._active[0]
            if mp.failed is not None:
                self._active.popleft()
                continue
            assert mp.source is not None
            try:
                nxt = mp.source.next_part()
            except StopIteration:
                mp.exhausted = True
                self._active.popleft()
                self._maybe_complete(mp)
                continue
            except S3PumpError as e:
                self._active.popleft()
                self._fail_multipart(mp, e)
                continue
            self._active.rotate(-1)  # round-robin between uploads
            if nxt is None:  # a stream with no part ready yet; its source will wake us
                idle += 1
                continue
            idle = 0
            number, body = nxt
            if getattr(mp.source, "counts_reads", False):
                self.bus.emit(SourceRead(len(body)))
            self._buffers += 1
            mp.parts_in_flight += 1
            now = time.monotonic()
            self._send(_Req(mp.item, mp, number, body, started=now, first_started=now))

    def _release_part(self, req: _Req) -> None:
        self._buffers -= 1
        req.body = None
        mp = req.mp
        assert mp is not None and mp.source is not None
        mp.parts_in_flight -= 1
        release = getattr(mp.source, "release", None)
        if release is not None:
            release(req.part_number)  # the source may reuse the part's buffer now
        self._maybe_complete(mp)

    def _on_part_done(self, req: _Req, result: PutResult | S3PumpError) -> None:
        self._inflight.pop(id(req), None)
        req.handle = None  # break req -> handle -> store request -> on_done -> req: the cycle pins the body
        mp = req.mp
        assert mp is not None
        if self._debug:
            _log.debug("UploadPart s3://%s/%s part %d (attempt %d): %s", self.bucket, mp.item.key, req.part_number,
                       req.attempt, result)
        if isinstance(result, S3PumpError):
            error = self._error_of(req, result)
            if mp.failed is None and self._retry_or_fail(req, error):
                return
            if mp.failed is None:
                mp.failed = error
            self._release_part(req)
            return
        self.policy.succeeded(req.retried_after)
        if self._throttle is not None:
            self._throttle.succeeded()
        size = len(req.body or b"")
        if self.adaptive is not None:
            self.adaptive.on_success(size, time.monotonic() - req.started)
        mp.done_parts[req.part_number] = CompletedPart(req.part_number, result.etag, size, result.checksum)
        assert mp.upload_id is not None
        self.bus.emit(PartDone(mp.item.key, mp.upload_id, req.part_number, size, result.etag,
                               result.checksum, time.monotonic() - req.first_started))
        self._release_part(req)

    def _fail_multipart(self, mp: _Multipart, error: S3PumpError) -> None:
        if mp.failed is None:
            mp.failed = error
        self._maybe_complete(mp)

    def _maybe_complete(self, mp: _Multipart) -> None:
        """Called whenever a part settles: complete, or abort, once nothing is in flight."""
        if mp.parts_in_flight or mp.upload_id is None or mp.upload_id not in self._open_uploads:
            return
        if mp.failed is not None:
            self._abort(mp, mp.failed)
            return
        if not mp.exhausted:
            return
        assert mp.source is not None
        try:
            mp.source.finish()
        except SourceError as e:
            self._abort(mp, e)
            return
        parts = [mp.done_parts[n] for n in sorted(mp.done_parts)]
        del self._open_uploads[mp.upload_id]
        # a source that read the bytes itself (a stream) knows the whole object's checksum: the server checks it
        full = getattr(mp.source, "full_object_checksum", None)
        self._control_call(self._on_completed, mp, self._complete, mp.item.key, mp.upload_id, parts, full)

    def _complete(self, key: str, upload_id: str, parts: list[CompletedPart],
                  full_object_checksum: tuple[str, str] | None) -> PutResult:
        result = complete_with_retries(
            self.policy, lambda: self._complete_once(key, upload_id, parts, full_object_checksum), self.store,
            self.bucket, key, parts, full_object_checksum)
        self.uploads.completed(upload_id)
        return result

    def _complete_once(self, key: str, upload_id: str, parts: list[CompletedPart],
                       full_object_checksum: tuple[str, str] | None) -> PutResult:
        try:
            return self.store.complete_multipart_upload(self.bucket, key, upload_id, parts, full_object_checksum)
        except BadDigestError as e:
            # the parts are stored; the whole object's checksum is not the source's: sending the same
            # completion again cannot fix that (the upload is aborted)
            raise FatalStoreError(f"{e}; the object's {full_object_checksum[0] if full_object_checksum else ''} "
                                  "checksum is not the source's: not stored", status=e.status, code=e.code) from None

    def _on_completed(self, mp: _Multipart, result: PutResult | S3PumpError) -> None:
        item = mp.item
        if isinstance(result, S3PumpError):
            assert mp.upload_id is not None
            self._open_uploads[mp.upload_id] = mp
            self._abort(mp, result)
            return
        self._finish_multipart(mp, None)
        size = sum(p.size_bytes for p in mp.done_parts.values())
        self.bus.emit(FileDone(item.source, item.key, size, result.etag, time.monotonic() - mp.started,
                               1, len(mp.done_parts), result.version_id, result.checksum))

    def _abort(self, mp: _Multipart, error: S3PumpError) -> None:
        assert mp.upload_id is not None
        upload_id = mp.upload_id
        self._open_uploads.pop(upload_id, None)
        mp.failed = error
        self._control_call(self._on_aborted, mp, self.uploads.abort, mp.item.key, upload_id)

    def _on_aborted(self, mp: _Multipart, abort_error: S3PumpError | None) -> None:
        assert mp.upload_id is not None and mp.failed is not None
        self._report_abort(mp.item.key, mp.upload_id, abort_error, str(mp.failed))
        self._finish_multipart(mp, mp.failed)

    def _finish_multipart(self, mp: _Multipart, error: S3PumpError | None) -> None:
        self._multiparts -= 1
        if mp.source is not None:
            mp.source.close()
        if error is not None:
            item = mp.item
            self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, error))

    # ------------------------------------------------------------------ cancellation
    def _shutdown(self) -> int:
        """Stop everything; abort the run's open multipart uploads (or keep them, see
        ``keep_uploads_on_cancel``). Returns how many uploads were kept."""
        self._stopping = True
        self._cancel.set()
        for req in list(self._inflight.values()):
            if req.handle is not None:
                req.handle.cancel()
        deadline = time.monotonic() + 10.0
        while self._inflight and time.monotonic() < deadline and not self._hurry:
            try:
                msg = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(msg, _Settled):
                self._inflight.pop(id(msg.req), None)
                if isinstance(msg.result, PutResult):
                    self._report_late_success(msg.req, msg.result)
        # wait for CreateMultipartUpload calls still running: the registry has their uploads then
        self._control.shutdown(wait=True)
        with contextlib.suppress(queue.Empty):
            while True:
                msg = self._q.get_nowait()
                if isinstance(msg, _Answered) and msg.creates and isinstance(msg.result, str):
                    self._open_uploads[msg.result] = msg.mp
                    msg.mp.upload_id = msg.result
                    if self.keep_uploads_on_cancel:  # the journal must know it to resume or clean it
                        assert msg.mp.source is not None
                        self.bus.emit(MultipartCreated(msg.mp.item.key, msg.result, msg.mp.source.part_size_bytes))
        if self.keep_uploads_on_cancel:
            kept = 0
            for upload_id in list(self._open_uploads):
                self.uploads.release(upload_id)
                kept += 1
            self._open_uploads.clear()
            return kept
        for upload_id, mp in list(self._open_uploads.items()):
            self._report_abort(mp.item.key, upload_id, self.uploads.abort(mp.item.key, upload_id), "cancelled")
        self._open_uploads.clear()
        return 0

    def _report_late_success(self, req: _Req, result: PutResult) -> None:
        """A PUT or part that succeeded while the run was stopping: report it, so the journal knows
        the object or part exists and a rerun does not send it again."""
        item = req.item
        if req.fd is not None:
            os.close(req.fd)
            req.fd = None
        latency = time.monotonic() - req.first_started
        if req.mp is None:
            if item.path is not None and self._changed(item, result) is not None:
                return  # the file changed under the PUT: leave it to the rerun
            self.bus.emit(FileDone(item.source, item.key, item.size_bytes, result.etag, latency, req.attempt, 0,
                                   result.version_id, result.checksum))
        elif req.mp.upload_id is not None:
            self.bus.emit(PartDone(item.key, req.mp.upload_id, req.part_number, len(req.body or b""), result.etag,
                                   result.checksum, latency))


def _sent_attrs(item: UploadItem, config: TransferConfig, fd: int | None = None) -> ObjectAttributes:
    """The attributes an item's object is written with: a file's also carry its modification time
    (``x-amz-meta-mtime``, rclone's name and format; :meth:`ObjectAttributes.with_file_mtime`) and,
    with ``--preserve-attrs``, its mode, uid and gid (:meth:`ObjectAttributes.with_file_owner`), read
    from the open file ``fd`` when given, else from its path (a file that cannot be read fails its
    upload later, with its own error)."""
    if item.path is None:
        return item.attrs
    attrs = item.attrs.with_file_mtime(item.mtime_ns) if item.mtime_ns > 0 else item.attrs
    if config.preserve_attrs:
        try:
            st = os.fstat(fd) if fd is not None else os.stat(item.path, follow_symlinks=config.follow_symlinks)
        except OSError:
            return attrs
        attrs = attrs.with_file_owner(st.st_mode, st.st_uid, st.st_gid)
    return attrs


def _source_changed(item: UploadItem, *, follow: bool) -> SourceChangedError | None:
    """Whether ``item``'s file is no longer the version being sent (size, mtime, ctime, inode); a
    symbolic link in its place is not followed (unless ``follow``: ``--follow-symlinks``)."""
    try:
        st = os.stat(item.path, follow_symlinks=follow)  # type: ignore[arg-type]
    except OSError as e:
        return SourceChangedError(f"{item.source}: file changed while uploading ({e.strerror}); not completed, "
                                  "rerun to upload the new version")
    same = st.st_size == item.size_bytes and (item.identity is None or item.identity.matches(st))
    if same:
        return None
    return SourceChangedError(f"{item.source}: file changed while uploading ({item.size_bytes} -> {st.st_size} "
                              "bytes); not completed, rerun to upload the new version")


def _is_plain_md5(etag: str, sse: str | None) -> bool:
    """Whether a single PUT's ETag is the MD5 of its body: 32 hex digits, and no SSE-KMS (whose
    ETags are not MD5s; S3 API reference, "Common Response Headers", ETag)."""
    if sse is not None and "kms" in sse.lower():
        return False
    return len(etag) == 32 and all(c in "0123456789abcdefABCDEF" for c in etag)


def _ignore(_: Any, __: Any) -> None:
    return None
