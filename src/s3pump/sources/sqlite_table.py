"""A SQLite table as an export's source (:class:`SqliteTable`): the file opened read-only through the standard
library (no extra installs), batches read straight into Arrow through ADBC's SQLite driver where every value has its
declared storage class (:mod:`.sqlite_arrow`, the ``export`` extra), else as rows; a TEXT value that is not valid
UTF-8 does not stop the batch: it is read again as raw bytes and only the rows that fail to decode become
:class:`~.table.BadRow` s. The batches, cursor and types are :mod:`.table`'s.

SQLite specifics:

* ``--table`` is matched as SQLite matches names (case-insensitively); the table's declared
  name is used for keys and state, so ``invoice`` and ``Invoice`` are one export. Column
  names given in another case find their column too (:func:`~.table.find_column`).
* Only an ``INTEGER PRIMARY KEY`` (a rowid alias) or a ``WITHOUT ROWID`` table's key is
  NOT NULL by itself; any other ``PRIMARY KEY`` column can hold NULLs (sqlite.org,
  "CREATE TABLE", "the PRIMARY KEY"), so :meth:`~.table.TableSource.null_cursor_rows` counts them.
* Another writer holding the database lock is waited for, not fatal: a 1 s busy timeout per
  statement, then retries with capped exponential backoff (up to ``lock_timeout_s``, or
  until ``stop`` is set when that is None).
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from ..errors import PathNotFoundError, SourceUnreadableError, UsageError
from ..gcpause import gc_paused
from .sqlite_arrow import ArrowBatchReader, ArrowRows
from .sqlite_types import infer_untyped
from .table import BadRow, Column, RowBatch, SqlTextTable, arrow_type_for, pick_cursor, quote_name

__all__ = ["SqliteTable"]

log = logging.getLogger(__name__)


class SqliteTable(SqlTextTable):
    reads_in_any_thread = True  # its connection is opened with check_same_thread=False

    def __init__(self, path: str, table: str, cursor_column: str | None, lock_timeout_s: float | None,
                 stop: threading.Event | None) -> None:
        if not os.path.exists(path):
            raise PathNotFoundError(f"{path}: no such SQLite file")
        self.path = path
        self.lock_timeout_s, self.stop = lock_timeout_s, stop  # before the first query
        # one statement at a time, and close() waits for it: a read-ahead thread may still be in a
        # read when the export ends (closing a connection under a running statement crashes)
        self._conn_lock = threading.Lock()
        try:
            # a short busy timeout per statement; _run retries a locked database with backoff
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=1.0)
        except sqlite3.Error as e:
            raise SourceUnreadableError(f"{path}: cannot read SQLite database ({e})") from None
        # SQLite matches table names case-insensitively: keys and state use the declared name
        found = self._startup("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'view') AND "
                              "name = ? COLLATE NOCASE", (table,))
        if found:
            table, ddl = found[0][0], found[0][1] or ""
        else:
            ddl = ""
        info = self._startup(f"PRAGMA table_info({quote_name(table)})", ())
        if not info:
            raise UsageError(f"{path}: no table named {table!r}")
        without_rowid = re.search(r"\bWITHOUT\s+ROWID\s*;?\s*$", ddl, re.IGNORECASE) is not None
        pks = [r for r in info if r[5]]
        rowid_alias = len(pks) == 1 and (pks[0][2] or "").upper() == "INTEGER" and not without_rowid
        # only a rowid alias or a WITHOUT ROWID key is NOT NULL without saying so
        columns = [Column(name, decl or "", arrow_type_for(decl or ""),
                          not notnull and not (pk and (rowid_alias or without_rowid)), pk)
                   for _cid, name, decl, notnull, _dflt, pk in info]
        # views' computed columns and untyped ones: typed by their values (sources/sqlite_types.py)
        columns = infer_untyped(columns, quote_name(table), quote_name, lambda sql: self._startup(sql, ()))
        super().__init__(path, table, columns, pick_cursor(path, table, columns, cursor_column))
        cols = ", ".join(quote_name(c.name) for c in columns)
        c = quote_name(self.cursor.name)
        base = f"SELECT {cols} FROM {quote_name(table)}"
        self._sql_first = f"{base} ORDER BY {c} LIMIT ?"
        self._sql_after = f"{base} WHERE {c} > ? ORDER BY {c} LIMIT ?"
        self._sql_range = f"{base} WHERE {c} >= ? AND {c} <= ? ORDER BY {c}"
        self._sql_equal = f"{base} WHERE {c} = ?"
        self._sql_upto = f"{base} WHERE {c} <= ? ORDER BY {c}"
        self._sql_between = f"{base} WHERE {c} > ? AND {c} <= ? ORDER BY {c}"
        self._sql_nulls = f"SELECT COUNT(*) FROM {quote_name(table)} WHERE {c} IS NULL"
        self._sql_nth = f"SELECT {c} FROM {quote_name(table)} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1 OFFSET ?"
        self._sql_nth_after = f"SELECT {c} FROM {quote_name(table)} WHERE {c} > ? ORDER BY {c} LIMIT 1 OFFSET ?"
        self._sql_max = f"SELECT MAX({c}) FROM {quote_name(table)}"
        self._sql_max_after = f"SELECT MAX({c}) FROM {quote_name(table)} WHERE {c} > ?"
        self._sql_count = f"SELECT COUNT({c}) FROM {quote_name(table)}"
        self._sql_count_after = f"SELECT COUNT(*) FROM {quote_name(table)} WHERE {c} > ?"
        # with text_factory=bytes, TEXT values of every non-BLOB column come back as bytes
        self._text = {i for i, col in enumerate(columns) if not pa.types.is_binary(col.arrow_type)}
        self._arrow: ArrowBatchReader | None = None
        if ArrowBatchReader.supported([col.arrow_type for col in columns]):
            self._arrow = ArrowBatchReader(path, table, self.schema, [col.declared_type for col in columns],
                                          self.cursor_index, quote_name, self._conn_lock)

    def read_arrow_after(self, after: Any, limit: int, convert: Callable[[pa.Array, pa.DataType], pa.Array]
                         ) -> tuple[RowBatch | None, pa.Table | None] | None:
        got = self._arrow.read_after(after, limit, convert) if self._arrow is not None else None
        if got is None:
            return None
        raw, table = got
        if raw.num_rows == 0:
            return None, None
        cursor = raw.column(self.cursor_index)
        return RowBatch(ArrowRows(raw), cursor[0].as_py(), cursor[-1].as_py()), table

    def _sql(self, low: Any, high: Any, limit: int | None, inclusive: bool) -> tuple[str, tuple[Any, ...]]:
        if inclusive:
            return self._sql_range, (low, high)
        if low is None:
            return self._sql_first, (limit,)
        return self._sql_after, (low, limit)

    def _startup(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self._execute(sql, params)
        except SourceUnreadableError:
            self.conn.close()
            raise
        except sqlite3.Error as e:
            self.conn.close()
            raise SourceUnreadableError(f"{self.path}: cannot read SQLite database ({e})") from None

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Run a query, waiting out another writer's lock with capped exponential backoff.

        Returns [] when ``stop`` is set while waiting.

        Raises:
            SourceUnreadableError: still locked after ``lock_timeout_s``.
            sqlite3.Error: any other failure (the callers turn it into one line).
        """
        started, delay = time.monotonic(), 0.05
        while True:
            try:
                with self._conn_lock, gc_paused():  # a batch: 100,000 new row tuples, none in a cycle
                    return self.conn.execute(sql, params).fetchall()
            except sqlite3.OperationalError as e:
                text = str(e).lower()
                if "locked" not in text and "busy" not in text:
                    raise
                waited = time.monotonic() - started
                if delay == 0.05:  # once per wait: say why nothing moves
                    limit = (f"up to {self.lock_timeout_s:.0f} s" if self.lock_timeout_s is not None
                             else "until it is released")
                    log.warning("%s: locked by another writer; waiting %s", self.path, limit)
                if self.lock_timeout_s is not None and waited >= self.lock_timeout_s:
                    raise SourceUnreadableError(
                        f"{self.path}: the database stayed locked by another writer for {waited:.0f} s; "
                        "retry when the writer is done") from None
            if self.stop is not None:
                if self.stop.wait(delay):
                    return []
            else:
                time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self._execute(sql, params)
        except sqlite3.OperationalError as e:
            if "decode" not in str(e).lower():
                raise SourceUnreadableError(f"{self.path}: reading {self.table} failed ({e})") from None
        except sqlite3.Error as e:
            raise SourceUnreadableError(f"{self.path}: reading {self.table} failed ({e})") from None
        return self._run_bytes(sql, params)

    def _run_bytes(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Re-read as bytes and decode text per value: rows with invalid UTF-8 become BadRows."""
        self.conn.text_factory = bytes
        try:
            raw = self._execute(sql, params)
        except sqlite3.Error as e:
            raise SourceUnreadableError(f"{self.path}: reading {self.table} failed ({e})") from None
        finally:
            self.conn.text_factory = str
        out: list[Any] = []
        self._had_bad = True
        for row in raw:
            values = list(row)
            try:
                for i, v in enumerate(values):
                    if isinstance(v, bytes) and i in self._text:
                        values[i] = v.decode("utf-8")
            except UnicodeDecodeError as e:
                col = self.columns[i].name
                cursor = values[self.cursor_index]
                out.append(BadRow(cursor, f"column {col}: invalid UTF-8 in TEXT value ({e.reason} at byte "
                                  f"{e.start})", repr(tuple(row))))
                continue
            out.append(tuple(values))
        return out

    def _fetch(self, low: Any, high: Any, limit: int | None, inclusive: bool = False) -> list[Any]:
        return self._run(*self._sql(low, high, limit, inclusive))

    def _fetch_equal(self, value: Any) -> list[Any]:
        return self._run(self._sql_equal, (value,))

    def _fetch_upto(self, after: Any, last: Any) -> list[Any]:
        if after is None:
            return self._run(self._sql_upto, (last,))
        return self._run(self._sql_between, (after, last))

    def _count_null(self) -> int:
        rows = self._run(self._sql_nulls, ())
        return int(rows[0][0]) if rows else 0

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        try:
            rows = self._execute(sql, params)
        except sqlite3.Error as e:
            raise SourceUnreadableError(f"{self.path}: reading {self.table} failed ({e})") from None
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self._conn_lock:
            if self._arrow is not None:
                self._arrow.close()
            self.conn.close()


