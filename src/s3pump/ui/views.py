"""The views of one command's run: ``--json`` lines, the progress view, metrics, and notices.

Use as a context manager around the job; give :attr:`Views.subscribers` to the job, and call
:meth:`Views.finish` with the report's JSON form at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..events import ClusterForecast, Event, Resuming, StopRequested
from ..units import format_bytes, format_rate
from .console import say
from .jsonlines import JsonLines
from .progress import PlainProgress, ProgressBar

__all__ = ["Views"]


def _notices(event: Event) -> None:
    """Lines a person must see whatever the progress mode: the first signal's effect, a cluster's forecast."""
    if isinstance(event, ClusterForecast):
        walk = "done" if event.walk_finished else f"{event.walk_files_per_s:,.0f} files/s"
        say(f"s3pump: cluster after {event.elapsed_s:.0f} s: {event.workers} workers upload "
            f"{event.files_per_s:,.0f} files/s, {format_rate(event.bytes_per_s)}; walk {walk}; "
            f"the {event.files_left:,} files ({format_bytes(event.bytes_left)}) found and not done need "
            f">= {event.predicted_s:,.0f} s at these rates (bound: {event.bound})")
    elif isinstance(event, Resuming):
        say(f"s3pump: resuming: {event.files_done:,} files done in an earlier run (skipped where their objects "
            f"are in the bucket), {event.uploads:,} multipart uploads continue; --no-resume starts over")
    elif isinstance(event, StopRequested):
        if event.again and event.hurry:
            say(f"s3pump: {event.signal} again: no longer waiting for requests in flight; the open uploads are "
                "still being aborted")
        elif event.again:
            say(f"s3pump: {event.signal} again: stopping now; open multipart uploads are kept for the resume "
                "journal (rerun the same command to resume)")
        elif event.graceful:
            say(f"s3pump: {event.signal}: stopping after the in-flight batches (again to cancel now)")
        else:
            say(f"s3pump: {event.signal}: cancelling at a safe point (again to stop at once)")


class Views:
    """``json_output``: events and the summary on stdout. ``progress``: ``bar`` (on a terminal),
    ``plain`` or ``none`` (``no_progress`` means none). ``kind``/``label``: the progress view's
    columns (``files``, ``stream``, ``export``) and its first word. ``json_events``: write the per-object
    events too (a stream has one object: only the summary)."""

    def __init__(self, *, kind: str, label: str, json_output: bool, progress: str | None, no_progress: bool,
                 metrics_port: int | None = None, metrics_file: Path | None = None,
                 json_events: bool = True) -> None:
        mode = "none" if no_progress else (progress or "bar")
        if mode not in ("bar", "plain", "none"):
            raise UsageError(f"--progress {mode!r}: use bar, plain or none")
        self.json = JsonLines() if json_output else None
        self.bar = ProgressBar(kind, label) if mode == "bar" and sys.stderr.isatty() else None
        self.plain = PlainProgress(kind) if mode == "plain" else None
        self.metrics: Any = None
        if metrics_port is not None or metrics_file is not None:
            from .metrics import RunMetrics  # prometheus-client only when asked for

            self.metrics = RunMetrics()
        self.metrics_port = metrics_port
        self.metrics_file = metrics_file
        events = self.json if json_events else None
        self.subscribers: list[Any] = [v for v in (_notices, events, self.bar, self.plain, self.metrics)
                                       if v is not None]

    def __enter__(self) -> Views:
        if self.metrics is not None and self.metrics_port is not None:
            try:
                self.metrics.serve(self.metrics_port)
            except OSError as e:
                raise UsageError(f"--metrics-port {self.metrics_port}: {e.strerror}") from None
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        if self.metrics is not None:
            self.metrics.close()

    def finish(self, summary: dict[str, Any]) -> None:
        if self.plain is not None:
            self.plain.print_line()
        if self.json is not None:
            self.json.summary(summary)
        if self.metrics is not None and self.metrics_file is not None:
            self.metrics.write(self.metrics_file, summary)
