"""One run of a job: what every job needs between planning its items and writing them.

A job reads as "validate -> produce items -> ``run.transfer(items)`` -> ``run.report()``"::

    with Run("upload", config, dest.bucket, subscribers=views) as run:
        run.transfer(walk_items(paths, dest, discovered=True))
    return run.report()

The :class:`Run` owns, for that one run:

* the **store**'s lifecycle (opened, with the bucket checked, and closed; or one given);
* the **event bus** with its standard subscribers: statistics (:class:`~s3pump.runstats.RunStats`),
  the failed-list, the resume journal (during a transfer), and the caller's views;
* the **resume journal**, when the job gives one (``resume=``, :class:`~s3pump.resume.ResumeJournal`):
  each :meth:`transfer` opens it, skips what an earlier run did (checked against the bucket),
  resumes its multipart uploads, and settles it;
* the one **retry policy** (:class:`~s3pump.retry.RetryPolicy`) of the engine, the store's
  synchronous calls and the run's own PUTs and deletes; each retry is a ``RetryScheduled`` event;
* the one **registry of multipart uploads** to abort (:class:`~s3pump.engine.uploads.OpenUploads`);
  what is still open when the run ends (an abort that failed) is aborted once more then;
* **stop and cancel**: :meth:`cancel` (thread-safe) stops transfers at a safe point; with
  ``handle_signals`` (the CLI's choice; a library call installs no signal handler), the first
  SIGINT/SIGTERM stops (``graceful_stop`` if the job gave one, e.g. export's "finish the in-flight
  batches", else a cancel) and a second one interrupts at once, except while the engine aborts its
  open multipart uploads: then it only stops the wait for in-flight requests (the aborts are sent);
* the **engine** of each :meth:`transfer`, synchronous single PUTs (:meth:`put_now`) and deletes
  (:meth:`delete`);
* the **report** (:meth:`report`).
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from .config import TransferConfig
from .engine.limits import EngineLimits
from .engine.scheduler import Engine
from .engine.uploads import OpenUploads
from .errors import CancelledError, S3PumpError, StoreError
from .events import Event, EventBus, FileFailed, ObjectDeleted, RetryScheduled, StopRequested, Subscriber
from .items import UploadItem
from .local_state import GuardedSubscriber, probe_directory
from .reports import UploadReport
from .retry import RetryPolicy
from .runstats import FailedListWriter, RunStats
from .store.base import ObjectAttributes, PutResult, Store
from .store.waiting import put_and_wait

if TYPE_CHECKING:
    from .resume import ResumeJournal

__all__ = ["Run", "default_failed_list_path"]

#: DeleteObjects takes at most 1,000 keys (S3 API reference, DeleteObjects).
_DELETE_BATCH = 1000


def default_failed_list_path(job: str) -> Path:
    """``<state dir>/failed/<job>-<UTC second>-<pid>-<8 random hex>.jsonl``: unique per run, so two runs
    that fail in the same second never share (and truncate) one file."""
    from .session import state_dir

    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return state_dir() / "failed" / f"{job}-{stamp}-{os.getpid()}-{secrets.token_hex(4)}.jsonl"


class Run:
    """One run of ``job`` against ``bucket``; a context manager (see the module docstring).

    Args:
        job: the job's name (``upload``, ``sync``, ...), used for the default failed-list name.
        config: the run's settings.
        bucket: the bucket every request goes to.
        store: a store to use (tests); by default one is opened from ``config`` (``embedded``: the
            local SeaweedFS) and the bucket checked, and it is closed when the run ends.
        subscribers: the caller's views of the events (progress, ``--json``, metrics).
        failed_list: where failed items are written (default: :func:`default_failed_list_path`).
        handle_signals: install SIGINT/SIGTERM handlers for the run (only from the main thread).
        limits: the engines' limits, when they outlive the run (a cluster worker's); by default
            each engine makes its own from ``config``.
        graceful_stop: set by the first signal instead of cancelling (the job stops by itself).
        check_failed_list: make sure now that the failed-list's directory takes a file (jobs whose
            items may fail: upload, sync).
        resume: the resume journal :meth:`transfer` applies (``upload``'s).

    Raises:
        LocalStateError: ``check_failed_list`` and the failed-list's directory refuses writes.

    Raises (on entry):
        NoSuchBucketError, CredentialsError, AccessDeniedError, NetworkError: the bucket check failed.
    """

    def __init__(self, job: str, config: TransferConfig, bucket: str, *, store: Store | None = None,
                 embedded: bool = False, subscribers: Iterable[Subscriber] = (),
                 failed_list: str | Path | None = None, handle_signals: bool = False,
                 graceful_stop: threading.Event | None = None, check_bucket: bool = True,
                 check_failed_list: bool = False, limits: EngineLimits | None = None,
                 resume: ResumeJournal | None = None) -> None:
        self.job = job
        self.config = config
        self.bucket = bucket
        self.stats = RunStats()
        self.failed_list_path = Path(failed_list) if failed_list else default_failed_list_path(job)
        if check_failed_list:  # a directory that refuses writes: one line, exit 2, before anything is sent
            probe_directory(self.failed_list_path.parent, "failed-list")
        self._failed = FailedListWriter(self.failed_list_path, bucket)
        #: the first local file (failed-list, journal) that could not be written, or the first error no item
        #: can escape (``stops_run``: a skewed clock, no file descriptors left); the run stopped for it
        self.local_error: S3PumpError | None = None
        self.bus = EventBus(self._watch_run_wide, self.stats,
                            self.guard(self._failed, lambda: self._failed.path, "failed-list"), *subscribers)
        self.policy = RetryPolicy.from_config(config, self._on_retry)
        self._given_store = store
        self._store: Store | None = store
        self._embedded = embedded
        self._check_bucket = check_bucket
        self._limits = limits
        self._handle_signals = handle_signals
        self._graceful_stop = graceful_stop
        self._previous_handlers: dict[int, Any] = {}
        self._engine: Engine | None = None
        self._cancelled = threading.Event()
        self._on_cancel: list[Callable[[], None]] = []
        self._kept_for_resume = False
        self.resume = resume
        self.uploads: OpenUploads | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Run:
        if self._handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous_handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            if self._store is None:
                from .session import open_store

                self._store, self.config = open_store(self.config, self.bucket, embedded=self._embedded,
                                                      check_bucket=self._check_bucket, policy=self.policy)
            else:
                use = getattr(self._store, "use_retry_policy", None)
                if use is not None:
                    use(self.policy)
            self.uploads = OpenUploads(self._store, self.bucket, self.policy)
        except BaseException:
            self._restore_signals()
            self._failed.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if self.uploads is not None and len(self.uploads) and not self._kept_for_resume:
                self.uploads.abort_all()  # uploads whose abort failed earlier: once more
        finally:
            self._failed.close()
            if self._given_store is None and self._store is not None:
                self._store.close()
            self._restore_signals()

    @property
    def store(self) -> Store:
        assert self._store is not None, "use the Run as a context manager"
        return self._store

    def subscribe(self, subscriber: Subscriber) -> None:
        """Add a subscriber (e.g. the resume journal) to the run's events."""
        self.bus.subscribe(subscriber)

    def guard(self, subscriber: Subscriber, path: Callable[[], Path], what: str) -> GuardedSubscriber:
        """``subscriber`` (a local file: failed-list, journal) with its write errors turned into a stop:
        the first one becomes :attr:`local_error`, the transfer is cancelled with its open multipart
        uploads aborted (a journal that cannot record them cannot resume them), and :meth:`transfer`
        raises the :class:`~s3pump.errors.LocalStateError` (one line, exit 2)."""
        return GuardedSubscriber(subscriber, path, what, self._local_write_failed)

    def _watch_run_wide(self, event: Event) -> None:
        """A FileFailed whose error ``stops_run`` stops the run (uploads aborted); :meth:`transfer` raises it."""
        if isinstance(event, FileFailed) and event.error.stops_run:
            self._local_write_failed(event.error)

    def _local_write_failed(self, error: S3PumpError) -> None:
        if self.local_error is None:
            self.local_error = error
        engine = self._engine
        if engine is not None:
            engine.keep_uploads_on_cancel = False
        self.cancel()

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    # ------------------------------------------------------------------ stop and cancel
    def cancel(self) -> None:
        """Stop transfers at the next safe point; thread-safe. :meth:`transfer` raises CancelledError.
        The callbacks given to :meth:`on_cancel` (what the job started besides the engine) are called."""
        self._cancelled.set()
        engine = self._engine
        if engine is not None:
            engine.cancel()
        for stop in list(self._on_cancel):
            stop()

    def on_cancel(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` (thread-safe, quick: e.g. ``Handoff.stop``) when the run is cancelled, at once
        if it already is: a run's cancel must reach every thread the job started (sync's planner and
        its lister), not only the engine's."""
        self._on_cancel.append(stop)
        if self._cancelled.is_set():
            stop()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        stopping = self._cancelled.is_set() or (self._graceful_stop is not None and self._graceful_stop.is_set())
        if stopping:  # the second signal: at once
            engine = self._engine
            hurry = engine is not None and engine.stopping
            self.bus.emit(StopRequested(signal.Signals(signum).name, self._graceful_stop is not None, again=True,
                                        hurry=hurry))
            if hurry:  # it is aborting its uploads: stop waiting, not that
                assert engine is not None
                engine.hurry()
                return
            raise KeyboardInterrupt
        graceful = self._graceful_stop is not None
        self.bus.emit(StopRequested(signal.Signals(signum).name, graceful))
        if self._graceful_stop is not None:
            self._graceful_stop.set()
        else:
            self.cancel()

    def _restore_signals(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler)
        self._previous_handlers.clear()

    # ------------------------------------------------------------------ work
    def emitting(self, source: Iterable[Any]) -> Iterator[UploadItem]:
        """The items of ``source``; the events it interleaves (``Discovered``, ``UploadPlanned``, ...)
        are emitted on the way."""
        emit = self.bus.emit
        for obj in source:
            if isinstance(obj, UploadItem):
                yield obj
            else:
                emit(obj)

    def transfer(self, items: Iterable[Any], *, keep_uploads_on_cancel: bool | None = None,
                 through: Callable[[Iterable[UploadItem]], Any] | None = None) -> Any:
        """Write every item (events interleaved in ``items`` are emitted) through one engine, or
        ``through(items)`` (``upload --cluster``: its workers), returning what that returns. With a
        resume journal (``resume=``), the items are first filtered through it (see :mod:`s3pump.resume`).

        ``keep_uploads_on_cancel``: on cancel, leave open multipart uploads for the resume journal
        (default: when the resume journal resumes them).

        Raises:
            CancelledError: :meth:`cancel`, a signal, or KeyboardInterrupt.
            JournalBusyError, LocalStateError: the resume journal is held by a live run, or not writable.
        """
        keep = keep_uploads_on_cancel
        if keep is None:
            keep = self.resume is not None and self.resume.keeps_uploads

        def send(planned: Iterable[UploadItem]) -> Any:
            return through(planned) if through is not None else self._run_engine(planned, keep)

        if self.resume is not None:
            return self.resume.transfer(self, self.emitting(items), send)
        return send(self.emitting(items))

    def _run_engine(self, items: Iterable[UploadItem], keep_uploads_on_cancel: bool) -> None:
        if self._cancelled.is_set():
            raise CancelledError("cancelled before the transfer started")
        assert self.uploads is not None
        engine = Engine(self.store, self.bucket, self.config, self.bus, keep_uploads_on_cancel=keep_uploads_on_cancel,
                        policy=self.policy, uploads=self.uploads, limits=self._limits)
        self._engine = engine
        try:
            if self._cancelled.is_set():  # a signal between the check above and here
                engine.cancel()
            engine.run(items)
        except CancelledError:
            if self.local_error is not None:
                raise self.local_error from None
            self._kept_for_resume = keep_uploads_on_cancel
            raise
        finally:
            self._engine = None
        if self.local_error is not None:  # failed on the last event: nothing left in flight
            raise self.local_error

    def close_failed_list(self) -> None:
        """Close the failed-list (done by ``__exit__``; for a dry run, which sends nothing and is not entered)."""
        self._failed.close()

    def fail(self, item: UploadItem, error: S3PumpError) -> None:
        """Report ``item`` as failed without sending it (e.g. a dry run's unreadable file)."""
        self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, error))

    def put_now(self, key: str, body: bytes, attrs: ObjectAttributes | None = None, *,
                bucket: str | None = None) -> PutResult:
        """PutObject ``body`` to ``key`` (in ``bucket``, default the run's) and wait, at most
        ``request_timeout_s`` per attempt: the one synchronous PUT of every job (export's checkpoint,
        dedup hashes, dead-letter entries and schema). Retried by the run's policy, each retry a
        ``RetryScheduled`` event. Thread-safe: it reads only what is fixed once the run is entered
        (the policy and the bus lock for themselves), so export calls it from its state thread.

        Raises:
            StoreError: the PUT failed for good (fatally, or past the policy's attempts or budget).
        """
        return put_and_wait(self.store, bucket or self.bucket, key, body, attrs or ObjectAttributes(),
                            timeout_s=self.config.request_timeout_s, policy=self.policy)

    def delete(self, keys: Iterable[str]) -> None:
        """DeleteObjects in batches of 1,000 (retried by the run's policy); a failed batch is tried
        key by key to name the failures. Emits ``ObjectDeleted`` for each key (``error`` set when
        it failed)."""
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) >= _DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: Sequence[str]) -> None:
        try:
            self.store.delete_objects(self.bucket, list(keys))
        except StoreError as e:
            if len(keys) == 1:
                self.bus.emit(ObjectDeleted(keys[0], error=e))
                return
            for k in keys:
                self._delete_batch([k])
            return
        for k in keys:
            self.bus.emit(ObjectDeleted(k))

    # ------------------------------------------------------------------ outcome
    def _on_retry(self, what: tuple[str, int | None], attempt: int, delay_s: float, error: S3PumpError) -> None:
        self.bus.emit(RetryScheduled(what[0], what[1], attempt, delay_s, error))

    def report(self, *, dry_run: bool = False) -> UploadReport:
        """The run's :class:`~s3pump.reports.UploadReport` (counts, bytes, retries, latency, failures)."""
        if self.local_error is not None:  # a dry run, which has no transfer to stop
            raise self.local_error
        return UploadReport.from_stats(
            self.stats, failed_list_path=str(self._failed.path) if self._failed.count else None, dry_run=dry_run,
        )

