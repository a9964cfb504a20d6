"""``export --table-format iceberg --cluster``: the workers write the data files; the coordinator alone commits,
in cursor order.

Read top to bottom:

1. **Begin** (coordinator), as one process begins (``export/iceberg.py``): open or create the table, evolve
   its schema, read the committed cursor (``s3pump.cursor-last`` of the newest append), abort the multipart
   uploads and delete the data files of commits that never happened.
2. **Plan.** Batch cuts after that cursor from the cursor column alone (``plan_cut``: the ``--batch-rows``-th
   value, as ``export --cluster`` plans them), grouped in cursor order into ranges of about ``range_rows``
   rows (``S3PUMP_EXPORT_RANGE_ROWS``, default 100,000). Nothing is recorded: the table is the checkpoint.
3. **Workers.** Every worker must read the table up to the plan's last cursor (``check_source``; exit 2
   otherwise, nothing written). Each range is one task (``export/iceberg_ranges.py``): the worker reads its
   cuts, writes the rows as data files under the table's location with its own credentials, and returns the
   ``DataFile`` records and dead-letter entries. It commits nothing.
4. **Commit** (coordinator). Ranges finish in any order; the coordinator commits range *i* only after
   range *i-1*, one append per range whose snapshot summary carries ``s3pump.cursor-after`` (the range's
   first cut's ``after``) and ``s3pump.cursor-last`` (its last cut's ``last``), as one process does; the
   range's dead-letter entries are written before its commit.

Exactly once: a row is in the table only through the commit of its range, and commits follow cursor order,
so the table's cursor always has every row before it and none after it. A coordinator killed at any point
leaves the ranges committed so far; the rerun (with or without ``--cluster``) starts after the table's
cursor, and the files written but never committed are orphans the rerun's begin deletes (or
``cleanup --iceberg``). A range whose workers all died stops the commits there (exit 1): the ranges after it
were written but are not committed, and the next run exports them again.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any

from ..cluster.coordinator import WINDOW_PER_SLOT, ClusterOutcome, credentials_env, drive, worker_config
from ..cluster.results import ShardResult
from ..errors import CancelledError, WorkerLostError
from ..events import BatchExported, FileFailed, RowsFound
from ..export.iceberg import IcebergExport
from ..export.iceberg_ranges import IcebergRange, IcebergRangeJob, IcebergRangeResult, write_iceberg_range
from ..export.iceberg_table import CURSOR_AFTER, CURSOR_LAST, RUN_ID, SOURCE_TABLE
from ..export.ranges import RangeJob, describe, group_cuts, worker_db
from ..reports import ExportReport
from ..run import Run
from ..sources.table import decode_cursor, encode_cursor
from .export_cluster import check_range_workers, range_error, range_rows_from_env

__all__ = ["IcebergCommitter", "export_iceberg_on_cluster"]


def export_iceberg_on_cluster(job: IcebergExport, db: str, cluster: Any, *, lock_timeout_s: float | None,
                              range_rows: int | None = None, worker_bwlimit_bps: int | None = None) -> ExportReport:
    """Export ``job``'s rows on ``cluster``'s workers (see the module docstring); the report adds ``cluster``
    (with ``pids``: the processes that wrote data files).

    Args:
        job: the coordinator's Iceberg export, inside its entered ``Run``.
        db: the database as given (made absolute for the workers).
        cluster: ``local:N``, a scheduler address, or a ``distributed.Client``.
        range_rows: rows per task and commit (whole cuts; default ``S3PUMP_EXPORT_RANGE_ROWS``, else 100,000).
        worker_bwlimit_bps: a per-worker bandwidth cap (the workers' store; pyarrow's writes are not capped).

    Raises:
        UsageError: no ``distributed``, an unreachable scheduler, a database URL with a password.
        WorkerMismatchError: a worker cannot open the table, or sees fewer rows (exit 2; nothing written).
        CancelledError: cancelled by a second signal.
        StoreError: a dead-letter entry could not be written. pyiceberg's own errors (a refused commit)
            propagate (``jobs/export_iceberg.py`` makes them one line).
    """
    db = worker_db(db)
    range_rows = range_rows or range_rows_from_env()
    job.begin()
    source, run = job.source, job.run_
    rows = source.count_after(job.after)
    if rows is not None:
        run.emit(RowsFound(rows))
    source.check_cursor_not_null()
    cuts: list[list[Any]] = []
    after = job.after
    while not job.stop.is_set():
        nxt = source.plan_cut(after, job.batch_rows)
        if nxt is None or job.stop.is_set():
            break
        cuts.append([encode_cursor(after), encode_cursor(nxt[0]), encode_cursor(nxt[1])])
        after = nxt[1]
    spec = IcebergRangeJob(db, job.name, source.cursor.name, lock_timeout_s, job.table.metadata_location,
                           job.target_file_size_bytes, tuple(job.dropped))
    ranges = [IcebergRange(i, spec, group) for i, group in enumerate(group_cuts(cuts, job.batch_rows, range_rows))]
    committer = IcebergCommitter(job)
    outcome = ClusterOutcome(0)
    if ranges and not job.stop.is_set():
        outcome = _run_ranges(run, job, ranges, cluster, committer, worker_bwlimit_bps)
    report = job.report()
    return dataclasses.replace(report, objects_failed=committer.failed,
                               cluster={**outcome.to_json(), "pids": sorted(committer.pids)})


def _run_ranges(run: Run, job: IcebergExport, ranges: list[IcebergRange], cluster: Any, committer: IcebergCommitter,
                worker_bwlimit_bps: int | None) -> ClusterOutcome:
    from ..cluster.connect import connect, plugin_running
    from ..cluster.worker import WorkerRuntime

    spec = ranges[0].job
    probe = RangeJob(spec.db, spec.table, spec.cursor_column, "", (), "parquet", None, False, job.batch_rows,
                     spec.lock_timeout_s)
    with connect(cluster, local_env=credentials_env(run.config)) as client:
        workers = client.scheduler_info()["workers"]
        slots = sum(max(1, int(w.get("nthreads", 1))) for w in workers.values()) or 1
        outcome = ClusterOutcome(len(workers))
        check_range_workers(client, probe, ranges[-1].cuts[-1][2])
        name = f"s3pump-export-{uuid.uuid4().hex[:12]}"
        config = worker_config(run.config, len(workers), worker_bwlimit_bps)
        client.register_plugin(WorkerRuntime(name, "export", config, run.bucket, len(workers)), name=name)

        def rest() -> Iterator[IcebergRange]:
            for rng in ranges[1:]:
                # a first SIGINT/SIGTERM, or a range lost (nothing after it can be committed): submit no more
                if job.stop.is_set() or committer.broken is not None:
                    return
                yield rng

        with plugin_running(client, name, outcome):
            drive(client, run, name, write_iceberg_range, ranges[0], rest(), slots * WINDOW_PER_SLOT, outcome,
                  float("inf"), committer, kind="range")
    if run.cancelled:
        raise CancelledError("cancelled: ranges in flight were cancelled")
    return outcome


class IcebergCommitter:
    """Takes each finished range (``drive``'s settle): holds it until every range before it is committed,
    then writes its dead-letter entries and commits its data files as one append carrying its cursor range."""

    def __init__(self, job: IcebergExport) -> None:
        self.job = job
        self.next = 0  # the index of the range to commit next
        self.waiting: dict[int, tuple[IcebergRange, IcebergRangeResult]] = {}
        self.broken: int | None = None  # the first range that did not finish: no commit from it on
        self.failed = 0
        self.pids: set[int] = set()

    def __call__(self, run: Run, fut: Any, rng: IcebergRange, outcome: ClusterOutcome) -> None:
        if fut.status == "finished":
            result: IcebergRangeResult = fut.result()
            size = sum(f.file_size_in_bytes for f in result.files)
            outcome.rates.add(ShardResult(rng.index, result.address, (), result.busy_s, len(result.files), size))
            outcome.shards_done += 1
            self.pids.add(result.pid)
            self.waiting[rng.index] = (rng, result)
            self._commit_ready()
            return
        error = range_error(fut)
        outcome.shards_failed += 1
        self.failed += 1
        self.broken = rng.index if self.broken is None else min(self.broken, rng.index)
        first, last = decode_cursor(rng.cuts[0][1]), decode_cursor(rng.cuts[-1][2])
        lost = WorkerLostError(f"range {rng.index} did not finish ({describe(error)}); it and the ranges after it "
                               "are not committed: rerun the command to export them")
        run.emit(FileFailed(f"{self.job.name} rows {self.job.source.cursor.name} {first}..{last}",
                            self.job.describe()["location"], 0, lost))

    def _commit_ready(self) -> None:
        while self.next in self.waiting and (self.broken is None or self.next < self.broken):
            rng, result = self.waiting.pop(self.next)
            self._commit(rng, result)
            self.next += 1

    def _commit(self, rng: IcebergRange, result: IcebergRangeResult) -> None:
        x, c = self.job, self.job.counters
        for entry, first, last in result.dlq:  # before the commit: a rerun after a kill writes it again
            x.dlq_entries.append(x.dlq.put(entry, first, last))
        props = {CURSOR_AFTER: json.dumps(rng.cuts[0][0]), CURSOR_LAST: json.dumps(rng.cuts[-1][2]),
                 SOURCE_TABLE: x.name, RUN_ID: x.run_id}
        with x.table.transaction() as tx, tx.update_snapshot(snapshot_properties=props).fast_append() as app:
            for data_file in result.files:
                app.append_data_file(data_file)
        x.after = x.committed = decode_cursor(rng.cuts[-1][2])
        c.rows_read += result.rows_read
        c.rows_failed += result.rows_failed
        c.batches += result.batches
        c.rows_exported += result.rows_exported
        c.objects_written += len(result.files)
        c.bytes_written += sum(f.file_size_in_bytes for f in result.files)
        c.checkpoint = encode_cursor(x.after)
        x.run_.emit(BatchExported(result.rows_exported, c.checkpoint))
