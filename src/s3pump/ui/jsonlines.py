"""``--json``: one JSON object per event that names an object, and a summary, on stdout."""

from __future__ import annotations

import json
from typing import IO, Any

from ..events import (
    ClusterForecast,
    ConcurrencyChanged,
    EntrySkipped,
    Event,
    FileDone,
    FileFailed,
    FileSkipped,
    ObjectDeleted,
    UploadPlanned,
)
from .stdout_guard import GuardedStdout

__all__ = ["JsonLines"]


class JsonLines:
    """``--json``: one JSON object per finished, failed or skipped file on stdout, then a summary."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = GuardedStdout(stream)  # a reader that goes away (`| head`) stops the lines, not the run

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
        elif isinstance(event, ClusterForecast):
            rec = {"event": "cluster_forecast", **{f: getattr(event, f) for f in ClusterForecast.__dataclass_fields__}}
        elif isinstance(event, ConcurrencyChanged):
            rec = {"event": "concurrency", "old": event.old, "new": event.new, "reason": event.reason,
                   "throughput_bps": round(event.throughput_bps), "latency_p50_s": round(event.latency_s, 6)}
        else:
            return
        self.stream.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def summary(self, data: dict[str, Any]) -> None:
        self.stream.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        self.stream.flush()
