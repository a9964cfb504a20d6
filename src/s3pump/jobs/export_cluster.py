"""``export --cluster``: a table's batch cuts exported by Dask workers, checkpointed by the coordinator.

Read top to bottom:

1. **Plan** (coordinator). The checkpoint is loaded as for a single-process export. New cuts are
   planned after the last recorded one from the cursor column alone
   (:meth:`~s3pump.export.plan.CutPlanner.plan_cuts`: the ``--batch-rows``-th cursor value after
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
   (:meth:`~s3pump.export.job.ExportJob.export_cuts`, in ``export/ranges.py``) on its
   :class:`~s3pump.cluster.worker.WorkerRuntime` (one store, one set of limits per process), naming
   the objects for the checkpoint's schema version (``prefix/T/_v<N>/`` after ``--schema-evolution``);
   it writes no state: its dead-letter entries come back in its result.
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

``--follow`` (``export_cluster_follow.py``): after the first pass, poll every ``--poll-interval`` and
run steps 1-4 for the new cuts. Where partitions are runs in cursor order, cuts end at their
boundaries (``export/partition_cuts.py``: fewer objects than one process's batches).

No credentials travel: the workers' config has them removed (as for ``upload --cluster``), and a
database URL holding a password is refused (the workers take it from their environment instead).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from typing import Any

from ..cluster.coordinator import (
    WINDOW_PER_SLOT,
    ClusterOutcome,
    credentials_env,
    drive,
    limits_from_env,
    task_prefix,
    worker_config,
)
from ..errors import CancelledError, S3PumpError, UsageError, WorkerLostError, WorkerMismatchError
from ..events import BatchExported, FileDone, FileFailed
from ..export.job import ExportJob
from ..export.partition import escape_name
from ..export.partition_cuts import PartitionCutter, partition_cuts_wanted
from ..export.ranges import (
    DEFAULT_RANGE_ROWS,
    ExportRange,
    RangeJob,
    RangeResult,
    check_source,
    describe,
    export_range,
    group_cuts,
    worker_db,
)
from ..reports import ExportReport
from ..run import Run
from ..sources.table import decode_cursor
from ..urls import join_key
from .export_cluster_follow import Polls, follow_ranges, plan_ranges, update_hashes

__all__ = ["DEFAULT_RANGE_ROWS", "ExportRange", "RangeJob", "RangeResult", "RangeSettler", "check_range_workers",
           "check_source", "export_on_cluster", "export_range", "group_cuts", "range_error", "range_rows_from_env",
           "worker_db"]


# ---------------------------------------------------------------------- the coordinator side
def export_on_cluster(exporter: ExportJob, db: str, cluster: Any, *, from_start: bool,
                      lock_timeout_s: float | None, range_rows: int | None = None,
                      worker_bwlimit_bps: int | None = None, follow: bool = False,
                      poll_interval_s: float = 30.0, partition_cuts: bool | None = None) -> ExportReport:
    """Export the table on ``cluster``'s workers (see the module docstring); the report adds ``cluster``.

    Args:
        exporter: the coordinator's export job, inside its entered ``Run``.
        db: the database as given (made absolute for the workers).
        cluster: ``local:N``, a scheduler address, or a ``distributed.Client``.
        range_rows: rows per task (whole cuts; default ``S3PUMP_EXPORT_RANGE_ROWS``, else 100,000).
        worker_bwlimit_bps: a per-worker bandwidth cap on top of ``--bwlimit``'s share.
        follow: once the cuts planned now are settled, poll for new rows every ``poll_interval_s``
            seconds and export them the same way until ``exporter.stop`` is set
            (``jobs/export_cluster_follow.py``).
        partition_cuts: end cuts at Hive partition boundaries (``export/partition_cuts.py``); None: when
            every ``--partition-by`` column is the cursor column, or as ``S3PUMP_EXPORT_PARTITION_CUTS`` says.

    Raises:
        UsageError: no ``distributed``, an unreachable scheduler, a database URL with a password.
        WorkerMismatchError: a worker cannot open the table, or sees fewer rows (exit 2; nothing written).
        CancelledError: cancelled by a second signal.
        StoreError: the checkpoint or a dead-letter entry could not be written.
    """
    db = worker_db(db)
    range_rows = range_rows or range_rows_from_env()
    exporter.begin(from_start)
    if not follow:  # following, the rows keep coming: no total (as in one process)
        exporter.say_rows_total()
    cp = exporter.checkpoint
    job = RangeJob(db, exporter.table, exporter.source.cursor.name, str(exporter.dest), tuple(exporter.specs),
                   exporter.fmt, exporter.compression, exporter.one_per_row, exporter.batch_rows, lock_timeout_s,
                   schema_version=cp.schema_version, dedup=exporter.dedup)
    old_keys = set(exporter.ledger.stored_rows)  # --dedup: the keys the last run's hashes name
    exporter.counters.checkpoint = cp.cursor
    cutter = (PartitionCutter(exporter.planner, exporter.specs) if partition_cuts_wanted(
        exporter.specs, exporter.source.cursor.name, exporter.one_per_row, partition_cuts) else None)
    ranges = plan_ranges(exporter, job, range_rows, 0, cutter)
    run = exporter.run_
    settle = RangeSettler(exporter)
    outcome = ClusterOutcome(0)
    if (ranges or follow) and not exporter.stop.is_set():
        polls = Polls(poll_interval_s, range_rows, cutter) if follow else None
        outcome = _run_ranges(run, exporter, job, ranges, cluster, settle, worker_bwlimit_bps, polls)
    settle.advance()  # cuts a killed run left done behind an unfinished one, now all done
    if exporter.dedup:
        exporter.ledger.hashes.update(settle.hashes)
        exporter.writer.seen_rows.update(settle.hashes)
        exporter.ledger.seen_keys.update(settle.seen_keys)
        if not exporter.complete():
            exporter.state.save_hashes(exporter.ledger.hashes)  # what was read; a complete run prunes first
    if exporter.complete():
        exporter.delete_superseded(old_keys if exporter.dedup else set())
    return dataclasses.replace(exporter.report(0), cluster=outcome.to_json())


def range_rows_from_env() -> int:
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


def check_range_workers(client: Any, job: RangeJob, last: Any) -> None:
    """Every worker opens the table and sees rows up to ``last`` (None: opens it).

    Raises:
        WorkerMismatchError: one cannot (exit 2; nothing written).
    """
    answers: dict[str, str | None] = client.run(check_source, job, last)
    for worker in sorted(answers):
        if answers[worker]:
            raise WorkerMismatchError(f"worker {worker} cannot export the table: {answers[worker]}; every "
                                      "worker must read the same database (a SQLite file at the same path on "
                                      "a shared filesystem, or a database URL every node reaches)")


def _run_ranges(run: Run, exporter: ExportJob, job: RangeJob, ranges: list[ExportRange], cluster: Any,
                settle: RangeSettler, worker_bwlimit_bps: int | None, polls: Polls | None = None) -> ClusterOutcome:
    from ..cluster.connect import connect, plugin_running
    from ..cluster.sharing import LimitSharer
    from ..export.ranges import ExportRuntime

    worker_bwlimit_bps = worker_bwlimit_bps or limits_from_env()["worker_bwlimit_bps"]
    with connect(cluster, local_env=credentials_env(run.config)) as client:
        workers = client.scheduler_info()["workers"]
        slots = sum(max(1, int(w.get("nthreads", 1))) for w in workers.values()) or 1
        outcome = ClusterOutcome(len(workers))
        check_range_workers(client, job, ranges[-1].cuts[-1][2] if ranges else None)
        exporter.save_checkpoint()  # the plan: every cut fixed before any object is written
        name = f"s3pump-export-{uuid.uuid4().hex[:12]}"
        config = worker_config(run.config, len(workers), worker_bwlimit_bps)
        hashes = exporter.ledger.hashes if exporter.dedup else None  # the last run's: once per worker
        client.register_plugin(ExportRuntime(name, config, run.bucket, len(workers), hashes), name=name)

        def send(todo: list[ExportRange]) -> None:
            def rest() -> Iterator[ExportRange]:
                for rng in todo[1:]:
                    if exporter.stop.is_set():  # a first SIGINT/SIGTERM: finish what is in flight, submit no more
                        return
                    yield rng

            drive(client, run, name, export_range, todo[0], rest(), slots * WINDOW_PER_SLOT, outcome,
                  float("inf"), settle, kind="range")

        with plugin_running(client, name, outcome), LimitSharer(
                client, name, run.config, sorted(workers), worker_bwlimit_bps,
                task_prefix=task_prefix(name, "range")).running():
            if ranges:
                send(ranges)
            if polls is not None:
                follow_ranges(exporter, job, settle, polls, len(ranges), send,
                              lambda last: check_range_workers(client, job, last),
                              lambda delta: client.run(update_hashes, name, delta))
    if run.cancelled:
        raise CancelledError("cancelled: ranges in flight were cancelled")
    return outcome


def range_error(fut: Any) -> BaseException | None:
    """The error of a range's future that did not finish. An error of exit code 2 (the workers cannot
    read or write at all) is raised: it stops the run."""
    try:
        error = fut.exception()
    except Exception as e:  # a future the scheduler cancelled
        error = e
    if isinstance(error, S3PumpError) and error.exit_code == 2:
        raise error
    return error


class RangeSettler:
    """Takes each finished range: replays its events, writes its dead-letter entries, marks its cuts
    done and moves the checkpoint past every done cut with nothing unfinished before it."""

    def __init__(self, exporter: ExportJob) -> None:
        self.x = exporter
        self.reported_rows = 0
        #: --dedup: the ranges' rows (``repr(cursor) -> (hash, key)``) and keys written or unchanged
        self.hashes: dict[str, tuple[bytes, str]] = {}
        self.seen_keys: set[str] = set()
        #: --dedup: cuts done in this run (never saved as done: each run reads every cut again)
        self.done: set[tuple[Any, ...]] = set()

    def __call__(self, run: Run, fut: Any, rng: ExportRange, outcome: ClusterOutcome) -> None:
        x, cp = self.x, self.x.checkpoint
        if fut.status == "finished":
            result: RangeResult = fut.result()
            for event in result.shard.events:
                run.emit(event)
                if isinstance(event, FileDone):  # a key this run wrote, no longer superseded
                    x.ledger.stored(event.key, event.version_id)
            for k, v in result.counters.items():
                setattr(x.counters, k, getattr(x.counters, k) + v)
            cp.rows_exported += result.counters["rows_exported"]
            cp.objects_written += result.counters["objects_written"]
            for entry, first, last in result.dlq:
                x.record_dlq(entry, first, last)
            if x.dedup:
                self.hashes.update(result.hashes or {})
                self.seen_keys.update(result.seen_keys)
                self.done.update(tuple(cut) for cut in rng.cuts)
            else:
                cp.done.extend(cut for cut in rng.cuts if cut not in cp.done)
            outcome.rates.add(result.shard)
            outcome.shards_done += 1
            self.advance(save=True)
            return
        error = range_error(fut)
        outcome.shards_failed += 1
        x.counters.objects_failed += 1
        first, last = decode_cursor(rng.cuts[0][1]), decode_cursor(rng.cuts[-1][2])
        lost = WorkerLostError(f"range {rng.index} did not finish ({describe(error)}); its cuts stay "
                               "in the checkpoint: rerun the command to export them")
        key = join_key(x.dest.prefix, escape_name(x.table) + "/")
        run.emit(FileFailed(f"{x.table} rows {x.source.cursor.name} {first}..{last}", key, 0, lost))

    def advance(self, *, save: bool = False) -> None:
        """Move the cursor past the leading done cuts; save the checkpoint if anything changed (or ``save``)."""
        x, cp = self.x, self.x.checkpoint
        moved = False
        if x.dedup:  # every cut stays recorded (the next run reads them all): the cursor moves over them
            for cut in cp.batches:
                if tuple(cut) not in self.done:
                    break
                if cp.cursor != cut[2]:
                    cp.cursor, moved = cut[2], True
        while not x.dedup and cp.batches and cp.batches[0] in cp.done:
            cut = cp.batches.pop(0)
            cp.done.remove(cut)
            cp.cursor = cut[2]
            moved = True
        if (moved or save) and not x.dry_run:
            x.save_checkpoint()
        x.counters.checkpoint = cp.cursor
        if moved or save:
            rows = x.counters.rows_exported - self.reported_rows
            self.reported_rows = x.counters.rows_exported
            x.bus.emit(BatchExported(rows, cp.cursor))
