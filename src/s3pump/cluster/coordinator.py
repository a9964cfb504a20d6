"""The coordinator: planned items -> shards -> Dask tasks -> events on the run's one bus.

:func:`transfer_on_cluster` takes the place of ``run.transfer(items)`` in a job. Before any
upload, every worker stats a sample of the first shard's files (:func:`~.worker.check_paths`);
one that sees another size or mtime ends the run (exit 2, naming the worker and path). Then the
shards are submitted through a bounded window (``WINDOW_PER_SLOT`` per worker thread), so the
coordinator holds a few shards however many files there are, and each future is released as soon
as its result is replayed on the bus (and so journaled). A task is a shard, or a range of one
large file's parts (:mod:`.parts`). While a shard runs, its worker's progress messages become
:class:`~s3pump.events.ShardProgress` (the progress view moves per file); Ctrl-C cancels the
shards in flight, and the running ones stop at a safe point on their worker (waiting for their PUTs
in flight) and abort their multipart uploads before the stores close; then the events their workers
kept of every shard without a result are replayed (:func:`~.results.replay_kept`), so the files
they finished are journaled.

Nothing lost: a worker that dies mid-shard has its shard rerun elsewhere by Dask (up to
``distributed.scheduler.allowed-failures`` times; files it finished are sent again, which is
harmless: keys are deterministic); a shard whose workers all died has its files reported as
failed (:class:`~s3pump.errors.WorkerLostError`, exit 1). Multipart uploads a dead worker
created are aborted by the job's final sweep of orphans (uploads of done keys created since the
journal began).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..config import TransferConfig
from ..errors import CancelledError, S3PumpError, WorkerLostError, WorkerMismatchError
from ..events import Discovered, Event, FileDone, FileFailed, ShardProgress, ShardSettled
from ..items import UploadItem
from ..run import Run
from .connect import connect
from .forecast import Observed, forecast
from .parts import SplitFiles
from .results import ShardResult, WorkerRates, carried_events, finished_keys, replay_kept, sample_evenly
from .shards import FORECAST_AFTER_S, Shard, cut_shards, limits_from_env, split_bytes_from_env
from .sharing import LimitSharer, worker_config
from .treewalk import WalkStats

__all__ = ["ClusterOutcome", "credentials_env", "drive", "limits_from_env", "task_key", "transfer_on_cluster",
           "worker_config"]

#: Shards in flight per worker thread: one running, one queued behind it (no idle gap between shards).
WINDOW_PER_SLOT = 2
#: Files of the first shard each worker stats before any upload.
SAMPLE_SIZE = 32
#: Seconds the coordinator waits, after a cancel, for running shards to abort their uploads.
CANCEL_WAIT_S = 60.0


class ClusterOutcome:
    """What the cluster did: workers, shards planned/done/failed, per-worker rates. A subscriber of
    the run's bus too: it counts what the walk found and what is done, for the forecast."""

    def __init__(self, workers: int, walk: WalkStats | None = None) -> None:
        self.workers = workers
        #: the distributed walk's counts; None when the coordinator walked (or read a list)
        self.walk = walk
        self.files_found = self.bytes_found = self.files_done = self.bytes_done = 0
        self.walk_finished = False
        self.shards_planned = 0
        self.shards_done = 0
        self.shards_failed = 0
        self.rates = WorkerRates()
        #: the files whose parts were spread over the workers (:class:`~.parts.SplitFiles`)
        self.split: SplitFiles | None = None
        #: seconds from the first shard submitted to the last result (no cluster start or checks)
        self.transfer_s = 0.0

    def __call__(self, event: Event) -> None:
        if isinstance(event, Discovered):
            self.files_found, self.bytes_found, self.walk_finished = event.files, event.bytes, event.final
        elif isinstance(event, FileDone):
            self.files_done += 1
            self.bytes_done += event.size_bytes

    def observed(self) -> Observed:
        return Observed(self.transfer_s, self.workers, self.files_done, self.bytes_done,
                        max(self.files_found, self.files_done), max(self.bytes_found, self.bytes_done),
                        self.walk_finished)

    def to_json(self) -> dict[str, Any]:
        return {"workers": self.workers, "shards_planned": self.shards_planned, "shards_done": self.shards_done,
                "shards_failed": self.shards_failed, "transfer_s": round(self.transfer_s, 3),
                "per_worker": self.rates.rows(), "walk": self.walk.to_json() if self.walk else {"on": "coordinator"},
                **({"split": self.split.to_json()} if self.split is not None and self.split.files else {})}


def credentials_env(config: TransferConfig) -> dict[str, str]:
    """The credentials ``config`` holds explicitly (the API's, ``--embedded``'s), as ``AWS_*``
    variables for the environment of the workers of a ``local:N`` cluster this process starts."""
    pairs = (("AWS_ACCESS_KEY_ID", config.access_key_id), ("AWS_SECRET_ACCESS_KEY", config.secret_access_key),
             ("AWS_SESSION_TOKEN", config.session_token))
    return {k: v for k, v in pairs if v}


def _plain_files(run: Run, items: Iterable[UploadItem]) -> Iterator[UploadItem]:
    """The items to ship; an item that failed while planning is reported here (as the engine would)."""
    for item in items:
        if item.error is not None:
            run.emit(FileFailed(item.source, item.key, item.size_bytes, item.error))
        else:
            yield item


def _check_workers(client: Any, shard: Any) -> None:
    sample = sample_evenly(((i.path or i.source, i.size_bytes, i.mtime_ns) for i in shard.items), SAMPLE_SIZE)
    from .worker import check_paths

    answers: dict[str, list[Any]] = client.run(check_paths, sample)
    for worker in sorted(answers):
        for m in answers[worker]:
            raise WorkerMismatchError(f"worker {m.worker} sees {m.path} otherwise: {m.what}; every worker must "
                                      "see the same files (a shared filesystem, or S3PUMP_CLUSTER_PATH_MAP)")


def transfer_on_cluster(run: Run, items: Iterable[UploadItem], cluster: Any, *,
                        shard_files: int | None = None, shard_bytes: int | None = None,
                        worker_bwlimit_bps: int | None = None, forecast_after_s: int | None = None,
                        walk: WalkStats | None = None, split_bytes: int | None = None) -> ClusterOutcome:
    """Upload ``items`` (planned and journal-filtered) on ``cluster``'s workers; their events are
    emitted on ``run``'s bus as the shards finish.

    Args:
        run: the entered run (its bus, journal subscriber, config and bucket).
        items: the planned items, in order.
        cluster: ``local:N``, a scheduler address, or a ``distributed.Client``.
        shard_files, shard_bytes: the shard limits (see :mod:`.shards`); None: :func:`limits_from_env`.
        worker_bwlimit_bps: a per-worker bandwidth cap in bytes/s on top of ``--bwlimit``'s share
            (None: :func:`limits_from_env`).
        forecast_after_s: when to emit the :class:`~s3pump.events.ClusterForecast` (None: from the
            environment, else 60 s).
        walk: the counts of a distributed walk (:func:`~.treewalk.walk_on_cluster`) feeding ``items``,
            reported in the outcome.
        split_bytes: files of this size or more have their parts spread over the workers (:mod:`.parts`);
            None: ``S3PUMP_SPLIT_SIZE``, else twice ``shard_bytes``.

    Raises:
        UsageError: no ``distributed``, a bad address or an unreachable scheduler (exit 2).
        WorkerMismatchError: a worker sees other files than the coordinator (exit 2; nothing uploaded).
        CancelledError: the run was cancelled (a signal); shards in flight are cancelled.
        S3PumpError: a worker could not open its store (e.g. CredentialsError, exit 2).
    """
    env = limits_from_env()
    shard_files = int(shard_files or env["shard_files"] or 0)
    shard_bytes = int(shard_bytes or env["shard_bytes"] or 0)
    worker_bwlimit_bps = worker_bwlimit_bps or env["worker_bwlimit_bps"]
    forecast_after_s = forecast_after_s if forecast_after_s is not None else env["forecast_after_s"]
    with connect(cluster, local_env=credentials_env(run.config)) as client:
        workers = client.scheduler_info()["workers"]
        slots = sum(max(1, int(w.get("nthreads", 1))) for w in workers.values()) or 1
        outcome = ClusterOutcome(len(workers), walk)
        run.subscribe(outcome)
        splits = SplitFiles(run, split_bytes or split_bytes_from_env(shard_bytes), shard_bytes, slots, _settle)
        outcome.split = splits
        shards = splits.units(cut_shards(splits.divert(_plain_files(run, items)), max_files=shard_files,
                                         max_bytes=shard_bytes, spread=slots))
        with contextlib.closing(splits):  # what is still open at the end (a cancel, an error) is aborted
            first = next(shards, None)
            if run.cancelled:  # a signal, or a producer that failed (sync's planner) while planning
                raise CancelledError("cancelled before any shard was submitted")
            if first is None:
                return outcome
            _check_workers(client, first)
            from .partsend import run_unit
            from .worker import WorkerRuntime, progress_topic

            name = f"s3pump-{run.job}-{uuid.uuid4().hex[:12]}"
            config = worker_config(run.config, len(workers), worker_bwlimit_bps)
            client.register_plugin(WorkerRuntime(name, run.job, config, run.bucket, len(workers)), name=name)
            progress = _Progress(run)
            client.subscribe_topic(progress_topic(name), progress)
            started = time.monotonic()
            try:
                with LimitSharer(client, name, run.config, sorted(workers), worker_bwlimit_bps,
                                 task_prefix=task_prefix(name, "shard")).running():
                    drive(client, run, name, run_unit, first, shards, slots * WINDOW_PER_SLOT, outcome,
                          float(forecast_after_s or FORECAST_AFTER_S), settle=splits.settle, progress=progress,
                          replay_cancelled=True)
            finally:
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(progress_topic(name))
                outcome.transfer_s = time.monotonic() - started
                with contextlib.suppress(Exception):  # a worker gone or a closing cluster: its store closed with it
                    client.unregister_worker_plugin(name)
    return outcome


def task_prefix(name: str, kind: str) -> str:
    """What the Dask keys of run ``name``'s (``s3pump-<job>-<id>``) tasks of ``kind`` start with:
    ``s3pump-<job>-<kind>-<id>-`` (:func:`task_key`)."""
    base, _, run_id = name.rpartition("-")
    return f"{base}-{kind}-{run_id}-"


def task_key(name: str, kind: str, index: int) -> str:
    """The Dask key of task ``index`` of run ``name`` (``s3pump-<job>-<id>``): ``s3pump-<job>-<kind>-<id>-<index>``,
    so the dashboard groups the run's tasks under the prefix ``s3pump-<job>-<kind>`` (Dask's ``key_split``
    stops at the id), e.g. ``s3pump-upload-shard``, ``s3pump-sync-shard``, ``s3pump-export-range``."""
    return f"{task_prefix(name, kind)}{index}"


def drive(client: Any, run: Run, name: str, task: Any, first: Any, shards: Iterator[Any], window: int,
          outcome: ClusterOutcome, forecast_after_s: float,
          settle: Callable[[Run, Any, Any, ClusterOutcome], None] | None = None,
          progress: _Progress | None = None, kind: str = "shard", replay_cancelled: bool | None = None) -> None:
    """Keep ``window`` shards in flight; replay each result, release its future, submit the next;
    after ``forecast_after_s`` seconds, emit the forecast once.

    A shard is anything with an ``index`` that ``task(name, shard)`` runs on a worker (a :class:`Shard`
    of files; ``export --cluster`` sends ranges of batch cuts); ``settle(run, future, shard, outcome)``
    takes each finished future (default: replay an upload shard's events, or fail its files).
    ``progress``: the running shards' progress, told which shards are in flight (upload and sync).
    ``kind``: the tasks' name on the dashboard (:func:`task_key`). ``replay_cancelled``: after a cancel,
    replay the events the workers kept of the upload shards without a result (default: when ``settle``
    is the default one).
    """
    if replay_cancelled is None:
        replay_cancelled = settle is None
    settle = settle or _settle
    started = time.monotonic()
    forecast_due = True
    # queue.Queue, not SimpleQueue: a signal during SimpleQueue.get(timeout=...) turns the wait into one
    # without a timeout on Python 3.11 (it then waits for the next finished shard, Ctrl-C unseen until then)
    done: queue.Queue[Any] = queue.Queue()
    inflight: dict[str, tuple[Any, Shard]] = {}
    pending: Iterator[Shard] = iter([first])

    def submit() -> bool:
        shard = next(pending, None) or next(shards, None)
        if shard is None:
            return False
        if progress is not None:
            progress.started(shard.index)
        fut = client.submit(task, name, shard, key=task_key(name, kind, shard.index), pure=False)
        inflight[fut.key] = (fut, shard)
        outcome.shards_planned += 1
        fut.add_done_callback(done.put)
        return True

    try:
        while len(inflight) < window and submit():
            pass
        while inflight:
            if run.cancelled:
                raise CancelledError("cancelled: shards in flight were cancelled")
            if forecast_due and time.monotonic() - started >= forecast_after_s:
                forecast_due = False
                outcome.transfer_s = time.monotonic() - started
                run.emit(forecast(outcome.observed()))
            try:
                fut = done.get(timeout=0.5)
            except queue.Empty:
                continue
            _, shard = inflight.pop(fut.key)
            if progress is not None:
                progress.settled(shard.index)  # its own events follow
            settle(run, fut, shard, outcome)
            run.emit(ShardSettled(shard.index))
            fut.release()
            while len(inflight) < window and submit():
                pass
        if run.cancelled:
            raise CancelledError("cancelled after the last shard")
    finally:
        if inflight:
            client.cancel([f for f, _ in inflight.values()])
            _wait_for_cancelled(client, name, run.config)
            if replay_cancelled:  # the files the cancelled shards finished: journaled, not sent again
                for _, shard in inflight.values():
                    if progress is not None:
                        progress.settled(shard.index)
                cancelled = [shard.index for _, shard in inflight.values() if isinstance(shard, Shard)]
                replay_kept(client, run, name, sorted(cancelled))  # a range's parts: its upload is aborted


def _wait_for_cancelled(client: Any, name: str, config: TransferConfig) -> None:
    """Let the shards still running stop at a safe point, wait for their PUTs in flight and abort
    their multipart uploads (each worker watches its task's state) before the workers' stores close;
    at most ``CANCEL_WAIT_S``, or the largest single PUT's request timeout if longer."""
    from ..engine.cancel import CANCELLED_GRACE_S
    from ..engine.inflight import timeout_for
    from .worker import stop_shards, wait_idle

    put_s = timeout_for(config.multipart_threshold_bytes, config.request_timeout_s) + CANCELLED_GRACE_S
    with contextlib.suppress(Exception):  # a worker gone, a cluster closing: the next run sweeps
        client.run(stop_shards, name)  # before the idle check: a queued shard must not start after it
        client.run(wait_idle, name, max(CANCEL_WAIT_S, put_s))


class _Progress:
    """The running shards' progress messages (``[index, files, bytes]``, on the Dask client's thread)
    emitted as ShardProgress while their shard is in flight; :meth:`settled` ends a shard's (a late
    message is dropped), so the view never counts a file twice."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._lock = threading.Lock()
        self._running: set[int] = set()

    def started(self, index: int) -> None:
        with self._lock:
            self._running.add(index)

    def settled(self, index: int) -> None:
        with self._lock:
            self._running.discard(index)
            self._run.emit(ShardProgress(index, 0, 0))

    def __call__(self, message: tuple[float, Any]) -> None:
        index, files, sent = message[1]
        with self._lock:
            if index in self._running:
                self._run.emit(ShardProgress(int(index), int(files), int(sent)))


def _settle(run: Run, fut: Any, shard: Shard, outcome: ClusterOutcome) -> None:
    """Replay a finished shard's events; a shard that failed as a whole has its files failed."""
    if fut.status == "finished":
        result: ShardResult = fut.result()
        for event in result.events:
            run.emit(event)
        outcome.rates.add(result)
        outcome.shards_done += 1
        return
    try:
        error = fut.exception()
    except Exception as e:  # a future the scheduler cancelled (e.g. it lost the task's state)
        error = e
    carried = carried_events(error)  # what it finished before it failed (results.py)
    for event in carried:
        run.emit(event)
    if isinstance(error, S3PumpError) and error.exit_code == 2:
        raise error  # the workers cannot write at all (credentials, bucket): stop the run
    outcome.shards_failed += 1
    lost = WorkerLostError(f"shard {shard.index} did not finish ({type(error).__name__}: {error}); "
                           "rerun the command to retry its files")
    finished = finished_keys(carried)
    for item in shard.items:
        if item.key not in finished:
            run.emit(FileFailed(item.source, item.key, item.size_bytes, lost))
