"""The one progress view: a live line on a terminal (``bar``) or a line every few seconds (``plain``).

It consumes events only: ``Discovered`` (totals so far), ``FileDone``/``FileSkipped``/``FileFailed``
and ``FilesUnchanged`` (files finished), ``PartDone`` (bytes of multipart uploads), ``RetryScheduled``, ``SourceRead``
(a stream's bytes read), ``BatchExported`` (an export's rows and checkpoint) and ``ShardProgress``
(``--cluster``: what the shards in flight have done so far, shown until their results come in). The columns
depend on the job (``kind``):

* ``files`` (upload, sync): ``upload  1,200/5,000 files  48.0 MiB/120.5 MiB  12.3 MiB/s  ETA 0:00:05``
* ``stream``: ``stream  read 1.2 GiB  sent 1.0 GiB  95.1 MiB/s``
* ``export``: ``export  120,000 rows  12 objects  9.8 MiB  41,230 rows/s  checkpoint 120000``

The bar mode keeps to one line of the terminal's width: a bar fills what the text leaves, and
the text is cut (never wrapped) when the terminal is narrower than it.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from ..events import (
    BatchExported,
    Discovered,
    Event,
    FileDone,
    FileFailed,
    FileSkipped,
    FilesUnchanged,
    PartDone,
    RetryScheduled,
    RowsFound,
    ShardProgress,
    SourceRead,
    Tick,
)
from ..units import format_bytes, format_rate

__all__ = ["Counts", "PlainProgress", "ProgressBar", "progress_line"]


class Counts:
    """What the views show, counted from events. ``update`` says whether the event changed anything."""

    __slots__ = ("_bytes", "_files", "_sending", "_shard_bytes", "_shard_files", "_shards", "checkpoint", "failed",
                 "files_final", "final", "objects", "read", "retries", "rows", "skipped_bytes", "started",
                 "total_bytes", "total_files", "total_rows")

    def __init__(self) -> None:
        self._files = self.failed = self.retries = self._bytes = self.objects = self.rows = self.read = 0
        self.total_files = self.total_bytes = 0
        self.total_rows: int | None = None  # an export's rows to read this run, once counted
        self._sending = 0  # bytes of requests in flight sent so far (the engine's last Tick; --bwlimit)
        self.skipped_bytes = 0  # of files not sent (unchanged, done in an earlier run): in the totals, not the rate
        self._shards: dict[int, tuple[int, int]] = {}  # --cluster: files and bytes of shards in flight
        self._shard_files = self._shard_bytes = 0  # their sums, kept as they change: a view's thread reads
        # ``files``/``bytes`` while the events' threads change ``_shards``, so it must not iterate over it
        self.final = False
        self.files_final = False  # the files' total is final (the bytes' may still grow)
        self.checkpoint: Any = None
        self.started = time.monotonic()

    @property
    def files(self) -> int:
        """Files finished (done, skipped or failed), with those of ``--cluster`` shards still in flight."""
        return self._files + self._shard_files

    @property
    def bytes(self) -> int:
        """Bytes sent: of requests finished, of requests in flight so far (as the last ``Tick`` counted them;
        under ``--bwlimit``), and of ``--cluster`` shards still in flight."""
        return self._bytes + self._sending + self._shard_bytes

    @property
    def done_bytes(self) -> int:
        """Bytes sent or not needing to be (skipped files): what the totals are compared with."""
        return self.bytes + self.skipped_bytes

    @property
    def shown_totals(self) -> tuple[int, int]:
        """The totals to show: never below what is done (the walk's counts may lag its files)."""
        return max(self.total_files, self.files), max(self.total_bytes, self.done_bytes)

    def update(self, event: Event) -> bool:
        if isinstance(event, FileDone):
            self._files += 1
            self.objects += 1
            if not event.parts:  # multipart bytes come part by part
                self._bytes += event.size_bytes
                self._sending = max(0, self._sending - event.size_bytes)  # no longer in flight: never twice
        elif isinstance(event, PartDone):
            self._bytes += event.size_bytes
            self._sending = max(0, self._sending - event.size_bytes)
        elif isinstance(event, Tick):
            self._sending = event.sending_bytes
        elif isinstance(event, FileSkipped):
            self._files += 1
            self.skipped_bytes += event.size_bytes
        elif isinstance(event, FilesUnchanged):
            self._files += event.files
            self.skipped_bytes += event.size_bytes
        elif isinstance(event, FileFailed):
            self._files += 1
            self.failed += 1
        elif isinstance(event, ShardProgress):
            old_files, old_bytes = self._shards.pop(event.shard, (0, 0))
            if event.files or event.bytes:
                self._shards[event.shard] = (event.files, event.bytes)
            self._shard_files += event.files - old_files
            self._shard_bytes += event.bytes - old_bytes
        elif isinstance(event, RetryScheduled):
            self.retries += 1
        elif isinstance(event, Discovered):
            self.total_files, self.total_bytes, self.final = event.files, event.bytes, event.final
            self.files_final = event.final or event.files_final
        elif isinstance(event, SourceRead):
            self.read += event.size_bytes
        elif isinstance(event, RowsFound):
            self.total_rows = event.rows
        elif isinstance(event, BatchExported):
            self.rows += event.rows
            self.checkpoint = event.checkpoint
        else:
            return False
        return True

    @property
    def elapsed_s(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)


def _eta(c: Counts, rate_bps: float) -> str:
    """The time left at ``rate_bps``; while the totals are still growing (not ``final``), the time left
    for what is counted so far, a lower bound, marked ``+`` as the totals are (``ETA 0:04:10+``)."""
    total_files, total_bytes = c.shown_totals
    by_files = (total_files - c.files) * c.elapsed_s / c.files if total_files and c.files else None
    if total_bytes and rate_bps > 0:
        left_s = max(0.0, (total_bytes - c.done_bytes) / rate_bps)
        if not c.final and c.files_final and by_files is not None:  # the sizes still counted: the files say more
            left_s = max(left_s, by_files)
    elif by_files is not None:
        left_s = max(0.0, by_files)
    else:
        return "ETA -"
    m, s = divmod(int(left_s + 0.5), 60)
    h, m = divmod(m, 60)
    return f"ETA {h}:{m:02d}:{s:02d}" + ("" if c.final else "+")


def _rows_done(c: Counts) -> str:
    """``1,200/5,000`` (rows exported of the total counted; never over it: rows added meanwhile are more)."""
    if c.total_rows is None:
        return f"{c.rows:,}"
    return f"{c.rows:,}/{max(c.total_rows, c.rows):,}"


def _rows_eta(c: Counts) -> str:
    """``ETA 0:01:05  `` by the rows' rate, once the total is counted and rows have been exported."""
    if c.total_rows is None or not c.rows:
        return ""
    m, s = divmod(int(max(0, c.total_rows - c.rows) * c.elapsed_s / c.rows + 0.5), 60)
    h, m = divmod(m, 60)
    return f"ETA {h}:{m:02d}:{s:02d}  "


def progress_line(kind: str, c: Counts, label: str) -> tuple[str, str]:
    """The view's text for ``kind``, as (head, tail): a bar goes between them when there is room."""
    rate = c.bytes / c.elapsed_s
    notes = []
    if c.retries:
        notes.append(f"{c.retries} retries")
    if c.failed:
        notes.append(f"{c.failed} failed")
    if kind == "stream":
        head = f"{label}  read {format_bytes(c.read)}"
        tail = f"sent {format_bytes(c.bytes)}  {format_bytes(rate)}/s"
    elif kind == "export":
        head = f"{label}  {_rows_done(c)} rows"
        tail = (f"{c.objects:,} objects  {format_bytes(c.bytes)}  {c.rows / c.elapsed_s:,.0f} rows/s  "
                f"{_rows_eta(c)}checkpoint {c.checkpoint}")
    else:
        more = "" if c.final else "+"
        total_files, total_bytes = c.shown_totals
        head = f"{label}  {c.files:,}/{total_files:,}{'' if c.files_final else '+'} files"
        tail = (f"{format_bytes(c.done_bytes)}/{format_bytes(total_bytes)}{more}  {format_bytes(rate)}/s  "
                f"{_eta(c, rate)}")
    if notes:
        tail += "  " + " ".join(notes)
    return head, tail


class ProgressBar:
    """``--progress bar``: one live line on stderr (a terminal), redrawn 4 times a second by rich."""

    def __init__(self, kind: str, label: str, console: Any = None) -> None:
        from rich.live import Live

        from .console import rich_stderr_console

        self.kind = kind
        self.label = label
        self.counts = Counts()
        self._console = console or rich_stderr_console()
        self._live = Live(get_renderable=self._render, console=self._console, refresh_per_second=4,
                          transient=False, redirect_stdout=False, redirect_stderr=False)

    def _render(self) -> Any:
        from rich.text import Text

        width = self._console.width
        head, tail = progress_line(self.kind, self.counts, self.label)
        room = width - len(head) - len(tail) - 4
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(head)
        if room >= 10 and self.kind == "files" and self.counts.total_bytes:
            bar = min(room, 40)
            done = min(1.0, self.counts.done_bytes / self.counts.shown_totals[1]) if self.counts.final else 0.0
            filled = int(bar * done)
            text.append("  ")
            text.append("━" * filled, style="green")
            text.append("━" * (bar - filled), style="grey23")
        text.append("  " + tail)
        text.truncate(width, overflow="ellipsis")
        return text

    def __enter__(self) -> ProgressBar:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.refresh()
        self._live.stop()

    def __call__(self, event: Event) -> None:
        self.counts.update(event)


class PlainProgress:
    """``--progress plain``: a line on stderr every ``interval_s`` (for logs and CI), e.g.
    ``s3pump: 1200/5000 files, 48.0 MiB/120.5 MiB, 12.3 MiB/s, 2 retries, 0 failed``."""

    def __init__(self, kind: str, interval_s: float = 5.0, stream: IO[str] | None = None) -> None:
        self.kind = kind
        self._interval_s = interval_s
        self._stream = stream or sys.stderr
        self._last = time.monotonic()
        self.counts = Counts()

    def __call__(self, event: Event) -> None:
        self.counts.update(event)  # every event (Tick included) may be time for a line
        now = time.monotonic()
        if now - self._last >= self._interval_s:
            self._last = now
            self.print_line()

    def print_line(self) -> None:
        c = self.counts
        rate = format_rate(c.bytes / c.elapsed_s) if c.elapsed_s > 0 else format_rate(0)
        more = "" if c.final else "+"
        if self.kind == "stream":
            what = f"read {format_bytes(c.read)}, sent {format_bytes(c.bytes)}"
        elif self.kind == "export":
            what = (f"{_rows_done(c).replace(',', '')} rows, {c.objects} objects, {format_bytes(c.bytes)}, "
                    f"{_rows_eta(c).strip()}{', ' if c.total_rows is not None and c.rows else ''}"
                    f"checkpoint {c.checkpoint}")
        else:
            total_files, total_bytes = c.shown_totals
            what = (f"{c.files}/{total_files}{'' if c.files_final else '+'} files, "
                    f"{format_bytes(c.done_bytes)}/{format_bytes(total_bytes)}{more}")
        self._stream.write(f"s3pump: {what}, {rate}, {c.retries} retries, {c.failed} failed\n")
        self._stream.flush()
