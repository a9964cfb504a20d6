"""``s3pump export``: a SQL table → partitioned, idempotent objects under ``s3://bucket/prefix``.

Read top to bottom:

1. Open the table (``sources.table``) and the store (HeadBucket, or ``--embedded``).
2. Load the checkpoint (``prefix/_s3pump/state/T.json``); refuse a cursor column holding
   NULLs (no ``C > after`` batch reaches them).
3. Export the batch cuts the checkpoint already holds, each as the same range
   (``after < C <= last``) under the same keys: without ``--dedup`` the cuts a killed run
   left unfinished, with ``--dedup`` every cut so far. Then cut new batches after the last
   one: read up to ``--batch-rows`` rows ordered by the cursor, and record the cut
   ``[after, first, last]`` in the checkpoint *before* any of its objects is written. Cutting,
   reading and writing run in a producer thread (``export/plan.py``).
4. Convert to Arrow (bad rows → dead-letter queue); split by partition; serialize each group
   to one object whose key is a pure function of table, partition and the cut
   (``part-<first>-<last>``). A batch that would grow later (a partial batch, rows appended
   by a writer) keeps its recorded cut; new rows go to the next cut. So a rerun overwrites
   and never stores a row under a second key (``export/objects.py``, ``export/formats.py``).
5. Hand the objects to the engine. When every object of a batch (and of all batches before
   it) is uploaded or recorded in the dead-letter queue, advance the checkpoint past it
   (``export/ledger.py``); the checkpoint is written on a thread of its own, never on the
   engine's (``export/checkpointer.py``).
6. ``--follow``: poll for new rows every ``--poll-interval``; a stop request (SIGINT/SIGTERM
   in the CLI) finishes the in-flight batches, saves the checkpoint and returns. Another
   writer holding the SQLite lock is waited for with backoff, for as long as it takes.
7. Objects that a complete run superseded are deleted: with ``--from-start`` every data
   object under ``prefix/T/`` this run did not write; with ``--dedup`` the objects whose rows
   all moved elsewhere or were deleted (``export/superseded.py``).

This module is the verb: flags checked, the table and the ``Run`` opened, then one
:class:`~s3pump.export.job.ExportJob` (``export/job.py``), or its cuts on a Dask cluster
(``jobs/export_cluster.py``).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..config import TransferConfig
from ..errors import UsageError
from ..events import Subscriber
from ..export.formats import FORMATS
from ..export.job import ExportJob
from ..export.partition import PartitionSpec, check_time_column, escape_name, parse_partition
from ..lifecycle import LifecycleRule, RuleOptions
from ..lifecycle_update import apply_rule
from ..reports import ExportReport
from ..run import Run
from ..sources.readers import open_table
from ..sources.table import find_column
from ..store.base import Store
from ..urls import S3Url, join_key, parse_s3_url
from .export_iceberg import check_iceberg_flags, export_iceberg

__all__ = ["export_table"]


def export_table(
    db: str,
    table: str,
    destination: str,
    config: TransferConfig | None = None,
    *,
    cursor_column: str | None = None,
    batch_rows: int = 100_000,
    partition_by: Sequence[str | PartitionSpec] = (),
    format: str = "parquet",
    compression: str | None = None,
    one_object_per_row: bool = False,
    dedup: bool = False,
    dlq: str | None = None,
    replay_dlq: bool = False,
    follow: bool = False,
    poll_interval_s: float = 30.0,
    state_file: str | Path | None = None,
    from_start: bool = False,
    embedded: bool = False,
    subscribers: Iterable[Subscriber] = (),
    stop: threading.Event | None = None,
    store: Store | None = None,
    handle_signals: bool = False,
    dry_run: bool = False,
    lock_timeout_s: float | None = 300.0,
    lifecycle: RuleOptions | None = None,
    cluster: Any = None,
    cluster_options: dict[str, Any] | None = None,
    schema_evolution: bool = False,
    table_format: str = "files",
    catalog_uri: str | None = None,
    target_file_size_bytes: int = 128 * 1024 * 1024,
    max_file_age_s: float = 300.0,
) -> ExportReport:
    """Export ``table`` of ``db`` (a SQLite path or SQLAlchemy URL) to ``destination`` (``s3://bucket/prefix``).

    Objects go to ``prefix/<table>/<partitions>/part-<first>-<last>.<ext>`` (``--one-object-per-row``:
    ``prefix/<entity>/date=YYYY-MM-DD/<id>_<unix>.<ext>``); each carries metadata
    ``s3pump-rows``, ``s3pump-cursor-first``/``-last``, ``s3pump-schema-hash`` and ``s3pump-format``.

    Args:
        cursor_column: orders and resumes the export; default the integer primary key. It must be
            increasing for new rows (an ID or an insertion timestamp).
        batch_rows: rows per batch (and at most per object).
        partition_by: ``time:COLUMN:hour|day|month`` and/or ``column:COL`` specs, nested in order.
        format: ``parquet`` (zstd), ``jsonl`` (gzip|zstd|none) or ``protobuf``.
        dedup: keep a content hash per row; groups whose rows are all unchanged are not written.
            Scans the whole table each run.
        dlq: dead-letter queue: a directory or ``s3://`` prefix (default ``<destination>/_dlq/``).
        replay_dlq: export the ranges recorded in the dead-letter queue again, instead of new rows.
        follow: keep polling for new rows every ``poll_interval_s`` until ``stop`` is set.
        from_start: ignore the checkpoint and export every row; when the run completes, delete the
            data objects under ``prefix/<table>/`` it did not write (an earlier run's other batching).
        stop: set it (e.g. from another thread) to finish the in-flight batches and return.
        handle_signals: the first SIGINT/SIGTERM sets ``stop``, a second one cancels at once (the
            CLI's setting; by default no signal handler is installed).
        dry_run: read and plan, write nothing (no objects, checkpoint, dead-letter entries or
            schema); ``report.would_write`` lists the objects (key, rows, bytes) it would write.
        lock_timeout_s: how long to wait for another writer's SQLite lock (capped exponential
            backoff) before failing; with ``follow`` it waits until ``stop`` is set.
        lifecycle: a lifecycle rule for the table's objects (``prefix/<table>/``), installed before
            the export with ``lifecycle_update.apply_rule`` (the bucket's other rules kept; nothing
            written when the rule is already there, so reruns are idempotent).
        cluster: export on Dask distributed workers (``local:N``, ``tcp://host:8786`` or a
            ``distributed.Client``; the ``dask`` extra): the batch cuts are planned here and recorded,
            ranges of them exported by the workers, the checkpoint kept here (``jobs.export_cluster``,
            docs/cluster.md). The objects are those of a single-process export (``dedup`` too); with
            ``follow`` new rows are polled for and sent to the workers the same way. Not with ``replay_dlq``;
            ignored with ``dry_run``. ``cluster_options``: ``range_rows``
            (rows per task, default 100,000), ``worker_bwlimit_bps`` and ``partition_cuts`` (end cuts at Hive
            partition boundaries, ``export/partition_cuts.py``; default: when every partition column is the
            cursor column).
        schema_evolution: when the table's schema differs from the one recorded in the checkpoint, write
            the new objects under the next schema version (``prefix/T/_v<N>/``) instead of stopping
            (``export/schema_check.py``). With ``table_format="iceberg"``: accept a dropped column (NULL
            in later rows); an added column is always an Iceberg add-column.
        table_format: ``files`` (objects and a checkpoint, above) or ``iceberg`` (the ``iceberg`` extra): an
            Iceberg table at ``prefix/<table>/``, one append commit per batch carrying the cursor range in its
            snapshot summary (``export/iceberg.py``; not with ``format`` other than parquet, ``dedup``,
            ``one_object_per_row``, ``replay_dlq``, ``from_start``, ``dry_run``, ``state_file``, ``lifecycle``;
            with ``cluster`` the workers write the data files and this process commits them in cursor order,
            ``jobs/export_iceberg_cluster.py``).
        catalog_uri: the Iceberg catalog: a SQLAlchemy URL (SQL catalog) or an ``http(s)://`` REST catalog;
            None: a SQLite file in the state directory (``report.iceberg["catalog"]``).
        target_file_size_bytes: the size of Iceberg's data files in bytes of Parquet (default 128 MiB;
            also the table's ``write.target-file-size-bytes``).
        max_file_age_s: ``table_format="iceberg"`` with ``follow``: commit the rows read once the first of
            them is this many seconds old, even below the target size (default 300 s).

    Progress: objects are ``FileDone`` events, each stored and checkpointed batch a ``BatchExported``.

    Returns:
        ExportReport. Rows or objects that failed are in the dead-letter queue (``report.ok`` False).

    Raises:
        UsageError: bad flags, an unknown table/column, a time partition on a column that holds no
            times, a schema that changed since the last run (without ``schema_evolution``), a cursor
            column holding NULLs, or a checkpoint written with other flags (exit 2);
            ``cluster`` without ``s3pump[dask]``, or a cluster worker that cannot read the table
            (``WorkerMismatchError``).
        SourceNotFoundError, SourceUnreadableError: the database cannot be read.
        NoSuchBucketError, CredentialsError: the HeadBucket check failed (exit 2).
        StoreError: the checkpoint or a dead-letter entry could not be written (nothing is skipped).
    """
    config = config or TransferConfig.from_env()
    dest = parse_s3_url(destination)
    if batch_rows < 1:
        raise UsageError(f"--batch-rows must be >= 1, got {batch_rows}")
    check_iceberg_flags(table_format, {
        "--format " + format: format != "parquet", "--dedup": dedup, "--one-object-per-row": one_object_per_row,
        "--replay-dlq": replay_dlq, "--from-start": from_start, "--dry-run": dry_run,
        "--state-file": state_file is not None, "--lifecycle": lifecycle is not None})
    if target_file_size_bytes < 1:
        raise UsageError(f"--target-file-size must be >= 1 byte, got {target_file_size_bytes}")
    if max_file_age_s <= 0:
        raise UsageError("--max-file-age must be > 0")
    if format not in FORMATS:
        raise UsageError(f"--format {format!r}: use one of {', '.join(FORMATS)}")
    if poll_interval_s <= 0:
        raise UsageError("--poll-interval must be > 0")
    specs = [s if isinstance(s, PartitionSpec) else parse_partition(s) for s in partition_by]
    if lifecycle is not None:
        lifecycle.rule(dest.prefix)  # refuse a bad rule before anything is read or sent
    stop = stop or threading.Event()
    if cluster is not None and not dry_run:
        _check_cluster_flags(replay_dlq=replay_dlq, store=store)

    source = open_table(db, table, cursor_column, lock_timeout_s=None if follow else lock_timeout_s, stop=stop)
    try:
        for i, s in enumerate(specs):
            col = find_column(source.columns, s.column)
            if col is None:
                raise UsageError(f"--partition-by {s}: table {source.table} has no column {s.column!r}")
            specs[i] = s = dataclasses.replace(s, column=col.name)  # the declared name, for keys and state
            check_time_column(s, col.declared_type, col.arrow_type)
        source.check_cursor_not_null()
        if one_object_per_row and not any(s.kind == "time" for s in specs):
            raise UsageError("--one-object-per-row needs --partition-by time:COLUMN:day (its date=…/…_<unix> "
                             "layout comes from the row's timestamp)")
        if table_format == "iceberg":
            return export_iceberg(source, dest, config, specs, batch_rows=batch_rows, stop=stop,
                                  catalog_uri=catalog_uri, schema_evolution=schema_evolution, dlq=dlq,
                                  target_file_size_bytes=target_file_size_bytes, max_file_age_s=max_file_age_s,
                                  follow=follow,
                                  poll_interval_s=poll_interval_s, store=store, embedded=embedded,
                                  subscribers=subscribers, handle_signals=handle_signals, cluster=cluster,
                                  db=db, lock_timeout_s=lock_timeout_s, cluster_options=cluster_options)
        rule = _lifecycle_rule(lifecycle, dest, source.table, specs, one_object_per_row) if lifecycle else None
        with Run("export", config, dest.bucket, store=store, embedded=embedded, subscribers=subscribers,
                 handle_signals=handle_signals, graceful_stop=stop) as run:
            if rule is not None:
                apply_rule(run.store, dest.bucket, rule.prefix, rule,
                           rule_id=lifecycle.rule_id if lifecycle else None)
            job = ExportJob(source, dest, run, specs, format, compression, one_object_per_row,
                            dedup, dlq, batch_rows, state_file, stop, dry_run, schema_evolution=schema_evolution)
            try:
                if cluster is not None and not dry_run:
                    from .export_cluster import export_on_cluster

                    return export_on_cluster(job, db, cluster, from_start=from_start, lock_timeout_s=lock_timeout_s,
                                             follow=follow, poll_interval_s=poll_interval_s,
                                             **(cluster_options or {}))
                return job.run(replay=replay_dlq, follow=follow and not dry_run, poll_interval_s=poll_interval_s,
                               from_start=from_start)
            finally:
                job.close()
    finally:
        source.close()


def _check_cluster_flags(*, replay_dlq: bool, store: Store | None) -> None:
    """Refuse what ``--cluster`` does not do, before anything is read (exit 2)."""
    if replay_dlq:
        raise UsageError("--cluster with --replay-dlq: a cluster export exports the table's rows, not the "
                         "dead-letter entries; run --replay-dlq without --cluster")
    if store is not None:
        raise UsageError("--cluster: the workers open their own store; a store object cannot be shared")
    from ..cluster.connect import require_distributed

    require_distributed()


def _lifecycle_rule(options: RuleOptions, dest: S3Url, table: str, specs: Sequence[PartitionSpec],
                    one_object_per_row: bool) -> LifecycleRule:
    """The rule for the table's data objects: prefix ``<prefix>/<table>/``, never the checkpoint under
    ``_s3pump/`` (an expired checkpoint would export everything again)."""
    if one_object_per_row and any(s.kind == "column" for s in specs):
        raise UsageError("--lifecycle with --one-object-per-row --partition-by column:…: the objects share no "
                         "prefix but the destination's, which holds the checkpoint; set the rule per entity "
                         "with `s3pump lifecycle s3://bucket/prefix/ENTITY/`")
    return options.rule(join_key(dest.prefix, escape_name(table) + "/"))
