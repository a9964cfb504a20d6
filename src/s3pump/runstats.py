"""Run statistics, built from the event stream, and the failed-list file.

:class:`RunStats` is an event subscriber; jobs turn it into their report
(:class:`~s3pump.reports.UploadReport`, :mod:`s3pump.reports`). Latency percentiles come from
a log-bucket histogram (about 2 % resolution, constant memory), so a run of a
million files costs no more memory than a run of ten.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import time
from pathlib import Path
from typing import IO

from .events import Event, FileDone, FileFailed, FileSkipped, FilesUnchanged, PartDone, RetryScheduled
from .reports import FailedFile

__all__ = ["FailedListWriter", "LatencyHistogram", "RunStats"]

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
