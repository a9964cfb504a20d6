"""``export --table-format iceberg --cluster``: what a worker does with a range (``jobs/export_iceberg_cluster.py``
is the coordinator).

A range is consecutive batch cuts ``[after, first, last]`` (JSON-encoded cursor values, planned by the
coordinator from the cursor column). The task :func:`write_iceberg_range` reads each cut's rows
(``after < C <= last``), converts them as the one-process export does (bad rows become dead-letter entries,
returned, not written), and writes them as the table's data files (``iceberg_write.data_files``, files of
about ``--target-file-size`` of Parquet) to the table's location, through pyiceberg's FileIO with this
worker's own credentials (its store's: the standard chain of its environment). It commits nothing: it
returns the ``DataFile`` records (picklable), and the coordinator alone commits them, in cursor order.
The table is read from the metadata file the coordinator named (``StaticTable``): its schema, partition
spec and location; no catalog is opened on a worker.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..cluster.worker import WorkerRuntime
from ..sources.readers import open_table
from ..sources.table import TableSource, decode_cursor, encode_cursor
from .dlq import DlqEntry
from .rows import to_arrow

__all__ = ["IcebergRange", "IcebergRangeJob", "IcebergRangeResult", "write_iceberg_range"]


@dataclass(frozen=True, slots=True)
class IcebergRangeJob:
    """What every range task of one export needs (no credentials): the source (``db`` an absolute SQLite
    path or a URL without a password), the table's metadata file, the columns the source dropped
    (``--schema-evolution``: NULL in new rows) and the data file size in bytes of Parquet."""

    db: str
    table: str
    cursor_column: str
    lock_timeout_s: float | None
    metadata_location: str
    target_file_size_bytes: int
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IcebergRange:
    """Range ``index`` (cursor order, from 0): consecutive cuts ``[after, first, last]``, one task, one commit."""

    index: int
    job: IcebergRangeJob
    cuts: tuple[list[Any], ...]


@dataclass(frozen=True, slots=True)
class IcebergRangeResult:
    """A range's data files (``DataFile`` records, written, not committed), its counts, the dead-letter
    entries ``(entry, first, last)`` for the coordinator to write before the commit, and who wrote it:
    the worker's address and process id, and its busy seconds."""

    index: int
    files: tuple[Any, ...]
    rows_read: int
    rows_exported: int
    rows_failed: int
    batches: int
    dlq: tuple[tuple[DlqEntry, Any, Any], ...]
    address: str
    pid: int
    busy_s: float


def write_iceberg_range(plugin: str, rng: IcebergRange) -> IcebergRangeResult:
    """The task: read ``rng``'s cuts and write them as data files on this worker (see the module docstring)."""
    from distributed import get_worker

    worker = get_worker()
    runtime = worker.plugins[plugin]
    assert isinstance(runtime, WorkerRuntime)
    job = rng.job
    with runtime.turn(str(worker.get_current_task())) as store:
        started = time.monotonic()
        from pyiceberg.table import StaticTable

        from .iceberg_table import store_io_properties

        props = store_io_properties(store, verify_ssl=runtime.config.verify_ssl)
        table = StaticTable.from_metadata(job.metadata_location, properties=props)
        source = open_table(job.db, job.table, job.cursor_column, lock_timeout_s=job.lock_timeout_s)
        try:
            rows, counts, dlq = _read(source, rng, _target_schema(table, job.dropped))
        finally:
            source.close()
        files = tuple(_write(table, rows, job.target_file_size_bytes))
        busy = time.monotonic() - started
    return IcebergRangeResult(rng.index, files, counts[0], rows.num_rows, counts[1], counts[2], tuple(dlq),
                              runtime.address, os.getpid(), busy)


def _target_schema(table: Any, dropped: tuple[str, ...]) -> pa.Schema | None:
    """The Arrow types of the columns the source dropped (added as NULL), or None."""
    if not dropped:
        return None
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    return schema_to_pyarrow(table.schema())


def _read(source: TableSource, rng: IcebergRange, target: pa.Schema | None
          ) -> tuple[pa.Table, tuple[int, int, int], list[tuple[DlqEntry, Any, Any]]]:
    """The rows of ``rng``'s cuts as one table; (rows read, rows failed, batches); the dead-letter entries."""
    parts: list[pa.Table] = []
    dlq: list[tuple[DlqEntry, Any, Any]] = []
    read = failed = batches = 0
    for after, _first, last in rng.cuts:
        batch = source.read_cut(decode_cursor(after), decode_cursor(last))
        if batch is None:
            continue
        batches += 1
        read += batch.count
        bad: list[Any] = []
        if batch.table is not None:
            arrow = batch.table
        else:
            arrow, _positions, bad = to_arrow(batch.rows, source.schema, source.cursor_index)
        bad_rows = list(batch.bad) + bad
        if bad_rows:
            failed += len(bad_rows)
            entry = DlqEntry("rows", source.table, source.cursor.name, encode_cursor(batch.first),
                             encode_cursor(batch.last), f"{len(bad_rows)} rows could not be exported",
                             rows=[{"cursor": encode_cursor(b.cursor), "error": b.error, "values": b.values}
                                   for b in bad_rows])
            dlq.append((entry, batch.first, batch.last))
        for name in rng.job.dropped:
            assert target is not None
            arrow = arrow.append_column(target.field(name), pa.nulls(arrow.num_rows, target.field(name).type))
        parts.append(arrow)
    rows = pa.concat_tables(parts) if parts else source.schema.empty_table()
    return rows, (read, failed, batches), dlq


def _write(table: Any, rows: pa.Table, target_file_size_bytes: int) -> list[Any]:
    """``rows`` as data files of the table (none for no rows), cut at about ``target_file_size_bytes`` of Parquet."""
    if not rows.num_rows:
        return []
    import uuid

    from . import iceberg_write
    from .iceberg_sizer import FileSizer

    iceberg_write.check_rows_fit(table.metadata, rows.schema)
    target = FileSizer(target_file_size_bytes).arrow_target_bytes(rows)
    return list(iceberg_write.data_files(table, rows, target, uuid.uuid4()))
