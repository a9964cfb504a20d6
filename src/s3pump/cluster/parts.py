"""One large file's parts spread over the workers: the coordinator's side.

**The rule.** A file is split when it goes as a multipart upload (above the multipart threshold),
has at least 2 parts, is not resuming a journaled upload, and is at least ``split_bytes`` bytes
(``S3PUMP_SPLIT_SIZE``; default twice the shard byte target, so 8 GiB: a file of one shard's bytes
or less is a shard's work, spread by the shards already). Its parts (of the size a one-process
upload uses, :func:`~s3pump.engine.multipart.part_size_for`, so the multipart ETag is the same)
are cut into ``max(ceil(size / shard_bytes), RANGES_PER_SLOT x worker threads)`` ranges of whole,
consecutive parts (at most one per part), about equal.

**The upload.** :class:`SplitFiles` creates the multipart upload through the run (its retry policy
and :class:`~s3pump.engine.uploads.OpenUploads`, which registers the abort the moment the upload
exists; ``MultipartCreating``/``MultipartCreated`` on the bus, so the journal records it as for the
engine's own uploads). Each range is a task (:class:`PartRange`: bucket and key through the
workers' plugin, the upload ID, the path, the part numbers and size, the file's size and mtime as
the walk saw them; no credentials) that a worker runs with its store
(:func:`~s3pump.cluster.partsend.send_range`). Its parts come back (number, ETag, checksum) and are
replayed as ``PartDone``; once every range is in, the coordinator sends CompleteMultipartUpload
with the parts in order and the parts' checksums (as the engine does for a file: a composite
checksum, no full-object one), then emits ``FileDone`` (the journal records the file done only
then). A range that failed (the file changed or ended short, a part failed for good, its workers
all died) fails the file: the ranges not yet sent are dropped, and once the sent ones are in the
upload is aborted and the file reported failed (a rerun sends it again). Whatever is still open
when the transfer ends (a cancel, an error) is aborted by :meth:`SplitFiles.close`, after the
coordinator waited for the workers' running tasks to stop.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import S3PumpError, WorkerLostError
from ..events import Event, FileDone, FileFailed, MultipartCreated, MultipartCreating, PartDone
from ..items import UploadItem
from ..run import Run
from ..store.base import CompletedPart
from .results import ShardResult
from .shards import Shard

__all__ = ["RANGES_PER_SLOT", "PartRange", "RangeResult", "SplitFiles", "part_ranges"]

#: Ranges per worker thread a split file is cut into (at least): a slow worker holds up less of the file.
RANGES_PER_SLOT = 2


@dataclass(frozen=True, slots=True)
class PartRange:
    """Parts ``first``..``last`` (inclusive) of ``item``'s multipart upload ``upload_id``, with parts of
    ``part_size_bytes``; ``index`` is the task's (unique among the run's shards)."""

    index: int
    item: UploadItem
    upload_id: str
    part_size_bytes: int
    first: int
    last: int

    @property
    def items(self) -> tuple[UploadItem, ...]:
        return (self.item,)

    @property
    def size_bytes(self) -> int:
        start = (self.first - 1) * self.part_size_bytes
        return min(self.item.size_bytes, self.last * self.part_size_bytes) - start


@dataclass(frozen=True, slots=True)
class RangeResult:
    """What a worker did with a :class:`PartRange`: the parts it stored, or ``error`` (then the
    file is not completed). ``pid``: the worker process's; ``events``: its retries."""

    index: int
    worker: str
    pid: int
    parts: tuple[CompletedPart, ...]
    latency_s: tuple[float, ...]
    busy_s: float
    error: S3PumpError | None = None
    events: tuple[Event, ...] = ()


def part_ranges(parts: int, count: int) -> list[tuple[int, int]]:
    """Part numbers 1..``parts`` cut into ``min(count, parts)`` runs ``(first, last)`` of about equal length."""
    count = max(1, min(count, parts))
    out, first = [], 1
    for k in range(count, 0, -1):
        n = -(-(parts - first + 1) // k)
        out.append((first, first + n - 1))
        first += n
    return out


@dataclass(slots=True)
class _Split:
    """A split file's upload while its ranges run."""

    item: UploadItem
    upload_id: str
    part_size_bytes: int
    ranges: int  # ranges not yet settled (submitted or not)
    started: float = field(default_factory=time.monotonic)
    parts: dict[int, CompletedPart] = field(default_factory=dict)
    error: S3PumpError | None = None


class SplitFiles:
    """The split files of one run on the cluster (see the module docstring): :meth:`divert` takes them
    out of the items, :meth:`units` puts their ranges among the shards, :meth:`settle` takes each
    finished task, :meth:`close` aborts what is left open. Used on the coordinator's one thread."""

    def __init__(self, run: Run, split_bytes: int, shard_bytes: int, slots: int,
                 settle_shard: Callable[[Run, Any, Any, Any], None]) -> None:
        self.run = run
        self._settle_shard = settle_shard  # the coordinator's, for the shards
        self.split_bytes = split_bytes
        self.shard_bytes = shard_bytes
        self.slots = slots
        self._files: deque[UploadItem] = deque()
        self._ready: deque[PartRange] = deque()
        self._open: dict[str, _Split] = {}  # upload ID -> split file
        #: per worker address: its pid, ranges, parts and bytes of split files (``--json``'s ``cluster.split``)
        self.by_worker: dict[str, dict[str, int]] = {}
        self.files = 0

    def splits(self, item: UploadItem) -> bool:
        from ..engine.multipart import part_size_for

        config = self.run.config
        return (item.path is not None and item.error is None and item.resume is None and item.parts is None
                and item.size_bytes > config.multipart_threshold_bytes and item.size_bytes >= self.split_bytes
                and item.size_bytes > part_size_for(item.size_bytes, config.part_size_bytes))

    def divert(self, items: Iterable[UploadItem]) -> Iterator[UploadItem]:
        """``items`` without the files to split (held for :meth:`units`)."""
        for item in items:
            if self.splits(item):
                self._files.append(item)
            else:
                yield item

    def units(self, shards: Iterator[Shard]) -> Iterator[Shard | PartRange]:
        """The shards and the split files' ranges, numbered anew (one sequence of task indices)."""
        index = 0
        while True:
            if self._ready:
                rng = self._ready.popleft()
                split = self._open.get(rng.upload_id)
                if split is None or split.error is not None:  # its file failed: not sent
                    if split is not None:
                        self._range_settled(split)
                    continue
                yield replace(rng, index=index)
                index += 1
                continue
            if self._files:
                self._start(self._files.popleft())
                continue
            shard = next(shards, None)
            if shard is None and not self._files:
                return
            if shard is not None:
                yield replace(shard, index=index)
                index += 1

    def _start(self, item: UploadItem) -> None:
        """CreateMultipartUpload of ``item`` (retried; its abort registered at once) and its ranges queued."""
        from ..engine.multipart import part_count, part_size_for
        from ..engine.put import sent_attrs

        run = self.run
        assert run.uploads is not None
        part_size = part_size_for(item.size_bytes, run.config.part_size_bytes)
        run.emit(MultipartCreating(item.key))
        try:
            upload_id = run.policy.call(run.uploads.create, item.key, sent_attrs(item, run.config),
                                        what=(item.key, None))
        except S3PumpError as e:
            run.emit(FileFailed(item.source, item.key, item.size_bytes, e))
            return
        run.emit(MultipartCreated(item.key, upload_id, part_size))
        count = max(-(-item.size_bytes // self.shard_bytes), RANGES_PER_SLOT * self.slots)
        ranges = part_ranges(part_count(item.size_bytes, part_size), count)
        self._open[upload_id] = _Split(item, upload_id, part_size, len(ranges))
        self.files += 1
        for first, last in ranges:
            self._ready.append(PartRange(-1, item, upload_id, part_size, first, last))

    def settle(self, run: Run, fut: Any, unit: Any, outcome: Any) -> None:
        """A finished task: a range's parts replayed (PartDone) and its file completed once all are in;
        a shard by ``settle_shard`` (the coordinator's: its events replayed, or its files failed)."""
        if not isinstance(unit, PartRange):
            self._settle_shard(run, fut, unit, outcome)
            return
        split = self._open.get(unit.upload_id)
        if split is None:
            return
        error: S3PumpError | None
        if fut.status == "finished":
            result: RangeResult = fut.result()
            for event in result.events:
                run.emit(event)
            error = result.error
            for part, latency in zip(result.parts, result.latency_s, strict=True):
                split.parts[part.part_number] = part
                run.emit(PartDone(unit.item.key, unit.upload_id, part.part_number, part.size_bytes, part.etag,
                                  part.checksum, latency))
            done_bytes = sum(p.size_bytes for p in result.parts)
            outcome.rates.add(ShardResult(unit.index, result.worker, (), result.busy_s, 0, done_bytes))
            row = self.by_worker.setdefault(result.worker, {"pid": result.pid, "ranges": 0, "parts": 0, "bytes": 0})
            row["ranges"] += 1
            row["parts"] += len(result.parts)
            row["bytes"] += done_bytes
        else:
            try:
                lost = fut.exception()
            except Exception as e:  # a future the scheduler cancelled
                lost = e
            if isinstance(lost, S3PumpError) and lost.exit_code == 2:
                raise lost  # the workers cannot write at all: stop the run (close aborts the upload)
            error = WorkerLostError(f"parts {unit.first}-{unit.last} of {unit.item.source} did not finish "
                                    f"({type(lost).__name__}: {lost}); rerun the command to retry the file")
        if error is None:
            outcome.shards_done += 1
        else:
            outcome.shards_failed += 1
            if split.error is None:
                split.error = error
        self._range_settled(split)

    def _range_settled(self, split: _Split) -> None:
        split.ranges -= 1
        if split.ranges > 0:
            return
        if split.error is None:
            self._complete(split)
        else:
            self._abort(split, split.error, failed=True)

    def _complete(self, split: _Split) -> None:
        from ..engine.completion import complete_upload

        run, item = self.run, split.item
        assert run.uploads is not None
        parts = [split.parts[n] for n in sorted(split.parts)]
        try:
            result = complete_upload(run.policy, run.store, run.bucket, item.key, split.upload_id, parts, None)
        except S3PumpError as e:
            self._abort(split, e, failed=True)
            return
        run.uploads.completed(split.upload_id)
        del self._open[split.upload_id]
        run.emit(FileDone(item.source, item.key, sum(p.size_bytes for p in parts), result.etag,
                          time.monotonic() - split.started, 1, len(parts), result.version_id, result.checksum))

    def _abort(self, split: _Split, reason: S3PumpError, *, failed: bool) -> None:
        from ..engine.uploads import report_abort

        run, item = self.run, split.item
        assert run.uploads is not None
        self._open.pop(split.upload_id, None)
        error = run.uploads.abort(item.key, split.upload_id)
        report_abort(run.bus, run.bucket, item.key, split.upload_id, error, str(reason))
        if failed:
            run.emit(FileFailed(item.source, item.key, item.size_bytes, reason))

    def close(self) -> None:
        """Abort every split file's upload still open (the transfer was cancelled or failed; the
        workers' tasks were cancelled and waited for first)."""
        for split in list(self._open.values()):
            self._abort(split, S3PumpError("cancelled"), failed=False)

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "per_worker": [{"worker": w, **row} for w, row in sorted(self.by_worker.items())]}
