"""The Dask preload of the worker processes of a ``local:N`` cluster (``connect``): they ignore SIGINT.

A Ctrl-C in a terminal reaches the whole foreground process group: the coordinator, and the worker
processes of a ``local:N`` cluster it started. A worker that took it as a KeyboardInterrupt died
on the spot, with its shard's PUTs in flight and the events of what it had finished (which the
coordinator replays after a cancel: :func:`~s3pump.cluster.results.replay_kept`), and a rerun sent
those files again. The coordinator handles the Ctrl-C: it cancels the shards, and each worker stops
its running shard at a safe point (:meth:`~s3pump.cluster.worker.WorkerRuntime.cancelled_with`).
The coordinator still stops the workers when it exits (the nanny closes them; SIGTERM, SIGKILL).
Workers of a cluster the user started are not touched: a Ctrl-C in their terminal stops them.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["dask_setup"]


def dask_setup(worker: Any) -> None:
    """Called by Dask in each local worker process as it starts (``preload``): ignore SIGINT there."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
