"""The counters and the final report of ``s3pump export`` (the views are in :mod:`s3pump.ui`)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..report import FailedFile

__all__ = ["ExportCounters", "ExportReport"]


@dataclass
class ExportCounters:
    """Live counters of an export (updated by the job's scheduler thread, read by the progress view)."""

    rows_read: int = 0
    rows_exported: int = 0
    rows_failed: int = 0
    rows_unchanged: int = 0
    objects_written: int = 0
    objects_failed: int = 0
    objects_skipped: int = 0
    bytes_written: int = 0
    batches: int = 0
    checkpoint: Any = None
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class ExportReport:
    """Outcome of :func:`s3pump.export_table`. Bytes in bytes, times in seconds, rates per second.

    ``rows_failed`` rows and ``objects_failed`` objects went to the dead-letter queue
    (``dlq_entries`` lists where); ``checkpoint`` is the JSON-encoded cursor value saved.
    ``stopped`` is True when a stop request (SIGINT/SIGTERM) ended the run after the
    in-flight batches.
    """

    table: str
    destination: str
    format: str
    rows_read: int
    rows_exported: int
    rows_failed: int
    rows_unchanged: int
    objects_written: int
    objects_failed: int
    objects_skipped: int
    bytes_written: int
    batches: int
    elapsed_s: float
    retries: int
    checkpoint: Any
    dlq: str
    dlq_entries: list[str] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)
    stopped: bool = False
    replayed_entries: int = 0
    dry_run: bool = False
    would_write: list[dict[str, Any]] = field(default_factory=list)  # --dry-run: key, source, rows, bytes
    deleted: list[str] = field(default_factory=list)  # superseded objects deleted (--from-start, --dedup)
    would_delete: list[str] = field(default_factory=list)  # --dry-run: what ``deleted`` would have been
    #: ``--cluster``: workers, ranges ("shards") planned/done/failed, per-worker objects, bytes and busy seconds
    cluster: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.rows_failed == 0 and self.objects_failed == 0

    @property
    def rows_per_s(self) -> float:
        return self.rows_exported / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["failed"] = [asdict(f) for f in self.failed]
        d["rows_per_s"] = round(self.rows_per_s, 1)
        d["ok"] = self.ok
        d["event"] = "summary"
        return d
