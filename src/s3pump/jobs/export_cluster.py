"""``export --cluster``: a table's batch cuts exported by Dask workers, checkpointed by the coordinator.

Read top to bottom:

1. **Plan** (coordinator). The checkpoint is loaded as for a single-process export. New cuts are
   planned after the last recorded one from the cursor column alone
   (:meth:`~s3pump.sources.table.TableSource.plan_cut`: the ``--batch-rows``-th cursor value after
   the previous cut), so they are exactly the batches a single-process export would read, with the
   same keys (``part-<first>-<last>``). Every new cut is recorded in the checkpoint (the plan) and
   saved once the workers are checked, *before* any range is submitted; a rerun exports the same
   cuts again.
2. **Ranges.** The cuts not yet done are grouped, in cursor order, into ranges of about
   ``range_rows`` rows (whole cuts); a range is one Dask task.
3. **Workers.** Before any range, every worker opens the table (the SQLite path must be the same
   file on every node, or the database a URL every node reaches) and must see at least the rows
   the plan covers; one that cannot ends the run with one line (exit 2) before anything is written.
   A worker exports a range's cuts through the export's own planner and engine
   (:meth:`~s3pump.jobs.export._ExportJob.export_cuts`) on its :class:`~s3pump.cluster.worker.WorkerRuntime`
   (one store, one set of limits per process); it writes no state: its dead-letter entries come
   back in its result.
4. **Checkpoint** (coordinator). A range's events are replayed on the coordinator's bus
   (progress, ``--json``); its dead-letter entries are written; its cuts are marked done. The
   cursor moves past every cut that is done and has no unfinished cut before it; cuts done out
   of order wait in the checkpoint's ``done`` list. One checkpoint write per range; a
   ``BatchExported`` event per range.

Exactly once: a cut's keys are fixed when it is recorded, and a cut is skipped only once all its
objects are stored. A coordinator killed at any point leaves every unfinished cut in the
checkpoint; the rerun (with or without ``--cluster``) exports those again to the same keys: an
overwrite, never a second copy. A range whose workers all died stays unfinished: its cuts are
reported failed (exit 1) and the next run exports them.

No credentials travel: the workers' config has them removed (as for ``upload --cluster``), and a
database URL holding a password is refused (the workers take it from their environment instead).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..cluster.coordinator import (
    WINDOW_PER_SLOT,
    ClusterOutcome,
    credentials_env,
    drive,
    limits_from_env,
    worker_config,
)
from ..cluster.results import ShardResult
from ..errors import CancelledError, S3PumpError, UsageError, WorkerLostError, WorkerMismatchError
from ..events import BatchExported, ConcurrencyChanged, Event, FileDone, FileFailed, Tick
from ..export.dlq import DlqEntry
from ..export.partition import PartitionSpec, escape_name
from ..export.report import ExportReport
from ..run import Run
from ..sources.table import decode_cursor, encode_cursor, is_password_parameter, open_table, redact_url
from ..urls import join_key, parse_s3_url
from .export import _ExportJob

__all__ = ["DEFAULT_RANGE_ROWS", "ExportRange", "RangeJob", "RangeResult", "check_source", "export_on_cluster",
           "export_range", "group_cuts", "worker_db"]

#: Rows per range (one Dask task), in whole cuts: a few seconds of one worker's time.
DEFAULT_RANGE_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class RangeJob:
    """What every range task of one export needs to read and write its rows (no credentials).

    ``db`` is an absolute SQLite path or a URL without a password; ``specs`` hold declared column
    names; ``destination`` is ``s3://bucket/prefix``.
    """

    db: str
    table: str
    cursor_column: str
    destination: str
    specs: tuple[PartitionSpec, ...]
    format: str
    compression: str | None
    one_object_per_row: bool
    batch_rows: int
    lock_timeout_s: float | None


@dataclass(frozen=True, slots=True)
class ExportRange:
    """Range ``index`` (in cursor order, from 0): consecutive recorded cuts ``[after, first, last]``
    (JSON-encoded cursor values) that one task exports."""

    index: int
    job: RangeJob
    cuts: tuple[list[Any], ...]


@dataclass(frozen=True, slots=True)
class RangeResult:
    """A finished range: its events and rates (``shard``: files are objects), the worker's export
    counters (``ExportCounters`` fields, as ints) and the dead-letter entries ``(entry, first, last)``
    for the coordinator to write."""

    shard: ShardResult
    counters: dict[str, int]
    dlq: tuple[tuple[DlqEntry, Any, Any], ...]


_COUNTERS = ("rows_read", "rows_exported", "rows_failed", "rows_unchanged", "objects_written", "objects_failed",
             "objects_skipped", "bytes_written", "batches")


def worker_db(db: str) -> str:
    """``db`` as every worker opens it: a SQLite path made absolute (workers start elsewhere).

    Raises:
        UsageError: a database URL that holds a password (it would travel in every task).
    """
    if db.startswith("sqlite:///"):
        return "sqlite:///" + os.path.abspath(db[len("sqlite:///"):])
    if "://" in db:
        if _holds_password(db):
            raise UsageError(f"--cluster: the database URL {redact_url(db)} holds a password, which would be sent to "
                             "every worker; leave it out of the URL and give it in the workers' environment "
                             "(e.g. PGPASSWORD, ~/.pgpass, a MySQL option file)")
        return db
    return os.path.abspath(db)


def _holds_password(url: str) -> bool:
    """Whether database ``url`` carries a password: in its user part (``u:pw@``) or as a query
    parameter (``?password=``, ``?passwd=``, ``?pwd=``...), as SQLAlchemy parses it."""
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # no driver to open it anyway; the plain reading of the user part
        return ":" in url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    try:
        parsed = make_url(url)
    except Exception:
        return False
    return parsed.password is not None or any(is_password_parameter(k) for k in parsed.query)


def group_cuts(cuts: Sequence[list[Any]], batch_rows: int, range_rows: int) -> Iterator[tuple[list[Any], ...]]:
    """``cuts`` in order, in groups of ``max(1, range_rows // batch_rows)`` (a cut holds about
    ``batch_rows`` rows)."""
    per = max(1, range_rows // max(1, batch_rows))
    for i in range(0, len(cuts), per):
        yield tuple(cuts[i:i + per])


# ---------------------------------------------------------------------- the worker side
def check_source(job: RangeJob, last: Any, dask_worker: Any = None) -> str | None:
    """Open the table as a range task will; None if it reads, else why not (one line).

    ``last``: the JSON-encoded last cursor value of the plan; the worker must see rows up to it
    (a stale copy of the database at the same path would export other rows under the same keys).
    """
    try:
        source = open_table(job.db, job.table, job.cursor_column, lock_timeout_s=job.lock_timeout_s)
    except S3PumpError as e:
        return str(e)
    try:
        if last is not None:
            seen = source.max_cursor()
            want = decode_cursor(last)
            try:
                short = seen is None or seen < want
            except TypeError:
                short = True
            if short:
                return (f"{source.where}: table {source.table} ends at {source.cursor.name} {seen!r}, before the "
                        f"{want!r} the coordinator planned; it is another copy of the database")
        return None
    except S3PumpError as e:
        return str(e)
    finally:
        source.close()


def export_range(plugin: str, rng: ExportRange) -> RangeResult:
    """The task: export ``rng``'s cuts on this worker's :class:`~s3pump.cluster.worker.WorkerRuntime`."""
    from distributed import get_worker

    from ..cluster.worker import WorkerRuntime

    worker = get_worker()
    runtime = worker.plugins[plugin]
    assert isinstance(runtime, WorkerRuntime)
    key = str(worker.get_current_task())
    events: list[Event] = []

    def keep(event: Event) -> None:
        if not isinstance(event, Tick | ConcurrencyChanged | BatchExported):  # gauges of this process only
            events.append(event)

    job = rng.job
    with runtime.turn(key) as store:
        started = time.monotonic()
        source = open_table(job.db, job.table, job.cursor_column, lock_timeout_s=job.lock_timeout_s)
        try:
            with Run("export", runtime.config, runtime.bucket, store=store, subscribers=[keep],
                     failed_list=os.devnull, check_bucket=False, limits=runtime.limits) as run, \
                    runtime.cancelled_with(key, run):
                exporter = _ExportJob(source, parse_s3_url(job.destination), run, list(job.specs), job.format,
                                      job.compression, job.one_object_per_row, False, None, job.batch_rows, None,
                                      threading.Event())
                exporter.dlq_held = []
                exporter.export_cuts(rng.cuts)
        finally:
            source.close()
        busy = time.monotonic() - started
    c = exporter.counters
    shard = ShardResult(rng.index, runtime.address, tuple(events), busy, c.objects_written, c.bytes_written)
    return RangeResult(shard, {k: int(getattr(c, k)) for k in _COUNTERS}, tuple(exporter.dlq_held))


# ---------------------------------------------------------------------- the coordinator side
def export_on_cluster(exporter: _ExportJob, db: str, cluster: Any, *, from_start: bool,
                      lock_timeout_s: float | None, range_rows: int | None = None,
                      worker_bwlimit_bps: int | None = None) -> ExportReport:
    """Export the table on ``cluster``'s workers (see the module docstring); the report adds ``cluster``.

    Args:
        exporter: the coordinator's export job, inside its entered ``Run``.
        db: the database as given (made absolute for the workers).
        cluster: ``local:N``, a scheduler address, or a ``distributed.Client``.
        range_rows: rows per task (whole cuts; default ``S3PUMP_EXPORT_RANGE_ROWS``, else 100,000).
        worker_bwlimit_bps: a per-worker bandwidth cap on top of ``--bwlimit``'s share.

    Raises:
        UsageError: no ``distributed``, an unreachable scheduler, a database URL with a password.
        WorkerMismatchError: a worker cannot open the table, or sees fewer rows (exit 2; nothing written).
        CancelledError: cancelled by a second signal.
        StoreError: the checkpoint or a dead-letter entry could not be written.
    """
    job = RangeJob(worker_db(db), exporter.table, exporter.source.cursor.name, str(exporter.dest),
                   tuple(exporter.specs), exporter.fmt, exporter.compression, exporter.one_per_row,
                   exporter.batch_rows, lock_timeout_s)
    range_rows = range_rows or _range_rows_from_env()
    exporter.begin(from_start)
    exporter.say_rows_total()
    if exporter.checkpoint.schema_version > 1:  # the workers name their objects for version 1
        raise UsageError(f"--cluster: {exporter.table} is exported in schema version "
                         f"{exporter.checkpoint.schema_version} (--schema-evolution), which --cluster does not "
                         "write yet; run this export without --cluster")
    cuts = _plan(exporter)
    cp = exporter.checkpoint
    todo = [cut for cut in cuts if cut not in cp.done]
    ranges = [ExportRange(i, job, group) for i, group in
              enumerate(group_cuts(todo, exporter.batch_rows, range_rows))]
    run = exporter.run_
    settle = _Settle(exporter)
    outcome = ClusterOutcome(0)
    if ranges and not exporter.stop.is_set():
        outcome = _run_ranges(run, exporter, job, ranges, cluster, settle, worker_bwlimit_bps)
    settle.advance()  # cuts a killed run left done behind an unfinished one, now all done
    if exporter._complete():
        exporter._delete_superseded(set())
    return dataclasses.replace(exporter._report(0), cluster=outcome.to_json())


def _range_rows_from_env() -> int:
    """``S3PUMP_EXPORT_RANGE_ROWS`` (rows per task), else :data:`DEFAULT_RANGE_ROWS`.

    Raises:
        UsageError: not a positive whole number.
    """
    raw = os.environ.get("S3PUMP_EXPORT_RANGE_ROWS")
    if raw is None:
        return DEFAULT_RANGE_ROWS
    if not raw.strip().isdigit() or int(raw) < 1:
        raise UsageError(f"S3PUMP_EXPORT_RANGE_ROWS={raw!r}: give a whole number of rows (>= 1)")
    return int(raw)


def _plan(exporter: _ExportJob) -> list[list[Any]]:
    """The recorded cuts, then new ones to the end of the table (added to the checkpoint, which
    :func:`_run_ranges` saves once the workers can read the table, before any range is submitted)."""
    cp, source = exporter.checkpoint, exporter.source
    source.check_cursor_not_null()
    after = decode_cursor(cp.cursor)
    for cut in cp.batches:
        after = decode_cursor(cut[2])
    planned = 0
    while not exporter.stop.is_set():
        nxt = source.plan_cut(after, exporter.batch_rows)
        # a stop while a query waited for a lock answers "no rows": what it returned is not a cut
        if nxt is None or exporter.stop.is_set():
            break
        first, last = nxt
        cp.batches.append([encode_cursor(after), encode_cursor(first), encode_cursor(last)])
        planned += 1
        after = last
    exporter._whole_table = not exporter.stop.is_set()
    exporter.counters.checkpoint = cp.cursor
    return list(cp.batches)


def _run_ranges(run: Run, exporter: _ExportJob, job: RangeJob, ranges: list[ExportRange], cluster: Any,
                settle: _Settle, worker_bwlimit_bps: int | None) -> ClusterOutcome:
    from ..cluster.connect import connect
    from ..cluster.worker import WorkerRuntime

    worker_bwlimit_bps = worker_bwlimit_bps or limits_from_env()["worker_bwlimit_bps"]
    with connect(cluster, local_env=credentials_env(run.config)) as client:
        workers = client.scheduler_info()["workers"]
        slots = sum(max(1, int(w.get("nthreads", 1))) for w in workers.values()) or 1
        outcome = ClusterOutcome(len(workers))
        answers: dict[str, str | None] = client.run(check_source, job, ranges[-1].cuts[-1][2])
        for worker in sorted(answers):
            if answers[worker]:
                raise WorkerMismatchError(f"worker {worker} cannot export the table: {answers[worker]}; every "
                                          "worker must read the same database (a SQLite file at the same path on "
                                          "a shared filesystem, or a database URL every node reaches)")
        exporter.state.save(exporter.checkpoint)  # the plan: every cut fixed before any object is written
        name = f"s3pump-export-{uuid.uuid4().hex[:12]}"
        config = worker_config(run.config, len(workers), worker_bwlimit_bps)
        client.register_plugin(WorkerRuntime(name, "export", config, run.bucket, len(workers)), name=name)

        def rest() -> Iterator[ExportRange]:
            for rng in ranges[1:]:
                if exporter.stop.is_set():  # a first SIGINT/SIGTERM: finish what is in flight, submit no more
                    return
                yield rng

        started = time.monotonic()
        try:
            drive(client, run, name, export_range, ranges[0], rest(), slots * WINDOW_PER_SLOT, outcome,
                  float("inf"), settle)
        finally:
            outcome.transfer_s = time.monotonic() - started
            with contextlib.suppress(Exception):  # a worker gone or a closing cluster: its store closed with it
                client.unregister_worker_plugin(name)
    if run.cancelled:
        raise CancelledError("cancelled: ranges in flight were cancelled")
    return outcome


class _Settle:
    """Takes each finished range: replays its events, writes its dead-letter entries, marks its cuts
    done and moves the checkpoint past every done cut with nothing unfinished before it."""

    def __init__(self, exporter: _ExportJob) -> None:
        self.x = exporter
        self.reported_rows = 0

    def __call__(self, run: Run, fut: Any, rng: ExportRange, outcome: ClusterOutcome) -> None:
        x, cp = self.x, self.x.checkpoint
        if fut.status == "finished":
            result: RangeResult = fut.result()
            for event in result.shard.events:
                run.emit(event)
                if isinstance(event, FileDone):
                    x._seen_keys.add(event.key)
                    if cp.superseded and event.key in cp.superseded:
                        cp.superseded.remove(event.key)  # rewritten by this export: keep it
                    if event.version_id:
                        cp.versions[event.key] = event.version_id
            for k, v in result.counters.items():
                setattr(x.counters, k, getattr(x.counters, k) + v)
            cp.rows_exported += result.counters["rows_exported"]
            cp.objects_written += result.counters["objects_written"]
            for entry, first, last in result.dlq:
                x.dlq_entries.append(x.dlq.put(entry, first, last))
            cp.done.extend(cut for cut in rng.cuts if cut not in cp.done)
            outcome.rates.add(result.shard)
            outcome.shards_done += 1
            self.advance(save=True)
            return
        try:
            error = fut.exception()
        except Exception as e:  # a future the scheduler cancelled
            error = e
        if isinstance(error, S3PumpError) and error.exit_code == 2:
            raise error  # the workers cannot write or read at all: stop the run
        outcome.shards_failed += 1
        x.counters.objects_failed += 1
        first, last = decode_cursor(rng.cuts[0][1]), decode_cursor(rng.cuts[-1][2])
        lost = WorkerLostError(f"range {rng.index} did not finish ({type(error).__name__}: {error}); its cuts stay "
                               "in the checkpoint: rerun the command to export them")
        key = join_key(x.dest.prefix, escape_name(x.table) + "/")
        run.emit(FileFailed(f"{x.table} rows {x.source.cursor.name} {first}..{last}", key, 0, lost))

    def advance(self, *, save: bool = False) -> None:
        """Move the cursor past the leading done cuts; save the checkpoint if anything changed (or ``save``)."""
        x, cp = self.x, self.x.checkpoint
        moved = False
        while cp.batches and cp.batches[0] in cp.done:
            cut = cp.batches.pop(0)
            cp.done.remove(cut)
            cp.cursor = cut[2]
            moved = True
        if (moved or save) and not x.dry_run:
            x.state.save(cp)
        x.counters.checkpoint = cp.cursor
        if moved or save:
            rows = x.counters.rows_exported - self.reported_rows
            self.reported_rows = x.counters.rows_exported
            x.bus.emit(BatchExported(rows, cp.cursor))
