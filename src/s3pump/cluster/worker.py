"""The worker side: one store and one set of limits per worker process, and the shard task.

:class:`WorkerRuntime` is a Dask ``WorkerPlugin``: registered once per run, it lives in every
worker process for the whole run. It opens the store (one awscrt client) at the first shard and
closes it at teardown, and holds the process's :class:`~s3pump.engine.limits.EngineLimits`, so
the bandwidth limiter's burst is granted once per worker (not once per shard) and adaptive
concurrency keeps what it learnt from shard to shard. Shards run one at a time per process (a
lock): the engine in each is concurrent already, and the limits assume one engine at a time.

Credentials come from the worker's own environment (``AWS_*`` variables, a profile, an instance
profile): the config a plugin carries has them removed by the coordinator.

``S3PUMP_CLUSTER_PATH_MAP`` (in a worker's environment, ``FROM=TO`` pairs separated by ``;``)
reads a path the coordinator calls ``FROM/...`` as ``TO/...`` on that worker, for nodes that
mount the shared filesystem elsewhere. Keys do not change.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from distributed import WorkerPlugin, get_worker

from ..config import TransferConfig
from ..engine.limits import EngineLimits
from ..errors import CancelledError
from ..events import ConcurrencyChanged, Event, FileDone, FileFailed, FileSkipped, PartDone, Tick
from ..items import UploadItem
from ..run import Run
from ..store.base import Store
from .results import KeptShards, PathMismatch, ShardResult, carry_events
from .shards import Shard

__all__ = ["PATH_MAP_ENV", "WorkerRuntime", "check_paths", "local_path", "path_map", "progress_topic", "run_shard",
           "stop_shards", "wait_idle"]

PATH_MAP_ENV = "S3PUMP_CLUSTER_PATH_MAP"
#: Seconds between two looks at whether the coordinator cancelled the running shard.
CANCEL_POLL_S = 0.1
#: Seconds between two progress messages of a running shard (files and bytes so far).
PROGRESS_EVERY_S = 0.25
#: Shards whose events each worker process keeps, per worker thread (the coordinator's window,
#: ``WINDOW_PER_SLOT``, is 2 per thread: it never waits for more shards of one thread than that).
KEEP_PER_THREAD = 4
#: Task states in which a running shard is no longer wanted (the coordinator cancelled its future).
_GONE = frozenset({"cancelled", "released", "forgotten"})


def path_map() -> list[tuple[str, str]]:
    """``S3PUMP_CLUSTER_PATH_MAP`` of this process: ``(FROM, TO)`` prefixes, without trailing ``/``."""
    raw = os.environ.get(PATH_MAP_ENV, "")
    pairs = []
    for part in raw.split(";"):
        src, sep, dst = part.partition("=")
        if sep and src:
            pairs.append((src.rstrip("/"), dst.rstrip("/")))
    return pairs


def progress_topic(plugin: str) -> str:
    """The Dask event topic on which the shards of run ``plugin`` report their progress:
    messages ``[shard index, files finished, bytes sent]``, cumulative per attempt."""
    return f"{plugin}-progress"


def local_path(path: str, mapping: list[tuple[str, str]]) -> str:
    """``path`` as this worker reads it (see ``S3PUMP_CLUSTER_PATH_MAP``)."""
    for src, dst in mapping:
        if path == src or path.startswith(src + "/"):
            return dst + path[len(src):]
    return path


class WorkerRuntime(WorkerPlugin):
    """Per-process state of one run on a worker (see the module docstring).

    Args:
        name: the plugin's name, unique per run (tasks find the plugin by it).
        job: the job's name (``upload``, ``sync``).
        config: the run's config for one worker: no credentials, and ``--bwlimit``/``--max-rps``
            this worker's first share (then moved to the workers with work: :mod:`.sharing`).
        bucket: the destination bucket.
        workers: how many workers the run started with (adaptive concurrency starts at a share).
    """

    def __init__(self, name: str, job: str, config: TransferConfig, bucket: str, workers: int = 1) -> None:
        self.name = name
        self.job = job
        self.config = config
        self.bucket = bucket
        self.workers = workers

    def setup(self, worker: Any) -> None:
        self.address: str = worker.address
        self._worker = worker
        self.limits = EngineLimits.from_config(self.config, share=self.workers)
        self.lock = threading.Lock()  # one shard (or export range) at a time in this process
        self._entered = 0  # tasks running or waiting for the lock (see ``busy``)
        self._entered_lock = threading.Lock()
        self._closed = False
        self.stopping = False  # the coordinator cancelled the run (stop_shards): no task starts, running ones stop
        self._store: Store | None = None
        self._paths = path_map()
        # the events of this process's last shards, for a coordinator that cancelled them (results.py)
        self.kept = KeptShards(KEEP_PER_THREAD * max(1, int(getattr(worker, "nthreads", 1) or 1)))

    def teardown(self, worker: Any) -> None:
        self._closed = True  # a task still waiting for its turn must not open a store again
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def store(self) -> Store:
        """The worker's store, opened at the first shard (credentials from this process's environment).

        Raises:
            CancelledError: the run ended here (the plugin was torn down).
            CredentialsError, NetworkError, ...: the store could not be opened.
        """
        if self._closed:
            raise CancelledError(f"{self.name}: the run ended on this worker")
        if self._store is None:
            from ..session import open_store

            self._store, _ = open_store(self.config, self.bucket, check_bucket=False)
        return self._store

    @property
    def busy(self) -> bool:
        """Whether a shard or export range is running in this process, or waiting for its turn (a
        worker of several threads runs several tasks, which take turns)."""
        return self._entered > 0

    @contextlib.contextmanager
    def turn(self, key: str | None) -> Iterator[Store]:
        """One task at a time in this process: wait for the others, then give the store. A task
        cancelled while it waited (Ctrl-C on the coordinator) does not start.

        Raises:
            CancelledError: task ``key`` was cancelled, or the run ended here, before its turn came.
        """
        with self._entered_lock:
            self._entered += 1
        try:
            with self.lock:
                if self.stopping or (key is not None and self._gone(key)):
                    raise CancelledError(f"{key}: cancelled before it started")
                yield self.store()
        finally:
            with self._entered_lock:
                self._entered -= 1

    def _gone(self, key: str) -> bool:
        ts = self._worker.state.tasks.get(key)
        return ts is None or ts.state in _GONE

    def run(self, shard: Shard, key: str | None = None) -> ShardResult:
        """Upload ``shard``'s files through the engine; the events come back in the result.

        ``key``: the Dask task's key (None: not run as a task). Progress is then reported on
        :func:`progress_topic` every ``PROGRESS_EVERY_S``; once the coordinator cancels the task
        (Ctrl-C), the run is cancelled at a safe point (its PUTs in flight waited for) and its open
        multipart uploads aborted (CancelledError); its events stay in :attr:`kept` for the coordinator
        (:func:`~.results.replay_kept`), and a shard that fails as a whole carries them on its error.
        """
        events: list[Event] = []
        files = sent = 0
        last = time.monotonic()
        topic = progress_topic(self.name)

        def keep(event: Event) -> None:
            nonlocal files, sent, last
            if isinstance(event, Tick | ConcurrencyChanged):  # gauges of this process only
                return
            events.append(event)
            if isinstance(event, FileDone | FileFailed | FileSkipped):
                files += 1
                sent += event.size_bytes if isinstance(event, FileDone) and not event.parts else 0
            elif isinstance(event, PartDone):
                sent += event.size_bytes
            else:
                return
            now = time.monotonic()
            if key is not None and now - last >= PROGRESS_EVERY_S:  # the progress view moves per file
                last = now
                self._worker.log_event(topic, [shard.index, files, sent])

        with self.turn(key) as store:
            started = time.monotonic()
            try:
                with Run(self.job, self.config, self.bucket, store=store, subscribers=[keep],
                         failed_list=os.devnull, limits=self.limits) as run, self.cancelled_with(key, run):
                    run.transfer(self._localized(shard.items))
            except Exception as e:  # cancelled, or failed as a whole: what it finished must not be lost
                carry_events(e, events)
                raise
            finally:  # before ``busy`` drops: the coordinator takes them once the shard stopped
                if events:
                    self.kept.keep(shard.index, events)
            busy = time.monotonic() - started
        done = [e for e in events if isinstance(e, FileDone)]
        return ShardResult(shard.index, self.address, tuple(events), busy, len(done),
                           sum(e.size_bytes for e in done))

    @contextlib.contextmanager
    def cancelled_with(self, key: str | None, run: Run) -> Iterator[None]:
        """While the body runs, a thread cancels ``run`` once task ``key`` is cancelled on this worker."""
        if key is None:
            yield
            return
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(CANCEL_POLL_S):
                if self.stopping or self._gone(key):
                    run.cancel()
                    return

        watcher = threading.Thread(target=watch, name="s3pump-shard-cancel", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()

    def _localized(self, items: tuple[UploadItem, ...]) -> list[UploadItem]:
        # the coordinator's file identity (fileid.py): another host numbers devices its own way, and a
        # remapped path is another mount (only size and mtime then compare)
        out = []
        for item in items:
            if not self._paths:
                ident = dataclasses.replace(item.identity, device=None) if item.identity is not None else None
                out.append(dataclasses.replace(item, identity=ident))
                continue
            path = local_path(item.path, self._paths) if item.path else None
            out.append(UploadItem(key=item.key, size_bytes=item.size_bytes, source=item.source, path=path,
                                  attrs=item.attrs, mtime_ns=item.mtime_ns, resume=item.resume, md5=item.md5,
                                  check_put=item.check_put))
        return out


def run_shard(plugin: str, shard: Shard) -> ShardResult:
    """The task: run ``shard`` on this worker's :class:`WorkerRuntime` named ``plugin``."""
    worker = get_worker()
    runtime = worker.plugins[plugin]
    assert isinstance(runtime, WorkerRuntime)
    return runtime.run(shard, str(worker.get_current_task()))


def stop_shards(plugin: str, dask_worker: Any = None) -> None:
    """Run on every worker (``Client.run``) once the coordinator cancelled run ``plugin``: no task of it starts
    here from now on, and the running ones stop at their next safe point. Dask's cancel of a task reaches a
    worker later than this call returns to the coordinator, so without it a shard queued behind one that just
    finished could start after :func:`wait_idle` found the worker idle, and its PUTs land unreported."""
    runtime = dask_worker.plugins.get(plugin) if dask_worker is not None else None
    if isinstance(runtime, WorkerRuntime):
        runtime.stopping = True


async def wait_idle(plugin: str, timeout_s: float, dask_worker: Any = None) -> bool:
    """Wait (on the worker's event loop, ``Client.run``) until no shard of run ``plugin`` is running
    here, at most ``timeout_s`` seconds; whether none is. A cancelled shard is aborting its
    multipart uploads: the coordinator waits for that before it closes the workers' stores."""
    runtime = dask_worker.plugins.get(plugin) if dask_worker is not None else None
    if not isinstance(runtime, WorkerRuntime):
        return True
    deadline = time.monotonic() + timeout_s
    while runtime.busy and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return not runtime.busy


def check_paths(sample: list[tuple[str, int, int]], dask_worker: Any = None) -> list[PathMismatch]:
    """Stat each ``(path, size, mtime_ns)`` of ``sample`` as this worker sees it; the mismatches.

    Run on every worker (``Client.run``) before any upload: a node that mounts another tree, or
    a stale copy, would otherwise upload other bytes under the same keys.
    """
    address = dask_worker.address if dask_worker is not None else "?"
    mapping = path_map()
    out = []
    for path, size, mtime_ns in sample:
        try:
            st = os.stat(local_path(path, mapping))
        except OSError as e:
            out.append(PathMismatch(address, path, f"cannot stat it ({e.strerror})"))
            continue
        if st.st_size != size:
            out.append(PathMismatch(address, path, f"size {st.st_size} bytes, the coordinator sees {size}"))
        elif st.st_mtime_ns != mtime_ns:
            out.append(PathMismatch(address, path, "a different modification time than the coordinator sees"))
    return out
