"""The Iceberg export's batches read ahead on a thread of their own, and the guess that lets the first ones be read
while the table is still being opened.

Reading the source is the export's critical path (the rows of a batch are converted and written while the next is
read), and opening the table costs pyiceberg's imports and the catalog (about 0.4 s). A table that does not exist
yet has no committed cursor: its export starts at the beginning of the source. :func:`table_is_new` says so for
the default catalog (a local SQLite file) from the file itself (stdlib ``sqlite3``, before pyiceberg is imported),
and the first batches are read while the table is created. The guess only decides when reading starts: the batches
are kept only if the table, once open, has no committed cursor (``IcebergExport.begin``); else they are dropped
unread by anyone and reading starts again at the committed cursor.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .iceberg_table import CATALOG_NAME, sqlite_path

__all__ = ["ReadAhead", "table_is_new"]

#: batches read ahead at most, and their Arrow bytes at most (a batch over it is still read, alone)
MAX_BATCHES = 8
MAX_BYTES = 128 << 20


def table_is_new(catalog_uri: str, namespace: str, table: str) -> bool:
    """True when the SQLite catalog at ``catalog_uri`` (``sqlite:///path``) certainly holds no table
    ``namespace.table`` of s3pump's catalog (:data:`~.iceberg_table.CATALOG_NAME`): its file does not exist, or
    has no such row (pyiceberg's ``SqlCatalog`` keeps one row per table in ``iceberg_tables``). False when it may,
    or when the catalog is no local SQLite file (another SQL database, a REST catalog): nothing is guessed then."""
    path = sqlite_path(catalog_uri)
    if path is None:
        return False
    if not os.path.exists(path):
        return True
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)) as conn:
            row = conn.execute("SELECT 1 FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? "
                               "AND table_name = ?", (CATALOG_NAME, namespace, table)).fetchone()
    except sqlite3.Error:  # no iceberg_tables yet, locked, not SQLite: no guess
        return False
    return row is None


class ReadAhead:
    """Batches read in cursor order from ``after`` by ``read(after) -> (RowBatch | None, converted)`` on a thread
    of its own, up to ``max_batches`` (and :data:`MAX_BYTES` of Arrow) ahead of :meth:`take`. Reading ends
    after a batch shorter than ``batch_rows`` (the end of the table for now) or none; :meth:`take` then returns
    None. An error of ``read`` is raised by the :meth:`take` that reaches it."""

    def __init__(self, read: Callable[[Any], tuple[Any, Any]], after: Any, batch_rows: int, *,
                 max_batches: int = MAX_BATCHES) -> None:
        self._read, self._batch_rows, self._max_batches = read, batch_rows, max_batches
        self._ready: deque[tuple[Any, Any] | BaseException | None] = deque()
        self._bytes = 0
        self._cancelled = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, args=(after,), name="s3pump-export-read", daemon=True)
        self._thread.start()

    def _run(self, after: Any) -> None:
        while True:
            try:
                got = self._read(after)
            except BaseException as e:  # (raised to the consumer by take)
                self._put(e, 0)
                return
            batch, converted = got
            size = converted[0].nbytes if batch is not None and converted is not None else 0
            if not self._put(got, size):
                return
            if batch is None or batch.count < self._batch_rows:
                self._put(None, 0)
                return
            after = batch.last

    def _put(self, item: tuple[Any, Any] | BaseException | None, size: int) -> bool:
        with self._cond:
            while not self._cancelled and self._ready and (len(self._ready) >= self._max_batches
                                                           or self._bytes + size > MAX_BYTES):
                self._cond.wait()
            if self._cancelled:
                return False
            self._ready.append(item)
            self._bytes += size
            self._cond.notify_all()
            return True

    def limit(self, max_batches: int) -> None:
        """Read at most ``max_batches`` ahead from now on (the batches already read stay)."""
        with self._cond:
            self._max_batches = max_batches
            self._cond.notify_all()

    def take(self) -> tuple[Any, Any] | None:
        """The next batch read (``(RowBatch | None, converted)``), waiting for it; None once reading ended."""
        with self._cond:
            while not self._ready:
                if not self._thread.is_alive():
                    return None
                self._cond.wait(0.5)
            item = self._ready.popleft()
            if isinstance(item, tuple) and item[0] is not None and item[1] is not None:
                self._bytes -= item[1][0].nbytes
            if item is None:
                self._ready.appendleft(None)  # ended: every later take says so too
            self._cond.notify_all()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop reading (a read in flight ends first: the source is closed after) and drop what was read."""
        with self._cond:
            self._cancelled = True
            self._ready.clear()
            self._cond.notify_all()
        self._thread.join()
