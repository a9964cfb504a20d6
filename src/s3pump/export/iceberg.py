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

pyiceberg does the writes itself through pyarrow's S3 client (see ``export/iceberg_table.py``): the
run's ``Store`` lists and deletes the orphans and writes the dead-letter queue.

Bad rows go to the dead-letter queue as in the plain export, written *before* the batch's commit
(the entry's key is a function of the batch's range, so a rerun after a kill overwrites it).
"""

from __future__ import annotations

import json
import re
import threading
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
from .partition import PartitionSpec
from .rows import to_array_from_arrow, to_arrow

__all__ = ["IcebergExport"]


class IcebergExport:
    """Exports ``source`` into the Iceberg table ``s3pump.<Table>`` at ``dest/<Table>`` within ``run``.

    ``catalog_uri``: None for the SQLite catalog in the state directory (:attr:`catalog_uri` says which).
    ``target_file_size_bytes``: the table's ``write.target-file-size-bytes`` (pyiceberg splits a commit's
    rows into files of about that size, estimated from their Arrow size).
    """

    def __init__(self, source: TableSource, dest: S3Url, run: Run, specs: list[PartitionSpec], *, batch_rows: int,
                 stop: threading.Event, catalog_uri: str | None, schema_evolution: bool, dlq: str | None,
                 target_file_size_bytes: int) -> None:
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
        self.after: Any = None

    # ------------------------------------------------------------------ the run
    def begin(self) -> None:
        """Open (or create) the table, evolve its schema for added columns, read the committed cursor,
        and delete the data files (and abort the multipart uploads) of commits that never happened.

        Raises:
            UsageError: a retyped or (without ``--schema-evolution``) dropped column; the table is elsewhere.
        """
        catalog = open_catalog(self.catalog_uri, self.dest, io_properties(self.run_))
        self.table = open_table(catalog, self.dest, self.name, self.schema, self.specs)
        added, self.dropped = check_schema_change(self.table, self.schema, evolution=self.schema_evolution,
                                                  name=self.name)
        if added:
            with self.table.update_schema() as update:
                update.union_by_name(self.schema)
        key = "write.target-file-size-bytes"
        if self.table.properties.get(key) != str(self.target_file_size_bytes):
            with self.table.transaction() as tx:
                tx.set_properties({key: str(self.target_file_size_bytes)})
        self.after = last_cursor(self.table)
        self.counters.checkpoint = encode_cursor(self.after)
        abort_dead_uploads(self.run_, self.dest, self.name)
        orphans = orphan_data_keys(self.run_, self.dest, self.table, self.name)
        if orphans:
            self.run_.delete(orphans)
            self.deleted = orphans

    def run(self, *, follow: bool, poll_interval_s: float) -> ExportReport:
        """Export the rows past the committed cursor (``follow``: until ``stop`` is set)."""
        self.begin()
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
            self.stop.wait(poll_interval_s)
            if self.stop.is_set():
                break
        return self.report()

    def _one_batch(self) -> bool:
        """Read, convert and commit the next batch; False when there was none, or it was the last."""
        batch, converted = self._read()
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
        self._commit(self._with_dropped(table), batch)
        c.rows_exported += table.num_rows
        self.after = batch.last
        c.checkpoint = encode_cursor(batch.last)
        self.run_.emit(BatchExported(table.num_rows, c.checkpoint))
        return batch.count >= self.batch_rows

    def _read(self) -> tuple[RowBatch | None, Any]:
        got = self.source.read_arrow_after(self.after, self.batch_rows, to_array_from_arrow)
        if got is not None and (got[0] is None or got[1] is not None):
            batch, table = got
            return batch, (table, [], []) if batch is not None else None
        batch = got[0] if got is not None else self.source.read_after(self.after, self.batch_rows)
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

    def _commit(self, table: pa.Table, batch: RowBatch) -> None:
        """One Iceberg commit of ``table`` carrying the batch's cursor range (an empty commit when every row
        of the batch was bad: the cursor still moves past it)."""
        props = {CURSOR_AFTER: json.dumps(encode_cursor(self.after)),
                 CURSOR_LAST: json.dumps(encode_cursor(batch.last)), SOURCE_TABLE: self.name, RUN_ID: self.run_id}
        if table.num_rows:
            self.table.append(table, snapshot_properties=props)
        else:
            with self.table.transaction() as tx, tx.update_snapshot(snapshot_properties=props).fast_append():
                pass
        summary = self.table.current_snapshot().summary
        self.counters.objects_written += int(summary["added-data-files"] or 0)
        self.counters.bytes_written += int(summary["added-files-size"] or 0)

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
                "snapshot_id": snapshot.snapshot_id if snapshot is not None else None}
