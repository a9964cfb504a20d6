"""``export --table-format iceberg``: rows appended to an Iceberg table, each batch one commit.

Exactly-once through the table itself: each batch of up to ``--batch-rows`` rows (cursor order, as
the plain export reads them) is one Iceberg append whose snapshot summary carries the cursor range
(``s3pump.cursor-after``, ``s3pump.cursor-last``), the source table and a run id, as the Iceberg sinks
of Kafka Connect and Flink keep their offsets. A run starts after the ``cursor-last`` of the newest
snapshot carrying one (``export/iceberg_table.py``): there is no separate checkpoint. pyiceberg
writes a commit's data files first and commits by one catalog update (a SQL transaction, or the REST
catalog's commit), so a kill leaves either the whole commit or nothing visible; the data files of a
commit that never happened are listed (every data file no snapshot references) and deleted at the
start of the next run.

The data files are written by s3pump's Parquet writer and uploaded by the run (``export/iceberg_write.py``,
``export/iceberg_early.py``); pyiceberg writes the manifests and metadata through the run's ``Store`` too
(``export/iceberg_io.py``), which lists and deletes the orphans and writes the dead-letter queue.

Bad rows go to the dead-letter queue as in the plain export, written *before* the batch's commit
(the entry's key is a function of the batch's range, so a rerun after a kill overwrites it).
"""

from __future__ import annotations

import gc
import json
import re
import threading
import time
import uuid
from typing import Any

import pyarrow as pa

from ..events import BatchExported, RowsFound
from ..reports import ExportReport
from ..run import Run
from ..sources.table import RowBatch, TableSource, encode_cursor
from ..urls import S3Url, join_key
from .counters import ExportCounters
from .dlq import DeadLetterQueue, DlqEntry
from .iceberg_compact import compact_small_files
from .iceberg_early import EarlyFiles
from .iceberg_reads import ReadAhead, table_is_new
from .iceberg_sizer import FileSizer
from .iceberg_table import (
    CURSOR_AFTER,
    CURSOR_LAST,
    NAMESPACE,
    RUN_ID,
    SOURCE_TABLE,
    abort_dead_uploads,
    check_schema_change,
    default_catalog_uri,
    io_properties,
    last_cursor,
    open_catalog,
    open_table,
    orphan_data_keys,
    table_location,
)
from .iceberg_write import TARGET_KEY, data_files
from .partition import PartitionSpec
from .rows import to_array_from_arrow, to_arrow

__all__ = ["FileSizer", "IcebergExport"]

#: a data file within this fraction of the target file size is right-sized (a one-shot run merges the rest)
SIZE_TOLERANCE = 0.2
#: a group held in memory is committed at this many bytes of Arrow even below the target file size
MAX_GROUP_BYTES = 1 << 30


class IcebergExport:
    """Exports ``source`` into the Iceberg table ``s3pump.<Table>`` at ``dest/<Table>`` within ``run``.

    ``catalog_uri``: None for the SQLite catalog in the state directory (:attr:`catalog_uri` says which).
    ``target_file_size_bytes``: a commit's data files, in bytes of Parquet (:class:`FileSizer`).
    ``max_file_age_s``: following (``run(follow=True)``), commit the rows read once the first of them was read
    this many seconds ago, even below the target size; a one-shot run commits when it has caught up.
    """

    def __init__(self, source: TableSource, dest: S3Url, run: Run, specs: list[PartitionSpec], *, batch_rows: int,
                 stop: threading.Event, catalog_uri: str | None, schema_evolution: bool, dlq: str | None,
                 target_file_size_bytes: int, max_file_age_s: float = 300.0) -> None:
        self.source, self.dest, self.run_, self.specs = source, dest, run, specs
        self.batch_rows, self.stop, self.schema_evolution = batch_rows, stop, schema_evolution
        self.name, self.schema = source.table, source.schema
        self.catalog_uri = catalog_uri or default_catalog_uri(dest)
        self.target_file_size_bytes = target_file_size_bytes
        self.dlq = DeadLetterQueue(dlq or f"s3://{dest.bucket}/{join_key(dest.prefix, '_dlq/')}", run)
        self.dlq_entries: list[str] = []
        self.deleted: list[str] = []
        self.counters = ExportCounters()
        self.run_id = uuid.uuid4().hex
        self.dropped: list[str] = []
        self.table: Any = None
        self.after: Any = None  # the cursor read up to
        self.committed: Any = None  # the cursor committed up to
        self.early = EarlyFiles(run)  # the rows read since the last commit, and the files written of them
        self.pending_rows = self.pending_bytes = 0  # read since the last commit (Arrow bytes)
        self.reads: ReadAhead | None = None  # the next batches, being read (export/iceberg_reads.py)
        self.pending_read = False  # a batch was read since (perhaps all bad rows)
        self.sizer = FileSizer(target_file_size_bytes)
        self.max_file_age_s = max_file_age_s
        self.compacted = 0  # small data files replaced by compaction commits (following)
        self.pending_since: float | None = None  # time.monotonic() of the first batch read since the last commit
        self.small_files: dict[str, int] = {}  # partition -> data files this run committed below the tolerance

    # ------------------------------------------------------------------ the run
    def begin(self) -> None:
        """Open (or create) the table, evolve its schema for added columns, read the committed cursor,
        and delete the data files (and abort the multipart uploads) of commits that never happened.

        Raises:
            UsageError: a retyped or (without ``--schema-evolution``) dropped column; the table is elsewhere.
        """
        catalog = open_catalog(self.catalog_uri, self.dest, io_properties(self.run_))
        self.table, created = open_table(catalog, self.dest, self.name, self.schema, self.specs, self.run_,
                                         {TARGET_KEY: str(self.target_file_size_bytes)})  # set at the creation
        added, self.dropped = check_schema_change(self.table, self.schema, evolution=self.schema_evolution,
                                                  name=self.name)
        if added:
            with self.table.update_schema() as update:
                update.union_by_name(self.schema)
        if self.table.properties.get(TARGET_KEY) != str(self.target_file_size_bytes):  # for the other writers
            with self.table.transaction() as tx:
                tx.set_properties({TARGET_KEY: str(self.target_file_size_bytes)})
        self.after = self.committed = last_cursor(self.table)
        self.counters.checkpoint = encode_cursor(self.after)
        if not created:  # a table created now had no writer before (open_table refuses a location holding one)
            abort_dead_uploads(self.run_, self.dest, self.name)  # (its ListMultipartUploads costs a botocore client)
        orphans = orphan_data_keys(self.run_, self.dest, self.table, self.name)
        if orphans:
            self.run_.delete(orphans)
            self.deleted = orphans
        if gc.get_freeze_count():  # the CLI froze its start-up (__main__): pyiceberg's modules and the table too
            gc.freeze()

    def run(self, *, follow: bool, poll_interval_s: float) -> ExportReport:
        """Export the rows past the committed cursor (``follow``: until ``stop`` is set)."""
        try:
            return self._run(follow=follow, poll_interval_s=poll_interval_s)
        finally:
            self.early.close()
            if self.reads is not None:  # a read ahead in flight ends before the source is closed
                self.reads.close()

    def _run(self, *, follow: bool, poll_interval_s: float) -> ExportReport:
        if self.source.reads_in_any_thread and table_is_new(self.catalog_uri, NAMESPACE, self.name):
            # no table, no committed cursor: the first batches are read while pyiceberg opens the catalog
            self.reads = ReadAhead(self._read, None, self.batch_rows)
        self.begin()
        if self.reads is not None:
            if self.after is not None:  # the table had a cursor after all (created meanwhile): read from it
                self.reads.close()
                self.reads = None
            else:
                self.reads.limit(1)
        if not follow:
            rows = self.source.count_after(self.after)
            if rows is not None:
                self.run_.emit(RowsFound(rows))
        while True:
            self.source.check_cursor_not_null()
            while not self.stop.is_set() and self._one_batch():
                pass
            if not follow or self.stop.is_set():
                break
            if self.pending_since is not None and time.monotonic() - self.pending_since >= self.max_file_age_s:
                self._flush()  # following a quiet table: what was read is committed once it is this old
                self.compacted += compact_small_files(self.table, self.sizer.target_bytes,
                                                      self.sizer.arrow_target_bytes, run=self.run_)
            self.stop.wait(poll_interval_s)
            if self.stop.is_set():
                break
        self._flush()  # caught up (or stopped): what was read is committed now, however small
        if not follow and any(n >= 2 for n in self.small_files.values()):
            # a commit that crossed into a partition started it with a file below the target, which is then not
            # the partition's last: such files are merged, so each partition has at most one file off the target
            self.compacted += compact_small_files(self.table, self.sizer.target_bytes, self.sizer.arrow_target_bytes,
                                                  min_files=2, small_fraction=1 - SIZE_TOLERANCE, run=self.run_)
        return self.report()

    def _one_batch(self) -> bool:
        """Read and convert the next batch (bad rows to the dead-letter queue) into the group to commit,
        committed once it reaches the target file size; False when there was none, or it was the last."""
        batch, converted = self._next()
        if batch is None:
            return False
        table, _positions, bad = converted
        bad_rows = list(batch.bad) + bad
        c = self.counters
        c.rows_read += batch.count
        c.batches += 1
        if bad_rows:
            c.rows_failed += len(bad_rows)
            entry = DlqEntry("rows", self.name, self.source.cursor.name, encode_cursor(batch.first),
                             encode_cursor(batch.last), f"{len(bad_rows)} rows could not be exported",
                             rows=[{"cursor": encode_cursor(b.cursor), "error": b.error, "values": b.values}
                                   for b in bad_rows])
            self.dlq_entries.append(self.dlq.put(entry, batch.first, batch.last))
        table = self._with_dropped(table)
        self.early.add(self.table, table)
        self.pending_rows, self.pending_bytes = self.pending_rows + table.num_rows, self.pending_bytes + table.nbytes
        self.after, self.pending_read = batch.last, True
        if self.pending_since is None:
            self.pending_since = time.monotonic()
        if self.pending_bytes >= min(self.sizer.arrow_target_bytes(table), MAX_GROUP_BYTES):
            self._flush()
        return batch.count >= self.batch_rows

    def _flush(self) -> None:
        """Commit the batches read since the last commit as one append (cursor range in its summary)."""
        if not self.pending_read:
            return
        rows = self.pending_rows
        self._commit(self.early.rest(self.schema))
        self.pending_read, self.pending_since, self.pending_rows, self.pending_bytes = False, None, 0, 0
        self.committed = self.after
        self.counters.rows_exported += rows
        self.counters.checkpoint = encode_cursor(self.after)
        self.run_.emit(BatchExported(rows, self.counters.checkpoint))

    def _next(self) -> tuple[RowBatch | None, Any]:
        """The batch after ``self.after``: read ahead (the next one is read while this one is written) where the
        source reads in any thread; once reading ended at the end of the table, read again from the cursor."""
        if not self.source.reads_in_any_thread:
            return self._read(self.after)
        got = self.reads.take() if self.reads is not None else None
        if got is None:
            if self.reads is not None:
                self.reads.close()
            self.reads = ReadAhead(self._read, self.after, self.batch_rows, max_batches=1)
            got = self.reads.take()
        return got if got is not None else (None, None)

    def _read(self, after: Any) -> tuple[RowBatch | None, Any]:
        got = self.source.read_arrow_after(after, self.batch_rows, to_array_from_arrow)
        if got is not None and (got[0] is None or got[1] is not None):
            batch, table = got
            return batch, (table, [], []) if batch is not None else None
        batch = got[0] if got is not None else self.source.read_after(after, self.batch_rows)
        if batch is None:
            return None, None
        if batch.table is not None:
            return batch, (batch.table, [], [])
        return batch, to_arrow(batch.rows, self.schema, self.source.cursor_index)

    def _with_dropped(self, table: pa.Table) -> pa.Table:
        """``table`` with the columns the source dropped (``--schema-evolution``), NULL."""
        if not self.dropped:
            return table
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        target = schema_to_pyarrow(self.table.schema())
        for name in self.dropped:
            table = table.append_column(target.field(name), pa.nulls(table.num_rows, target.field(name).type))
        return table

    def _commit(self, table: pa.Table) -> None:
        """One Iceberg commit of the rows read since the last (the files written early, ``export/iceberg_early.py``,
        and ``table``, the rest) carrying the cursor range ``committed < C <= after`` (an empty commit when every
        row read was bad: the cursor still moves past them). Data files are cut by :class:`FileSizer` (one per
        partition when the group is about the target size)."""
        props = {CURSOR_AFTER: json.dumps(encode_cursor(self.committed)),
                 CURSOR_LAST: json.dumps(encode_cursor(self.after)), SOURCE_TABLE: self.name, RUN_ID: self.run_id}
        target = max(self.sizer.arrow_target_bytes(table), table.nbytes + 1) if table.num_rows else 1
        with self.table.transaction() as tx, tx.update_snapshot(snapshot_properties=props).fast_append() as app:
            early = self.early.written()  # the early files' transfer ends before the rest's starts (one engine)
            for data_file in [*early, *data_files(self.table, table, target, app.commit_uuid, run=self.run_)]:
                app.append_data_file(data_file)
                if data_file.file_size_in_bytes < (1 - SIZE_TOLERANCE) * self.sizer.target_bytes:
                    key = str(data_file.partition)
                    self.small_files[key] = self.small_files.get(key, 0) + 1
        summary = self.table.current_snapshot().summary
        files, size = int(summary["added-data-files"] or 0), int(summary["added-files-size"] or 0)
        self.counters.objects_written += files
        self.counters.bytes_written += size
        self.sizer.measured(self.pending_bytes, size)

    def report(self) -> ExportReport:
        c = self.counters
        return ExportReport(
            table=self.name, destination=str(self.dest), format="iceberg", rows_read=c.rows_read,
            rows_exported=c.rows_exported, rows_failed=c.rows_failed, rows_unchanged=0,
            objects_written=c.objects_written, objects_failed=0, objects_skipped=0, bytes_written=c.bytes_written,
            batches=c.batches, elapsed_s=c.elapsed_s, retries=self.run_.stats.retries, checkpoint=c.checkpoint,
            dlq=self.dlq.location, dlq_entries=list(dict.fromkeys(self.dlq_entries)), stopped=self.stop.is_set(),
            deleted=list(self.deleted), iceberg=self.describe())

    def describe(self) -> dict[str, Any]:
        """Where the table is: its name in the catalog, its location, the catalog (without a password)."""
        snapshot = self.table.current_snapshot() if self.table is not None else None
        return {"table": f"{NAMESPACE}.{self.name}", "location": table_location(self.dest, self.name),
                "catalog": re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", self.catalog_uri),
                "snapshot_id": snapshot.snapshot_id if snapshot is not None else None,
                "files_compacted": self.compacted}
