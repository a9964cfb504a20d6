"""Human and machine output: the rich progress bar (stderr) and ``--json`` lines (stdout).

Both are event subscribers. The progress bar throttles its updates to ~10 per
second, so it costs nothing measurable at thousands of files per second.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .events import (
    ConcurrencyChanged,
    EntrySkipped,
    Event,
    FileDone,
    FileFailed,
    FileSkipped,
    ObjectDeleted,
    PartDone,
    RetryScheduled,
    UploadPlanned,
)
from .report import UploadReport
from .units import format_bytes

if TYPE_CHECKING:
    from .jobs.sync import SyncReport

__all__ = [
    "JsonLines",
    "PlainProgress",
    "ProgressView",
    "SyncPlanPrinter",
    "print_summary",
    "print_sync_summary",
    "stderr_console",
]


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


class JsonLines:
    """``--json``: one JSON object per finished, failed or skipped file on stdout, then a summary."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDone):
            rec: dict[str, Any] = {"event": "done", "source": event.source, "key": event.key,
                                   "size_bytes": event.size_bytes, "etag": event.etag,
                                   "latency_s": round(event.latency_s, 6), "attempts": event.attempts,
                                   "parts": event.parts}
            if event.version_id:
                rec["version_id"] = event.version_id
        elif isinstance(event, FileFailed):
            rec = {"event": "failed", "source": event.source, "key": event.key,
                   "error": str(event.error), "error_type": type(event.error).__name__}
        elif isinstance(event, FileSkipped):
            rec = {"event": "skipped", "source": event.source, "key": event.key, "reason": event.reason}
        elif isinstance(event, EntrySkipped):
            rec = {"event": "skipped_entry", "source": event.path, "kind": event.kind}
        elif isinstance(event, UploadPlanned):
            rec = {"event": "planned", "source": event.source, "key": event.key, "size_bytes": event.size_bytes,
                   "reason": event.reason, "fallback": event.fallback}
        elif isinstance(event, ObjectDeleted):
            rec = {"event": "would_delete" if event.dry_run else "deleted", "key": event.key}
            if event.error is not None:
                rec.update(event="delete_failed", error=str(event.error))
        elif isinstance(event, ConcurrencyChanged):
            rec = {"event": "concurrency", "old": event.old, "new": event.new, "reason": event.reason,
                   "throughput_bps": round(event.throughput_bps), "latency_p50_s": round(event.latency_s, 6)}
        else:
            return
        self.stream.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def summary(self, data: dict[str, Any]) -> None:
        self.stream.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        self.stream.flush()


class _Counts:
    """What both progress views show: files finished (done, skipped or failed), bytes uploaded,
    failures, retries. ``update`` says whether the event changed anything."""

    __slots__ = ("bytes", "failed", "files", "retries")

    def __init__(self) -> None:
        self.files = self.failed = self.retries = self.bytes = 0

    def update(self, event: Event) -> bool:
        if isinstance(event, FileDone | FileSkipped):
            self.files += 1
            if isinstance(event, FileDone) and not event.parts:  # multipart bytes come part by part
                self.bytes += event.size_bytes
        elif isinstance(event, PartDone):
            self.bytes += event.size_bytes
        elif isinstance(event, FileFailed):
            self.files += 1
            self.failed += 1
        elif isinstance(event, RetryScheduled):
            self.retries += 1
        else:
            return False
        return True


class PlainProgress:
    """``--progress plain``: one line on stderr every ``interval_s`` (for logs and CI), e.g.
    ``s3pump: 1200/5000+ files, 48.0 MiB, 12.3 MB/s, 2 retries, 0 failed``."""

    def __init__(self, totals: Callable[[], tuple[int, int, bool]], interval_s: float = 5.0,
                 stream: IO[str] | None = None) -> None:
        self._totals = totals
        self._interval_s = interval_s
        self._stream = stream or sys.stderr
        self._start = time.monotonic()
        self._last = self._start
        self._counts = _Counts()

    def __call__(self, event: Event) -> None:
        self._counts.update(event)  # every event (Tick included) may be time for a line
        now = time.monotonic()
        if now - self._last >= self._interval_s:
            self._last = now
            self.print_line(now)

    def print_line(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        files, _, final = self._totals()
        c = self._counts
        rate = c.bytes / max(now - self._start, 1e-9) / 1e6
        self._stream.write(f"s3pump: {c.files}/{files}{'' if final else '+'} files, {format_bytes(c.bytes)}, "
                           f"{rate:.1f} MB/s, {c.retries} retries, {c.failed} failed\n")
        self._stream.flush()


class ProgressView:
    """A rich progress bar of files and bytes done/total, rate and ETA, on stderr.

    ``totals()`` returns (files, bytes, final) discovered so far; until the source is
    fully listed the totals grow and the ETA is an estimate.
    """

    _INTERVAL_S = 0.1

    def __init__(self, totals: Callable[[], tuple[int, int, bool]], console: Console | None = None) -> None:
        self._totals = totals
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=console or stderr_console(),
            transient=False,
            refresh_per_second=8,
        )
        self._files_task = self._progress.add_task("upload", total=None, note="")
        self._counts = _Counts()
        self._last = 0.0

    def __enter__(self) -> ProgressView:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._refresh(force=True)
        self._progress.stop()

    def __call__(self, event: Event) -> None:
        if self._counts.update(event):
            self._refresh()

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._INTERVAL_S:
            return
        self._last = now
        files, total_bytes, final = self._totals()
        c = self._counts
        note = []
        if c.failed:
            note.append(f"[red]{c.failed} failed[/]")
        if c.retries:
            note.append(f"{c.retries} retries")
        # rich shows bytes in DownloadColumn from completed/total; files go in the description
        self._progress.update(
            self._files_task,
            completed=c.bytes,
            total=total_bytes if final or total_bytes else None,
            description=f"{c.files}/{files}{'' if final else '+'} files",
            note=" ".join(note),
        )


def print_summary(
    console: Console, report: UploadReport, *, verb: str = "uploaded", destination: str = "s3://BUCKET/"
) -> None:
    """The end-of-run summary on stderr."""
    rate = report.rate_bps / 1e6
    if report.dry_run:
        line = (f"dry run: would upload {report.files_skipped} files, {format_bytes(report.bytes_skipped)}; "
                f"{report.files_failed} could not be planned (listed below); nothing was sent")
        report = replace(report, files_skipped=0)
    else:
        line = (
            f"{verb} {report.files_done} files, {format_bytes(report.bytes_done)} in {report.elapsed_s:.1f} s "
            f"({rate:.1f} MB/s); retries {report.retries}; failures {report.files_failed}; "
            f"latency p50 {report.latency_p50_s * 1000:.1f} ms, p99 {report.latency_p99_s * 1000:.1f} ms"
        )
    if report.files_skipped:
        line += f"; skipped {report.files_skipped}"
    console.print(line)
    if report.files_failed:
        for f in report.failed[:20]:
            what = f.error if f.error.startswith(f.source) else f"{f.source}: {f.error}"
            console.print(f"[red]failed[/] {escape(what)}", markup=True)
        if report.files_failed > 20:
            console.print(f"... and {report.files_failed - 20} more")
        if report.failed_list_path:
            console.print(f"failed files written to {report.failed_list_path}; "
                          f"retry with: s3pump upload --from-list {report.failed_list_path} {destination}")


class SyncPlanPrinter:
    """Sync's human output. With ``dry_run``: the plan on stdout, one line per upload
    (``(dry-run) upload: PATH to s3://bucket/key  [reason]``) and per delete. Otherwise, on
    stderr: the files uploaded only because their contents could not be compared exactly
    (first 20, with the reason), and failed deletes."""

    MAX_NOTES = 20

    def __init__(self, destination: str, *, dry_run: bool, stream: IO[str] | None = None,
                 console: Console | None = None) -> None:
        self.bucket = destination[5:].partition("/")[0]
        self.dry_run = dry_run
        self.stream = stream or sys.stdout
        self.console = console or stderr_console()
        self.notes = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, UploadPlanned):
            if self.dry_run:
                self.stream.write(f"(dry-run) upload: {event.source} to s3://{self.bucket}/{event.key}  "
                                  f"[{event.reason}]\n")
            elif event.fallback:
                self.notes += 1
                if self.notes <= self.MAX_NOTES:
                    self.console.print(f"note: uploading s3://{self.bucket}/{event.key}: {event.reason}",
                                       markup=False)
                elif self.notes == self.MAX_NOTES + 1:
                    self.console.print("note: more files uploaded for the same kind of reason; --json lists all")
        elif isinstance(event, ObjectDeleted):
            if event.error is not None:
                self.console.print(f"[red]delete failed[/] s3://{self.bucket}/{event.key}: {event.error}")
            elif event.dry_run:
                self.stream.write(f"(dry-run) delete: s3://{self.bucket}/{event.key}\n")


def print_sync_summary(console: Console, report: SyncReport) -> None:
    """The sync plan's counts on stderr (after :func:`print_summary` for a real run)."""
    hashed = ""
    if report.files_hashed or report.hash_cache_hits:
        hashed = (f"; hashed {report.files_hashed} files ({format_bytes(report.bytes_hashed)}), "
                  f"{report.hash_cache_hits} from the hash cache")
    deletes = f"{report.planned_deletes} to delete"
    if not report.dry_run:
        deletes = f"deleted {report.objects_deleted}"
        if report.deletes_failed:
            deletes += f" (failed {report.deletes_failed})"
    if report.deletes_withheld:
        deletes += f"; {report.deletes_withheld} deletes withheld (under local paths that could not be read)"
    lead = "dry run, nothing changed: " if report.dry_run else ""
    console.print(
        f"sync ({report.mode}): {lead}{report.local_files} local files, {report.remote_objects} objects; "
        f"{report.planned_uploads} new or changed, {report.files_skipped} unchanged, {deletes}, "
        f"{report.remote_only_kept} remote-only kept{hashed}",
        markup=False,
    )
    if report.fallback_uploads:
        console.print(f"{report.fallback_uploads} files were uploaded because their contents could not be "
                      "compared exactly (see the notes above or --json)", markup=False)
