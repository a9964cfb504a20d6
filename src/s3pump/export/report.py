"""Counters, the final report, and the live progress line of ``s3pump export``."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..report import FailedFile
from ..units import format_bytes

__all__ = ["ExportCounters", "ExportProgress", "ExportReport", "print_dry_run", "print_export_summary"]


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


class ExportProgress:
    """One live line on stderr: rows, objects, bytes, rows/s, checkpoint. Refreshed 4 times a second."""

    def __init__(self, counters: ExportCounters, console: Console) -> None:
        self.counters = counters
        self._live = Live(get_renderable=self._render, console=console, refresh_per_second=4, transient=False)

    def _render(self) -> Text:
        c = self.counters
        rate = c.rows_exported / c.elapsed_s if c.elapsed_s > 0 else 0.0
        line = (f"export: {c.rows_exported:,} rows, {c.objects_written:,} objects, "
                f"{format_bytes(c.bytes_written)}, {rate:,.0f} rows/s, checkpoint {c.checkpoint}")
        if c.rows_failed or c.objects_failed:
            line += f", failed {c.rows_failed} rows / {c.objects_failed} objects"
        return Text(line)

    def __enter__(self) -> ExportProgress:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()


def print_export_summary(console: Console, r: ExportReport) -> None:
    """The end-of-run summary on stderr."""
    line = (f"exported {r.rows_exported:,} rows of {r.table} in {r.objects_written:,} objects "
            f"({format_bytes(r.bytes_written)}) to {r.destination} in {r.elapsed_s:.1f} s "
            f"({r.rows_per_s:,.0f} rows/s); checkpoint {r.checkpoint}; retries {r.retries}")
    if r.objects_skipped:
        line += f"; unchanged {r.objects_skipped} objects ({r.rows_unchanged:,} rows)"
    if r.replayed_entries:
        line += f"; replayed {r.replayed_entries} dead-letter entries"
    console.print(line, markup=False)
    if r.stopped:
        console.print("stopped on request after the in-flight batches; rerun to continue", markup=False)
    if not r.ok:
        console.print(f"failures: {r.rows_failed} rows, {r.objects_failed} objects; dead-letter entries in "
                      f"{r.dlq} (retry with --replay-dlq):", markup=False)
        for e in r.dlq_entries[:20]:
            console.print(f"  {e}", markup=False)


def print_dry_run(r: ExportReport) -> None:
    """``--dry-run``: one stdout line per object the export would write (the aws cli's ``(dryrun)`` form)."""
    bucket = r.destination.removeprefix("s3://").split("/", 1)[0]
    for o in r.would_write:
        print(f"(dryrun) export: {o['source']} ({o['rows']} rows, {format_bytes(o['bytes'])}) to "
              f"s3://{bucket}/{o['key']}", flush=True)
    for key in r.would_delete:
        print(f"(dryrun) delete: s3://{bucket}/{key} (superseded)", flush=True)
