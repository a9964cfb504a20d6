"""Data files of the next Iceberg commit written while its rows are still being read.

A commit's rows are gathered by partition as each batch arrives. A partition that the newest batch did not
touch is taken as finished (rows in cursor order fill time partitions one after the other: yesterday's
partition is finished once today's rows come): its rows are written as one data file now, on
:data:`~.iceberg_write.WRITERS` threads (as many as the cores: Arrow's writer is CPU-bound), and sent by one
transfer of the run's engine per commit (``Run.transfer``: the store's checksums, the run's retry policy,
cancellation, as every other upload), fed in file order from a queue while the next batches are read. The rest
(the partitions still open, or an unpartitioned table's rows) are written at the commit
(``iceberg_write.data_files``), once the early files' transfer has ended. Either way the files are only data
until the commit references them: a run killed before it leaves orphans that the next run deletes. A
partition whose rows come back later (partitions not in cursor order) gets one more file.
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from ..items import UploadItem
from .iceberg_write import WRITERS, FileWriter, check_rows_fit, check_stored, data_file_attrs, partitions, upload_item

__all__ = ["EarlyFiles"]


class EarlyFiles:
    """The rows read since the last commit, by partition, and the data files already written of them."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.open: dict[tuple[Any, ...], tuple[Any, list[pa.Table]]] = {}  # partition values -> key, rows
        self.checked: set[pa.Schema] = set()
        self.writer: FileWriter | None = None
        self._writers: cf.ThreadPoolExecutor | None = None
        self._files: queue.SimpleQueue[cf.Future[Any] | None] = queue.SimpleQueue()  # written, in order; None: end
        self._sender: threading.Thread | None = None  # the commit's transfer of the early files
        self._records: list[Any] = []  # DataFile records of the files handed to the transfer
        self._error: BaseException | None = None
        self._failed_before = 0
        self._count = 0  # files of this writer (their numbers)

    def add(self, table: Any, rows: pa.Table) -> None:
        """Take a batch's ``rows`` (of ``table``'s schema); write the partitions it did not touch.

        Raises:
            ValueError: (pyiceberg) ``rows`` do not fit the table's schema.
        """
        if rows.num_rows == 0:
            return
        if rows.schema not in self.checked:
            check_rows_fit(table.metadata, rows.schema)
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
            self.writer, self._count = FileWriter(table, uuid.uuid4()), 0  # the files' names: 00000-<n>-<uuid>
        if self._writers is None:
            self._writers = cf.ThreadPoolExecutor(WRITERS, thread_name_prefix="s3pump-iceberg-early")
        if self._sender is None:
            self._failed_before = self.run.stats.files_failed
            self._sender = threading.Thread(target=self._send, name="s3pump-iceberg-send", daemon=True)
            self._sender.start()
        self._files.put(self._writers.submit(self.writer.write, (self._count, (key, rows))))
        self._count += 1

    def _send(self) -> None:
        try:
            self.run.transfer(self._items())
        except BaseException as e:  # handed to written(), on the committing thread
            self._error = e
            while self._files.get() is not None:  # the writes still queued: nothing is sent
                pass

    def _items(self) -> Iterator[UploadItem]:
        attrs = data_file_attrs(self.run.config)
        while (written := self._files.get()) is not None:
            path, body, record = written.result()
            self._records.append(record)
            yield upload_item(path, body, attrs)

    def rest(self, schema: pa.Schema) -> pa.Table:
        """The rows not written yet (every open partition's), in one table; they are no longer held."""
        tables = [t for _key, parts in self.open.values() for t in parts]
        self.open = {}
        return pa.concat_tables(tables) if tables else schema.empty_table()

    def written(self) -> list[Any]:
        """The ``DataFile`` records of the files written early, once all are stored; cleared for the next commit.

        Raises:
            StoreError: a file could not be stored (after the run's retries): nothing may be committed.
            CancelledError: the run was cancelled while they were sent.
        """
        sender, self._sender, self.writer = self._sender, None, None
        if sender is None:
            return []
        self._files.put(None)
        sender.join()
        records, self._records = self._records, []
        error, self._error = self._error, None
        if error is not None:
            raise error
        check_stored(self.run, self._failed_before)
        return records

    def close(self) -> None:
        """Stop the writers (the files not written yet are dropped) and end the transfer."""
        if self._writers is not None:
            self._writers.shutdown(wait=True, cancel_futures=True)
            self._writers = None
        if self._sender is not None:
            self._files.put(None)
            self._sender.join()
            self._sender = None
