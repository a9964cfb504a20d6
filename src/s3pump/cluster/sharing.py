"""Global limits on a cluster: ``--bwlimit`` and ``--max-rps`` shared by the workers that have work.

Each worker process enforces its share with its own token buckets (one
:class:`~s3pump.engine.limits.EngineLimits` per process, :mod:`.worker`). The shares start even
(:func:`worker_config`: the total over the workers present). Then a thread of the coordinator,
:class:`LimitSharer`, asks the scheduler every :data:`SHARE_EVERY_S` which workers hold a task
of the run (``Client.processing``: running or queued there) and gives each of those ``total / n``
and each other worker :data:`IDLE_FRACTION` of the total (so one that is handed a shard cannot
add its share on top before the next look). A change is sent to the workers (``Client.run``)
lowering first, raising second, so the sum of the shares never exceeds the total in between.

Why a recomputed split and not a token service that workers lease from: a lease per grant costs
a round trip per grant, and to stay under 1 % of the requests at a few requests a second (1 MiB
files at 8 MB/s) a grant would have to last seconds, too coarse to share; the split costs one
scheduler query per :data:`SHARE_EVERY_S` and one message per change of the busy set, whatever
the request rate. Bounds: a worker that gets work waits at most one look (plus a message) for
its share, and the share of one that ran out of work is unused as long, so the cluster reaches
the limit within ~0.3 s of a change; it never exceeds it but by the buckets' bursts (a quarter
second of each busy worker's rate, saved only while it sent less than its share).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from ..config import TransferConfig

__all__ = ["IDLE_FRACTION", "SHARE_EVERY_S", "LimitSharer", "Share", "apply_share", "shares", "worker_config"]

#: Seconds between two looks at which workers hold a task of the run.
SHARE_EVERY_S = 0.25
#: Seconds between two looks until the first shard is seen on a worker.
FIRST_LOOKS_S = 0.05
#: The share of the total a worker without a task of the run keeps (a token bucket needs a rate > 0).
IDLE_FRACTION = 0.001

#: One worker's ``(bandwidth bytes/s, requests/s, request burst)``; None where the limit is off.
Share = tuple[float | None, float | None, int | None]


def worker_config(config: TransferConfig, workers: int, worker_bwlimit_bps: int | None = None) -> TransferConfig:
    """The config one of ``workers`` workers starts with: no credentials (each worker uses its own
    environment's), and ``--bwlimit``/``--max-rps``/``--rps-burst`` split evenly so the totals hold
    over the cluster (then shared by demand: :class:`LimitSharer`). ``worker_bwlimit_bps`` caps each
    worker further (benchmarks and tests)."""
    bw = config.max_bandwidth_bps // workers if config.max_bandwidth_bps else None
    if worker_bwlimit_bps:
        bw = min(bw, worker_bwlimit_bps) if bw else worker_bwlimit_bps
    return config.replace(
        access_key_id=None, secret_access_key=None, session_token=None,
        max_bandwidth_bps=max(1024, bw) if bw else None,
        max_rps=config.max_rps / workers if config.max_rps else None,
        rps_burst=max(1, config.rps_burst // workers) if config.rps_burst else None,
    )


def shares(config: TransferConfig, workers: list[str], busy: set[str],
           worker_bwlimit_bps: int | None = None) -> dict[str, Share]:
    """Each of ``workers``' share of ``config``'s global limits when ``busy`` hold the work: the
    total over the busy ones, :data:`IDLE_FRACTION` of it for the others; ``worker_bwlimit_bps``
    caps each (bytes/s)."""
    n = max(1, len(busy))
    out: dict[str, Share] = {}
    for w in workers:
        part = 1 / n if w in busy else IDLE_FRACTION
        bw: float | None = None
        if config.max_bandwidth_bps:
            bw = max(1024.0, config.max_bandwidth_bps * part)
            bw = min(bw, worker_bwlimit_bps) if worker_bwlimit_bps else bw
        elif worker_bwlimit_bps:
            bw = float(worker_bwlimit_bps)
        rps = config.max_rps * part if config.max_rps else None
        burst = max(1, int(config.rps_burst * part)) if config.rps_burst else None
        out[w] = (bw, rps, burst)
    return out


def apply_share(plugin: str, table: dict[str, Share], dask_worker: Any = None) -> bool:
    """On a worker (``Client.run``): set this process's limits of run ``plugin`` to its entry of
    ``table``; whether it had that run's runtime."""
    from .worker import WorkerRuntime

    runtime = dask_worker.plugins.get(plugin) if dask_worker is not None else None
    if not isinstance(runtime, WorkerRuntime) or dask_worker.address not in table:
        return False
    runtime.limits.reshare(*table[dask_worker.address])
    return True


class LimitSharer:
    """The coordinator's thread that keeps the workers' shares following the work (module docstring).

    Args:
        client: the run's ``distributed.Client``.
        plugin: the run's plugin name.
        config: the run's config (the global limits).
        workers: the workers present at the start (each holds an even share).
        worker_bwlimit_bps: a per-worker cap (bytes/s), or None.
        task_prefix: what the keys of the run's transfer tasks start with
            (:func:`~s3pump.cluster.coordinator.task_prefix`): a worker holding one is busy.
    """

    def __init__(self, client: Any, plugin: str, config: TransferConfig, workers: list[str],
                 worker_bwlimit_bps: int | None = None, *, task_prefix: str) -> None:
        self._client = client
        self._plugin = plugin
        self._prefix = task_prefix
        self._config = config
        self._cap = worker_bwlimit_bps
        self._sent: dict[str, Share] = shares(config, workers, set(workers), worker_bwlimit_bps)
        self._initial = next(iter(self._sent.values()), (None, None, None))
        self._stop = threading.Event()
        self._seen = False  # a worker held a shard at some look
        #: how many times shares were sent to workers (a change of the busy set)
        self.changes = 0

    @property
    def needed(self) -> bool:
        """Whether there is a global limit to share."""
        return bool(self._config.max_bandwidth_bps or self._config.max_rps)

    def step(self) -> None:
        """One look: the busy workers, and the shares sent where they changed (lowered first)."""
        processing: dict[str, Any] = self._client.processing()
        busy = {w for w, keys in processing.items() if any(str(k).startswith(self._prefix) for k in keys)}
        if not busy:
            return  # between shards, or the walk: keep the shares where the work was
        self._seen = True
        want = shares(self._config, sorted(processing), busy, self._cap)
        changed = {w: s for w, s in want.items() if s != self._sent.get(w, self._initial)}
        if not changed:
            return
        lower = [w for w, s in changed.items() if _key(s) < _key(self._sent.get(w, self._initial))]
        for group in (lower, [w for w in changed if w not in lower]):
            if not group:
                continue
            answers = self._client.run(apply_share, self._plugin, changed, workers=group, on_error="return")
            for w, ok in answers.items():
                if ok is True:
                    self._sent[w] = changed[w]
        self.changes += 1

    def _loop(self) -> None:
        # until the first shards are seen on their workers, look often: the start is when one worker may
        # hold all the work of a small tree at its even share
        while not self._stop.wait(SHARE_EVERY_S if self._seen else FIRST_LOOKS_S):
            with contextlib.suppress(Exception):  # a worker gone, a closing cluster: the next look retries
                self.step()

    @contextlib.contextmanager
    def running(self) -> Iterator[LimitSharer]:
        """The thread runs while the body does (not at all without a global limit)."""
        if not self.needed:
            yield self
            return
        thread = threading.Thread(target=self._loop, name="s3pump-limit-sharer", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)


def _key(share: Share) -> float:
    bw, rps, _ = share
    return bw if bw is not None else rps if rps is not None else 0.0
