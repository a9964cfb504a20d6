"""What a shard's task returns, and the per-worker rates the coordinator sums from them; the
events of shards whose result did not come back (cancelled, or failed as a whole).

A shard cancelled on Ctrl-C has no result for the coordinator (its future is cancelled), yet its
worker finished files before the cancel, and more while its engine waited for its PUTs in flight
(:mod:`s3pump.engine.cancel`): their objects exist, and a rerun must not send them again. So each
worker keeps the events of its last shards (:class:`KeptShards`, a few per worker thread: the
coordinator never has more shards in flight than that) and the coordinator, once the cancelled
shards stopped, takes those of the shards it has no result for (:func:`take_kept`,
:func:`replay_kept`) and emits them on its bus, where the resume journal records them. A shard
that fails as a whole carries its events on its error instead (:func:`carry_events`).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..events import Event, FileDone, FileFailed, FileSkipped, ShardSettled

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["KeptShards", "PathMismatch", "ShardResult", "WorkerRates", "carried_events", "carry_events",
           "finished_keys", "replay_kept", "take_kept"]

#: The attribute of a shard's error that carries the events of its files finished before it failed.
_CARRIED = "s3pump_shard_events"


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


class KeptShards:
    """The events of the last ``limit`` shards run in this worker process, by shard index (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._shards: OrderedDict[int, tuple[Event, ...]] = OrderedDict()

    def keep(self, index: int, events: Sequence[Event]) -> None:
        """Keep shard ``index``'s events (the oldest shard's are dropped beyond ``limit``)."""
        with self._lock:
            self._shards[index] = tuple(events)
            self._shards.move_to_end(index)
            while len(self._shards) > self.limit:
                self._shards.popitem(last=False)

    def take(self, indices: Iterable[int]) -> dict[int, tuple[Event, ...]]:
        """The events kept of the shards ``indices`` (removed here)."""
        with self._lock:
            return {i: self._shards.pop(i) for i in indices if i in self._shards}


def take_kept(plugin: str, indices: list[int], dask_worker: Any = None) -> dict[int, tuple[Event, ...]]:
    """Run on every worker (``Client.run``) once cancelled shards stopped: the events this worker
    kept of shards ``indices`` of run ``plugin`` (whose results the coordinator never got)."""
    runtime = dask_worker.plugins.get(plugin) if dask_worker is not None else None
    kept = getattr(runtime, "kept", None)
    return kept.take(indices) if isinstance(kept, KeptShards) else {}


def replay_kept(client: Any, run: Run, plugin: str, indices: list[int]) -> None:
    """Emit on ``run``'s bus the events the workers kept of shards ``indices`` (cancelled, or whose
    results were not taken yet), each shard's followed by :class:`~s3pump.events.ShardSettled` (the
    journal commits them). A shard kept by two workers (run again after one was thought lost) is
    replayed from the one that finished more. A worker gone, or a cluster closing: nothing replayed
    (the rerun sends those files again)."""
    if not indices:
        return
    try:
        answers: dict[str, dict[int, tuple[Event, ...]]] = client.run(take_kept, plugin, indices)
    except Exception:
        return
    best: dict[int, tuple[Event, ...]] = {}
    for kept in answers.values():
        for index, events in kept.items():
            if len(finished_keys(events)) >= len(finished_keys(best.get(index, ()))):
                best[index] = events
    for index in sorted(best):
        for event in best[index]:
            run.emit(event)
        run.emit(ShardSettled(index))


def carry_events(error: BaseException, events: Sequence[Event]) -> None:
    """Attach a failed shard's ``events`` to its ``error`` (pickled with it to the coordinator)."""
    with contextlib.suppress(AttributeError):  # an exception type without a __dict__
        setattr(error, _CARRIED, tuple(events))


def carried_events(error: BaseException | None) -> tuple[Event, ...]:
    """The events a failed shard's error carries (:func:`carry_events`); none if it carries none."""
    return tuple(getattr(error, _CARRIED, ()))


def finished_keys(events: Iterable[Event]) -> set[str]:
    """The keys ``events`` report an outcome of (done, failed or skipped)."""
    return {e.key for e in events if isinstance(e, FileDone | FileFailed | FileSkipped)}
