"""Typed events of a run, and the bus that fans them out.

Sources say what they found (:class:`Discovered`) and read (:class:`SourceRead`), the
engine what it did (files, parts, retries, multipart uploads, concurrency), jobs what they
decided (:class:`UploadPlanned`, :class:`ObjectDeleted`, :class:`BatchExported`). The
progress views, ``--json`` output, the failed-list, the statistics behind the summary, the
journal and metrics are all subscribers of this one stream; none of them hooks into a source
or the engine.

The bus delivers one event at a time (a lock), so subscribers need no locks of their own even
when a control-plane thread reports a retry; almost every event comes from the engine's
scheduler thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import S3PumpError

__all__ = [
    "BatchExported",
    "ClusterForecast",
    "ConcurrencyChanged",
    "Discovered",
    "EntrySkipped",
    "Event",
    "EventBus",
    "FileDone",
    "FileFailed",
    "FileSkipped",
    "FilesUnchanged",
    "MultipartAbortFailed",
    "MultipartAborted",
    "MultipartCreated",
    "MultipartCreating",
    "ObjectDeleted",
    "PartDone",
    "Resuming",
    "RetryScheduled",
    "RowsFound",
    "ShardProgress",
    "ShardSettled",
    "SourceRead",
    "StopRequested",
    "Tick",
    "UploadPlanned",
]


@dataclass(frozen=True, slots=True)
class Discovered:
    """A source found more work: ``files`` and ``bytes`` found so far in all (cumulative);
    ``final`` once it has found everything; ``files_final``: the count of files is final, the bytes
    are still being counted (upload's count ahead counts names first, then sizes)."""

    files: int
    bytes: int
    final: bool = False
    files_final: bool = False


@dataclass(frozen=True, slots=True)
class SourceRead:
    """A streaming source read ``size_bytes`` more bytes (handed to the engine as one part)."""

    size_bytes: int


@dataclass(frozen=True, slots=True)
class StopRequested:
    """The first SIGINT/SIGTERM: the run stops at a safe point (``graceful``: after the work in
    flight, e.g. export's batches); a second signal stops it at once (``again``: this is that second
    one; ``hurry``: the run was already aborting its uploads, and now only stops waiting for the
    requests in flight)."""

    signal: str
    graceful: bool
    again: bool = False
    hurry: bool = False


@dataclass(frozen=True, slots=True)
class Resuming:
    """A rerun of the same command found its journal: ``files_done`` files were done in an earlier run
    (skipped, once their objects are found in the bucket), ``uploads`` multipart uploads continue
    from their missing parts."""

    files_done: int
    uploads: int


@dataclass(frozen=True, slots=True)
class RowsFound:
    """An export counted the rows it is to read this run (those past its checkpoint's cursor, counted
    at its start): the progress view's total of rows."""

    rows: int


@dataclass(frozen=True, slots=True)
class BatchExported:
    """An export batch is stored and checkpointed: ``rows`` more rows, now at ``checkpoint``."""

    rows: int
    checkpoint: Any


@dataclass(frozen=True, slots=True)
class ShardProgress:
    """A ``--cluster`` shard in flight (``shard``, its index) has finished ``files`` files and sent
    ``bytes`` bytes so far (cumulative over the attempt running it; 0, 0 once its result is in).
    Progress only: the files' own events (done, failed, parts) come with the shard's result, and
    only they reach the journal, the failed-list and the summary."""

    shard: int
    files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ShardSettled:
    """A ``--cluster`` shard's result is in and its files' events were emitted (on the coordinator's
    thread, after them): the resume journal commits the shard's finished files now rather than with
    the next shard's (a coordinator killed in between would otherwise send them again)."""

    shard: int


@dataclass(frozen=True, slots=True)
class ClusterForecast:
    """A ``--cluster`` run's bound after its first minute (s3pump/cluster/forecast.py): rates per
    second observed so far (files and bytes done by ``workers`` workers, files the walk found),
    what is left of the work found so far, the time it needs at least, and which ``bound`` that is."""

    elapsed_s: float
    workers: int
    files_per_s: float
    bytes_per_s: float
    walk_files_per_s: float
    walk_finished: bool
    files_left: int
    bytes_left: int
    predicted_s: float
    bound: str


@dataclass(frozen=True, slots=True)
class FileDone:
    """An object was written. ``latency_s`` spans first request to final response."""

    source: str
    key: str
    size_bytes: int
    etag: str
    latency_s: float
    attempts: int
    parts: int = 0
    version_id: str | None = None
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class FileFailed:
    """An object was not written; ``error`` says why. A rerun with --from-list retries it."""

    source: str
    key: str
    size_bytes: int
    error: S3PumpError


@dataclass(frozen=True, slots=True)
class FileSkipped:
    """A source was deliberately not uploaded (unchanged under sync, or --dry-run)."""

    source: str
    key: str
    size_bytes: int
    reason: str


@dataclass(frozen=True, slots=True)
class FilesUnchanged:
    """A sync found ``files`` more files unchanged (``size_bytes`` in all), counted rather than
    listed: ``sync(..., list_unchanged=False)``, which the CLI uses unless ``--json`` lists them.
    Each counts as one :class:`FileSkipped` would (reason ``unchanged``), a thousand at a time."""

    files: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class EntrySkipped:
    """The walk passed over a directory entry that is not a regular file: ``kind`` is ``symlink``
    (not followed), ``fifo``, ``socket``, ``device`` or ``broken symlink``."""

    path: str
    kind: str


@dataclass(frozen=True, slots=True)
class UploadPlanned:
    """Sync decided to upload ``source`` (a FileDone or FileFailed follows unless --dry-run).

    ``reason`` says why (new, size differs, newer, content differs). ``fallback`` is True
    when the contents could not be compared exactly and the file is uploaded to be safe."""

    source: str
    key: str
    size_bytes: int
    reason: str
    fallback: bool = False


@dataclass(frozen=True, slots=True)
class ObjectDeleted:
    """Sync --delete removed an object with no local file (or would, with ``dry_run``);
    ``error`` is set when the delete failed."""

    key: str
    dry_run: bool = False
    error: S3PumpError | None = None


@dataclass(frozen=True, slots=True)
class PartDone:
    """One part of a multipart upload was uploaded."""

    key: str
    upload_id: str
    part_number: int
    size_bytes: int
    etag: str
    checksum: str | None
    latency_s: float


@dataclass(frozen=True, slots=True)
class MultipartCreating:
    """CreateMultipartUpload for ``key`` is about to be sent. A subscriber that records it
    (the journal) can find the upload after a kill that lands before :class:`MultipartCreated`."""

    key: str


@dataclass(frozen=True, slots=True)
class MultipartCreated:
    """A multipart upload exists on the server; its abort is registered from this moment."""

    key: str
    upload_id: str
    part_size_bytes: int


@dataclass(frozen=True, slots=True)
class MultipartAborted:
    """AbortMultipartUpload succeeded (or the upload was already gone): nothing is left of it."""

    key: str
    upload_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class MultipartAbortFailed:
    """AbortMultipartUpload failed (e.g. the server is down): the upload still exists and must
    stay recorded, so a later run or ``s3pump cleanup`` aborts it."""

    key: str
    upload_id: str
    error: S3PumpError


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """A request failed with a retryable error and will be sent again after ``delay_s``."""

    key: str
    part_number: int | None
    attempt: int
    delay_s: float
    error: S3PumpError


@dataclass(frozen=True, slots=True)
class ConcurrencyChanged:
    """Adaptive concurrency moved its limit (``--concurrency auto``)."""

    old: int
    new: int
    reason: str
    throughput_bps: float
    latency_s: float


@dataclass(frozen=True, slots=True)
class Tick:
    """The engine's state, about twice a second: for metrics gauges and plain progress.
    ``sending_bytes``: the bytes of the requests in flight sent so far (counted under ``--bwlimit``,
    where bodies are paced as they are read; 0 otherwise): progress moves within a long part."""

    requests_in_flight: int
    concurrency_limit: int
    part_buffers: int
    retry_tokens: int
    sending_bytes: int = 0


Event = (FileDone | FileFailed | FileSkipped | FilesUnchanged | EntrySkipped | PartDone | MultipartCreating
         | MultipartCreated | MultipartAborted | MultipartAbortFailed | RetryScheduled | UploadPlanned | ObjectDeleted
         | ConcurrencyChanged | Tick | Discovered | SourceRead | BatchExported | StopRequested | ClusterForecast
         | ShardProgress | ShardSettled | Resuming | RowsFound)
Subscriber = Callable[[Event], None]


class EventBus:
    """Calls every subscriber with every event, in subscription order, one event at a time."""

    __slots__ = ("_lock", "_subscribers")

    def __init__(self, *subscribers: Subscriber) -> None:
        self._subscribers: list[Subscriber] = list(subscribers)
        self._lock = threading.RLock()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        with self._lock:
            for s in self._subscribers:
                s(event)
