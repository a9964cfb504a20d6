"""Run statistics and reports, built from the event stream.

:class:`RunStats` is an event subscriber; jobs turn it into their report
(:class:`UploadReport` here; other jobs extend it). Latency percentiles come from
a log-bucket histogram (about 2 % resolution, constant memory), so a run of a
million files costs no more memory than a run of ten.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from .events import Event, FileDone, FileFailed, FileSkipped, FilesUnchanged, PartDone, RetryScheduled

__all__ = ["FailedFile", "FailedListWriter", "LatencyHistogram", "RunStats", "UploadReport"]

#: Failures kept in memory for the report; all of them go to the failed-list file.
MAX_FAILED_IN_REPORT = 1000


class LatencyHistogram:
    """Latencies in seconds, bucketed at 2 % steps from 10 µs; quantiles from bucket midpoints."""

    __slots__ = ("_counts", "count")
    _BASE = 1.02
    _MIN_S = 1e-5

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0

    def add(self, seconds: float) -> None:
        b = 0 if seconds <= self._MIN_S else int(math.log(seconds / self._MIN_S, self._BASE)) + 1
        self._counts[b] = self._counts.get(b, 0) + 1
        self.count += 1

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) in seconds; 0.0 when empty."""
        if not self.count:
            return 0.0
        rank = q * (self.count - 1)
        seen = 0
        for b in sorted(self._counts):
            seen += self._counts[b]
            if seen > rank:
                return self._MIN_S if b == 0 else self._MIN_S * self._BASE ** (b - 0.5)
        return 0.0  # pragma: no cover


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A source that was not uploaded, and why."""

    source: str
    key: str
    error: str
    error_type: str


class RunStats:
    """Counts files, bytes, retries and request latency from events."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.files_done = 0
        self.files_failed = 0
        self.files_skipped = 0
        self.bytes_done = 0
        self.bytes_skipped = 0
        self.parts_done = 0
        self.retries = 0
        self.latency = LatencyHistogram()
        self.failed: list[FailedFile] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDone):
            self.files_done += 1
            if not event.parts:  # multipart bytes were counted part by part
                self.bytes_done += event.size_bytes
                self.latency.add(event.latency_s)
        elif isinstance(event, PartDone):
            self.parts_done += 1
            self.bytes_done += event.size_bytes
            self.latency.add(event.latency_s)
        elif isinstance(event, FileFailed):
            self.files_failed += 1
            if len(self.failed) < MAX_FAILED_IN_REPORT:
                self.failed.append(FailedFile(event.source, event.key, str(event.error),
                                              type(event.error).__name__))
        elif isinstance(event, FileSkipped):
            self.files_skipped += 1
            self.bytes_skipped += event.size_bytes
        elif isinstance(event, FilesUnchanged):
            self.files_skipped += event.files
            self.bytes_skipped += event.size_bytes
        elif isinstance(event, RetryScheduled):
            self.retries += 1

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class UploadReport:
    """Outcome of :func:`s3pump.upload`. Sizes in bytes, times in seconds, rate in bytes/s."""

    files_done: int
    files_failed: int
    files_skipped: int
    bytes_done: int
    elapsed_s: float
    retries: int
    latency_p50_s: float
    latency_p99_s: float
    failed: list[FailedFile] = field(default_factory=list)
    failed_list_path: str | None = None
    dry_run: bool = False
    bytes_skipped: int = 0
    #: ``--cluster`` runs: workers, shards planned/done/failed, and per-worker rates (``per_worker``)
    cluster: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.files_failed == 0

    @property
    def rate_bps(self) -> float:
        return self.bytes_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def from_stats(cls, stats: RunStats, *, failed_list_path: str | None, dry_run: bool = False) -> UploadReport:
        return cls(
            files_done=stats.files_done, files_failed=stats.files_failed, files_skipped=stats.files_skipped,
            bytes_done=stats.bytes_done, elapsed_s=stats.elapsed_s, retries=stats.retries,
            latency_p50_s=stats.latency.quantile(0.5), latency_p99_s=stats.latency.quantile(0.99),
            failed=list(stats.failed), failed_list_path=failed_list_path, dry_run=dry_run,
            bytes_skipped=stats.bytes_skipped,
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = [asdict(f) for f in self.failed]
        d["rate_bps"] = self.rate_bps
        d["event"] = "summary"
        return d


class FailedListWriter:
    """Writes each failure as a JSON line ``{"source", "key", "bucket", "error"}`` to ``path``.

    The file is created at the first failure only, and never over an existing file: if ``path``
    exists (an earlier run's list, or the ``--from-list`` file this run reads), the list goes to
    ``<stem>-<pid>-<8 random hex><suffix>`` beside it instead, and :attr:`path` says where.
    ``s3pump upload --from-list PATH`` uploads exactly those sources to exactly those keys.
    """

    def __init__(self, path: str | Path, bucket: str) -> None:
        self.path = Path(path)
        self.bucket = bucket
        self._file: IO[str] | None = None
        self.count = 0

    def __call__(self, event: Event) -> None:
        if not isinstance(event, FileFailed):
            return
        if self._file is None:
            self._file = self._create()
        record = {"source": event.source, "key": event.key, "bucket": self.bucket,
                  "size_bytes": event.size_bytes, "error": str(event.error)}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        self.count += 1

    def _create(self) -> IO[str]:
        """Open a new file at :attr:`path`, or at a unique name beside it if that exists (O_EXCL)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                return open(self.path, "x", encoding="utf-8")
            except FileExistsError:
                self.path = self.path.with_name(
                    f"{self.path.stem}-{os.getpid()}-{secrets.token_hex(4)}{self.path.suffix}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
