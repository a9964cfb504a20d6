"""Data files of the next Iceberg commit written while its rows are still being read.

A commit's rows are gathered by partition as each batch arrives. A partition that the newest batch did not
touch is taken as finished (rows in cursor order fill time partitions one after the other: yesterday's
partition is finished once today's rows come): its rows are written as one data file now, on
:data:`_THREADS` threads, and PUT by the run (``Run.put_now``: the store's checksums, the
run's retry policy), while the next batches are read. The rest (the partitions still open, or an
unpartitioned table's rows) are written at the commit (``iceberg_write.data_files``). Either way the
files are only data until the commit references them: a run killed before it leaves orphans that the next
run deletes. A partition whose rows come back later (partitions not in cursor order) gets one more file.
"""

from __future__ import annotations

import concurrent.futures as cf
import uuid
from typing import Any

import pyarrow as pa

from .iceberg_write import WRITERS, FileWriter, partitions

__all__ = ["EarlyFiles"]

_ATTRS_CONTENT_TYPE = "application/vnd.apache.parquet"
#: threads writing and PUTting early files: each waits for its PUT's answer, so more than the cores
#: (:data:`~.iceberg_write.WRITERS`), else the files of 857 day partitions queued behind the round trips
_THREADS = 4 * WRITERS


class EarlyFiles:
    """The rows read since the last commit, by partition, and the data files already written of them."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.open: dict[tuple[Any, ...], tuple[Any, list[pa.Table]]] = {}  # partition values -> key, rows
        self.files: list[cf.Future[Any]] = []  # DataFile records (their upload done)
        self.checked: set[pa.Schema] = set()
        self.writer: FileWriter | None = None
        self._pool: cf.ThreadPoolExecutor | None = None

    def add(self, table: Any, rows: pa.Table) -> None:
        """Take a batch's ``rows`` (of ``table``'s schema); write the partitions it did not touch.

        Raises:
            ValueError: (pyiceberg) ``rows`` do not fit the table's schema.
        """
        from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible

        if rows.num_rows == 0:
            return
        if rows.schema not in self.checked:
            meta = table.metadata
            _check_pyarrow_schema_compatible(meta.schema(), provided_schema=rows.schema,
                                             format_version=meta.format_version)
            self.checked.add(rows.schema)
        if table.spec().is_unpartitioned():
            self.open.setdefault((), (None, []))[1].append(rows)
            return
        touched = set()
        for key, part in partitions(table.metadata, rows):
            values = tuple(v.value for v in key.field_values) if key is not None else ()
            touched.add(values)
            self.open.setdefault(values, (key, []))[1].append(part)
        for values in [v for v in self.open if v not in touched]:
            key, parts = self.open.pop(values)
            self._write(table, key, pa.concat_tables(parts))

    def _write(self, table: Any, key: Any, rows: pa.Table) -> None:
        if self.writer is None:
            self.writer = FileWriter(table, uuid.uuid4())
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(_THREADS, thread_name_prefix="s3pump-iceberg-early")
        n, writer, run = len(self.files), self.writer, self.run

        def write() -> Any:
            from ..store.base import ObjectAttributes

            path, body, record = writer.write((n, (key, rows)))
            run.put_now(path.split("://", 1)[1].split("/", 1)[1], body,
                        ObjectAttributes(content_type=_ATTRS_CONTENT_TYPE))
            return record

        self.files.append(self._pool.submit(write))

    def rest(self, schema: pa.Schema) -> pa.Table:
        """The rows not written yet (every open partition's), in one table; they are no longer held."""
        tables = [t for _key, parts in self.open.values() for t in parts]
        self.open = {}
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def written(self) -> list[Any]:
        """The ``DataFile`` records of the files written early, once all are stored; cleared for the next commit.

        Raises:
            StoreError: a file's PUT failed for good (nothing may be committed).
        """
        files, self.files, self.writer = self.files, [], None
        return [f.result() for f in files]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
