"""The live counters of ``s3pump export`` (its final report is :class:`s3pump.reports.ExportReport`;
the views are in :mod:`s3pump.ui`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExportCounters"]


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
