"""What a shard's task returns, and the per-worker rates the coordinator sums from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..events import Event

__all__ = ["PathMismatch", "ShardResult", "WorkerRates"]


@dataclass(frozen=True, slots=True)
class ShardResult:
    """Shard ``index`` ran on ``worker`` (its Dask address) for ``busy_s`` seconds.

    ``events`` are the run's events in order (files, parts, multipart uploads, retries; not the
    engine's gauges), to replay on the coordinator's bus; ``bytes_done``/``files_done`` its totals.
    """

    index: int
    worker: str
    events: tuple[Event, ...]
    busy_s: float
    files_done: int
    bytes_done: int


@dataclass(frozen=True, slots=True)
class PathMismatch:
    """A worker sees ``path`` otherwise than the coordinator: ``what`` says how (missing, size, mtime)."""

    worker: str
    path: str
    what: str


@dataclass(slots=True)
class WorkerRates:
    """Totals per worker address: shards, files and bytes done, and seconds busy."""

    shards: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    busy_s: dict[str, float] = field(default_factory=dict)

    def add(self, result: ShardResult) -> None:
        w = result.worker
        self.shards[w] = self.shards.get(w, 0) + 1
        self.files[w] = self.files.get(w, 0) + result.files_done
        self.bytes[w] = self.bytes.get(w, 0) + result.bytes_done
        self.busy_s[w] = self.busy_s.get(w, 0.0) + result.busy_s

    def rows(self) -> list[dict[str, float | int | str]]:
        """One dict per worker: ``worker``, ``shards``, ``files``, ``bytes``, ``busy_s`` and
        ``rate_bps`` (bytes per busy second), sorted by address."""
        out: list[dict[str, float | int | str]] = []
        for w in sorted(self.shards):
            busy = self.busy_s[w]
            out.append({"worker": w, "shards": self.shards[w], "files": self.files[w], "bytes": self.bytes[w],
                        "busy_s": round(busy, 3), "rate_bps": self.bytes[w] / busy if busy > 0 else 0.0})
        return out


def sample_evenly(paths: Iterable[tuple[str, int, int]], count: int) -> list[tuple[str, int, int]]:
    """At most ``count`` of ``paths`` (path, size, mtime_ns), spread evenly over the sequence."""
    seq = list(paths)
    if len(seq) <= count:
        return seq
    step = len(seq) / count
    return [seq[int(i * step)] for i in range(count)]
