"""SQL table → batches of rows ordered by a cursor column (the source of ``s3pump export``).

A batch is ``SELECT <columns> FROM T WHERE C > :after ORDER BY C LIMIT :n``; the next batch
starts after the batch's last cursor value, so gaps in the key never skip or repeat rows
(the original lab pipeline added the row count to the last ID, which breaks on gaps). If a
full batch ends inside a run of equal cursor values, the rest of that run is read too, so a
non-unique cursor never splits a value across batches.

Two readers:

* SQLite files, through the standard library (no extra installs). The file is opened
  read-only. A TEXT value that is not valid UTF-8 does not stop the batch: the batch is
  re-read as raw bytes and only the rows that fail to decode become :class:`BadRow` s.
  The export's batches are read straight into Arrow where every value has its declared
  storage class (:mod:`.sqlite_arrow`, ADBC's SQLite driver, with the ``export`` extra): the
  same values, without a Python tuple per row.
* PostgreSQL (``postgresql://…``, ``postgres://…``) straight into Arrow through ADBC
  (:mod:`.postgres`, the ``postgres`` extra).
* Any other SQLAlchemy URL (``mysql+pymysql://…``), with the ``sql`` extra
  (``pip install 's3pump[sql]'``).

Declared column types map to Arrow types by SQLite's affinity rules (sqlite.org,
"Datatypes In SQLite", 3.1), after the names BOOL, DATETIME/TIMESTAMP, DATE and
``NUMERIC(p,s)``/``DECIMAL(p,s)`` (exact: ``decimal128(p,s)``, ``decimal256`` above 38 digits;
a bare ``NUMERIC`` stays ``float64``).

SQLite specifics:

* ``--table`` is matched as SQLite matches names (case-insensitively); the table's declared
  name is used for keys and state, so ``invoice`` and ``Invoice`` are one export. Column
  names given in another case find their column too (:func:`find_column`).
* Only an ``INTEGER PRIMARY KEY`` (a rowid alias) or a ``WITHOUT ROWID`` table's key is
  NOT NULL by itself; any other ``PRIMARY KEY`` column can hold NULLs (sqlite.org,
  "CREATE TABLE", "the PRIMARY KEY"), so :meth:`TableSource.null_cursor_rows` counts them.
* Another writer holding the database lock is waited for, not fatal: a 1 s busy timeout per
  statement, then retries with capped exponential backoff (up to ``lock_timeout_s``, or
  until ``stop`` is set when that is None).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import PathNotFoundError, SourceError, SourceUnreadableError, UsageError
from ..gcpause import gc_paused
from .sqlite_arrow import ArrowBatchReader, ArrowRows
from .sqlite_types import infer_untyped, is_untyped

log = logging.getLogger(__name__)

__all__ = [
    "BadRow",
    "Column",
    "RowBatch",
    "SqlTextTable",
    "TableSource",
    "arrow_type_for",
    "find_column",
    "is_password_parameter",
    "open_sql_table",
    "redact_url",
]


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its name, declared SQL type, Arrow type, nullability, primary-key position."""

    name: str
    declared_type: str
    arrow_type: pa.DataType
    nullable: bool = True
    pk: int = 0  # 1-based position in the primary key, 0 if not part of it


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that could not be read or converted: its cursor value, the error, its raw values (repr)."""

    cursor: Any
    error: str
    values: str


@dataclass(slots=True)
class RowBatch:
    """Rows ``first..last`` (cursor values, inclusive) in cursor order; ``bad`` rows are in the range too."""

    rows: Sequence[tuple[Any, ...]]
    first: Any
    last: Any
    bad: list[BadRow] = field(default_factory=list)
    #: ``rows`` already converted to the table's Arrow types, by a reader straight into Arrow
    #: (:mod:`.postgres`); None: the export converts ``rows``.
    table: pa.Table | None = None

    @property
    def count(self) -> int:
        return len(self.rows) + len(self.bad)


_DECIMAL = re.compile(r"^\s*(?:NUMERIC|DECIMAL)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", re.IGNORECASE)


def arrow_type_for(declared: str) -> pa.DataType:
    """The Arrow type of a declared SQL column type (SQLite affinity rules, plus dates, booleans, decimals).

    ``NUMERIC(p,s)``/``DECIMAL(p,s)`` (``1 <= p <= 76``, ``0 <= s <= p``; ``s`` defaults to 0) →
    ``decimal128(p,s)`` (``decimal256`` for p > 38); a bare ``NUMERIC``/``DECIMAL`` → ``float64``.
    """
    t = (declared or "").upper()
    if "BOOL" in t:
        return pa.bool_()
    if "DATETIME" in t or "TIMESTAMP" in t:
        return pa.timestamp("us")
    if t.startswith("DATE"):
        return pa.date32()
    if m := _DECIMAL.match(t):
        precision, scale = int(m.group(1)), int(m.group(2) or 0)
        if 1 <= precision <= 38 and scale <= precision:
            return pa.decimal128(precision, scale)
        if precision <= 76 and scale <= precision:
            return pa.decimal256(precision, scale)
    if "INT" in t:
        return pa.int64()
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return pa.string()
    if "BLOB" in t or t == "" or "BINARY" in t or "BYTEA" in t:
        return pa.binary()
    # REAL/FLOA/DOUB, and NUMERIC/DECIMAL (stored as REAL or INTEGER in SQLite)
    return pa.float64()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class TableSource:
    """Reads one table in cursor order. Use ``sources.readers.open_table`` to get one; close it when done."""

    stop: threading.Event | None = None  # set: stop waiting for a lock (the read returns no rows)
    lock_timeout_s: float | None = 300.0  # None: wait for a lock until ``stop`` is set
    #: Reads may run in another thread than the one that opened the source (one read at a time):
    #: the export then reads the next batch while it writes this one.
    reads_in_any_thread = False

    def __init__(self, where: str, table: str, columns: list[Column], cursor: Column) -> None:
        self.where = where  # the database, for messages (a path, or a URL without its password)
        self.table = table
        self.columns = columns
        self.cursor = cursor
        self.cursor_index = columns.index(cursor)
        self._had_bad = False  # set by a reader that returned BadRows in its last fetch

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the table (declared types), the same for every batch."""
        return pa.schema([pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns])

    def read_after(self, after: Any, limit: int) -> RowBatch | None:
        """The next ``limit`` rows with cursor > ``after`` (all rows if ``after`` is None); None at the end.

        Raises:
            SourceUnreadableError: the database failed (locked, I/O error, table gone).
        """
        rows = self._fetch(after, None, limit)
        if len(rows) == limit and limit > 0:
            # finish a run of equal cursor values, so the next batch's "C > last" skips nothing
            last = self._cursor_of(rows[-1])
            ties = self._fetch_equal(last)
            if len(ties) > 1:
                rows = [r for r in rows if self._cursor_of(r) != last] + ties
        return self._batch(rows)

    def read_arrow_after(self, after: Any, limit: int, convert: Callable[[pa.Array, pa.DataType], pa.Array]
                         ) -> tuple[RowBatch | None, pa.Table | None] | None:
        """:meth:`read_after` straight into Arrow where the source can (:mod:`.sqlite_arrow`): the batch
        (its rows built only if asked for) and its table of :attr:`schema`, its columns converted by
        ``convert``; ``(None, None)`` at the end. None: use :meth:`read_after` for this batch."""
        return None

    def read_range(self, first: Any, last: Any) -> RowBatch | None:
        """All rows with ``first <= cursor <= last`` (for replaying a dead-letter entry)."""
        return self._batch(self._fetch(first, last, None, inclusive=True))

    def read_cut(self, after: Any, last: Any) -> RowBatch | None:
        """All rows with ``after < cursor <= last`` (``after`` None: no lower bound): a batch cut earlier.

        The same range as the batch that was cut, plus any row added inside it since.
        """
        return self._batch(self._fetch_upto(after, last))

    def plan_cut(self, after: Any, limit: int) -> tuple[Any, Any] | None:
        """The ``(first, last)`` cursor values of the batch ``read_after(after, limit)`` would read, from
        the cursor column only (no row is fetched): ``last`` is the ``limit``-th value after ``after``
        (a run of equal values stays whole there too), or the largest one if fewer follow. None: no row
        has a cursor > ``after``. ``export --cluster`` plans its cuts with it, so they equal the batches
        of a single-process export.

        Raises:
            SourceUnreadableError: the database failed (locked past the timeout, I/O error, table gone).
        """
        first = self._cursor_nth(after, 0)
        if first is None:
            return None
        last = self._cursor_nth(after, limit - 1) if limit > 1 else first
        if last is None:
            last = self._cursor_max(after)
        return first, last

    def max_cursor(self) -> Any:
        """The largest cursor value in the table (None if it is empty)."""
        return self._cursor_max(None)

    def count_after(self, after: Any) -> int | None:
        """How many rows have a cursor value > ``after`` (not NULL, if None): what an export from there
        reads (``SELECT count(*)``, an index range scan where the cursor is indexed); None when the reader
        cannot count.

        Raises:
            SourceUnreadableError: the query failed.
        """
        return None

    def null_cursor_rows(self) -> int:
        """How many rows hold NULL in the cursor column (0 without a query when the column cannot)."""
        if not self.cursor.nullable:
            return 0
        return self._count_null()

    def check_cursor_not_null(self) -> None:
        """Refuse a cursor column holding NULLs: such rows sort outside every ``C > after`` batch.

        Raises:
            UsageError: naming the column and the number of rows (exit 2).
        """
        n = self.null_cursor_rows()
        if n:
            raise UsageError(
                f"{self.where}: cursor column {self.cursor.name} of table {self.table} is NULL in {n} row"
                f"{'s' if n != 1 else ''}, which no cursor batch can reach; choose a NOT NULL column with "
                f"--cursor-column, or fill the NULLs (UPDATE {self.table} SET {self.cursor.name} = … WHERE "
                f"{self.cursor.name} IS NULL)")

    def close(self) -> None:  # pragma: no cover - overridden
        return None

    # ---- implemented by the readers ----
    def _fetch(self, low: Any, high: Any, limit: int | None, inclusive: bool = False) -> list[Any]:
        raise NotImplementedError

    def _fetch_equal(self, value: Any) -> list[Any]:
        raise NotImplementedError

    def _fetch_upto(self, after: Any, last: Any) -> list[Any]:
        raise NotImplementedError

    def _count_null(self) -> int:
        raise NotImplementedError

    def _cursor_nth(self, after: Any, offset: int) -> Any:
        """The cursor value ``offset`` places (from 0) after ``after`` in cursor order; None if none."""
        raise NotImplementedError

    def _cursor_max(self, after: Any) -> Any:
        """The largest cursor value > ``after`` (any, if None); None if none."""
        raise NotImplementedError

    # ---- helpers ----
    def _cursor_of(self, row: Any) -> Any:
        if isinstance(row, BadRow):
            return row.cursor
        return row[self.cursor_index]

    def _batch(self, rows: list[Any]) -> RowBatch | None:
        if not rows:
            return None
        first, last = self._cursor_of(rows[0]), self._cursor_of(rows[-1])
        if not self._had_bad:
            return RowBatch(rows, first, last)
        self._had_bad = False
        good = [r for r in rows if not isinstance(r, BadRow)]
        bad = [r for r in rows if isinstance(r, BadRow)]
        return RowBatch(good, first, last, bad)


class SqlTextTable(TableSource):
    """A table whose cursor queries are SQL text the subclass prepares (``_sql_nth``, ``_sql_nth_after``,
    ``_sql_max``, ``_sql_max_after``) and whose one-value answers come from :meth:`_one`: SQLite's
    reader and PostgreSQL's (``sources/postgres.py``)."""

    _sql_nth: str
    _sql_nth_after: str
    _sql_max: str
    _sql_max_after: str
    _sql_count: str
    _sql_count_after: str

    def _cursor_nth(self, after: Any, offset: int) -> Any:
        if after is None:
            return self._one(self._sql_nth, (offset,))
        return self._one(self._sql_nth_after, (after, offset))

    def _cursor_max(self, after: Any) -> Any:
        return self._one(self._sql_max, ()) if after is None else self._one(self._sql_max_after, (after,))

    def count_after(self, after: Any) -> int | None:
        n = self._one(self._sql_count, ()) if after is None else self._one(self._sql_count_after, (after,))
        return int(n or 0)

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        """The first value of the first row of ``sql``'s answer, or None."""
        raise NotImplementedError


class _SqliteTable(SqlTextTable):
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
        info = self._startup(f"PRAGMA table_info({_quote(table)})", ())
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
        columns = infer_untyped(columns, _quote(table), _quote, lambda sql: self._startup(sql, ()))
        super().__init__(path, table, columns, _pick_cursor(path, table, columns, cursor_column))
        cols = ", ".join(_quote(c.name) for c in columns)
        c = _quote(self.cursor.name)
        base = f"SELECT {cols} FROM {_quote(table)}"
        self._sql_first = f"{base} ORDER BY {c} LIMIT ?"
        self._sql_after = f"{base} WHERE {c} > ? ORDER BY {c} LIMIT ?"
        self._sql_range = f"{base} WHERE {c} >= ? AND {c} <= ? ORDER BY {c}"
        self._sql_equal = f"{base} WHERE {c} = ?"
        self._sql_upto = f"{base} WHERE {c} <= ? ORDER BY {c}"
        self._sql_between = f"{base} WHERE {c} > ? AND {c} <= ? ORDER BY {c}"
        self._sql_nulls = f"SELECT COUNT(*) FROM {_quote(table)} WHERE {c} IS NULL"
        self._sql_nth = f"SELECT {c} FROM {_quote(table)} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1 OFFSET ?"
        self._sql_nth_after = f"SELECT {c} FROM {_quote(table)} WHERE {c} > ? ORDER BY {c} LIMIT 1 OFFSET ?"
        self._sql_max = f"SELECT MAX({c}) FROM {_quote(table)}"
        self._sql_max_after = f"SELECT MAX({c}) FROM {_quote(table)} WHERE {c} > ?"
        self._sql_count = f"SELECT COUNT({c}) FROM {_quote(table)}"
        self._sql_count_after = f"SELECT COUNT(*) FROM {_quote(table)} WHERE {c} > ?"
        # with text_factory=bytes, TEXT values of every non-BLOB column come back as bytes
        self._text = {i for i, col in enumerate(columns) if not pa.types.is_binary(col.arrow_type)}
        self._arrow: ArrowBatchReader | None = None
        if ArrowBatchReader.supported([col.arrow_type for col in columns]):
            self._arrow = ArrowBatchReader(path, table, self.schema, [col.declared_type for col in columns],
                                          self.cursor_index, _quote, self._conn_lock)

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


class _SqlAlchemyTable(TableSource):
    def __init__(self, url: str, table: str, cursor_column: str | None) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise UsageError(f"{redact_url(url)}: database URLs need SQLAlchemy; pip install 's3pump[sql]' "
                             "(SQLite file paths work without it)") from None
        self._sa = sa
        try:
            self.engine = sa.create_engine(url)
            meta = sa.MetaData()
            self.t = sa.Table(table, meta, autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            raise UsageError(f"{redact_url(url)}: no table named {table!r}") from None
        except (sa.exc.SQLAlchemyError, ImportError) as e:
            raise SourceUnreadableError(f"{redact_url(url)}: cannot open database ({type(e).__name__}: "
                                        f"{str(e).splitlines()[0]})") from None
        pk_names = [c.name for c in self.t.primary_key.columns]
        declared = {c.name: "" if isinstance(c.type, sa.types.NullType) else str(c.type) for c in self.t.columns}
        columns = [
            Column(c.name, declared[c.name], arrow_type_for(declared[c.name]),
                   bool(c.nullable) and not c.primary_key, pk_names.index(c.name) + 1 if c.name in pk_names else 0)
            for c in self.t.columns
        ]
        self.url, self.table = redact_url(url), table  # (for _execute's messages before TableSource's init)
        self.conn = self.engine.connect()
        try:
            if self.engine.dialect.name == "sqlite" and any(is_untyped(c.declared_type) for c in columns):
                # computed and untyped columns: typed by their values (sources/sqlite_types.py)
                prep = self.engine.dialect.identifier_preparer
                columns = infer_untyped(columns, prep.quote(self.t.name), prep.quote,
                                        lambda sql: self._execute(sa.text(sql)))
            cursor = _pick_cursor(self.url, table, columns, cursor_column)
        except Exception:
            self.close()
            raise
        super().__init__(self.url, table, columns, cursor)
        # the driver's values as they are, converted by the export's exact rules (export/rows.py), never
        # by SQLAlchemy's result processors: its Boolean makes any text true (bool('false')), its SQLite
        # DATETIME and NUMERIC raise a traceback on an integer or a text
        self._raw = [sa.type_coerce(c, sa.types.NullType()).label(c.name) for c in self.t.columns]
        self._cursor_raw = sa.type_coerce(self.t.c[self.cursor.name], sa.types.NullType())  # raw bounds too

    def _fetch(self, low: Any, high: Any, limit: int | None, inclusive: bool = False) -> list[Any]:
        c = self._cursor_raw
        q = self._sa.select(*self._raw).order_by(c)
        if inclusive:
            q = q.where(c >= low, c <= high)
        elif low is not None:
            q = q.where(c > low)
        if limit is not None:
            q = q.limit(limit)
        return self._execute(q)

    def _fetch_equal(self, value: Any) -> list[Any]:
        return self._execute(self._sa.select(*self._raw).where(self._cursor_raw == value))

    def _fetch_upto(self, after: Any, last: Any) -> list[Any]:
        c = self._cursor_raw
        q = self._sa.select(*self._raw).where(c <= last).order_by(c)
        if after is not None:
            q = q.where(c > after)
        return self._execute(q)

    def _count_null(self) -> int:
        sa = self._sa
        rows = self._execute(sa.select(sa.func.count()).select_from(self.t)
                             .where(self._cursor_raw.is_(None)))
        return int(rows[0][0])

    def _cursor_nth(self, after: Any, offset: int) -> Any:
        c = self._cursor_raw
        q = self._sa.select(c).where(c.is_not(None) if after is None else c > after).order_by(c)
        rows = self._execute(q.offset(offset).limit(1))
        return rows[0][0] if rows else None

    def count_after(self, after: Any) -> int | None:
        c = self._cursor_raw
        q = self._sa.select(self._sa.func.count()).select_from(self.t).where(c.is_not(None) if after is None
                                                                              else c > after)
        return int(self._execute(q)[0][0])

    def _cursor_max(self, after: Any) -> Any:
        c = self._cursor_raw
        q = self._sa.select(self._sa.func.max(c))
        rows = self._execute(q if after is None else q.where(c > after))
        return rows[0][0] if rows else None

    def _execute(self, q: Any) -> list[Any]:
        try:
            result = self.conn.execute(q).fetchall()
            self.conn.commit()  # end the read transaction, so follow mode sees new rows
        except self._sa.exc.SQLAlchemyError as e:
            raise SourceUnreadableError(f"{self.url}: reading {self.table} failed "
                                        f"({str(e).splitlines()[0]})") from None
        return [tuple(r) for r in result]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        self.engine.dispose()


def find_column(columns: Sequence[Column], name: str) -> Column | None:
    """The column called ``name``; else the only one whose name matches it ignoring case (as SQLite
    matches names), so ``invoicedate`` finds ``InvoiceDate``; else None."""
    for c in columns:
        if c.name == name:
            return c
    folded = [c for c in columns if c.name.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _pick_cursor(where: str, table: str, columns: Sequence[Column], name: str | None) -> Column:
    if name is not None:
        if (found := find_column(columns, name)) is not None:
            return found
        raise UsageError(f"{where}: table {table} has no column {name!r} for --cursor-column")
    pks = [c for c in columns if c.pk]
    if len(pks) == 1 and pks[0].arrow_type == pa.int64():
        return pks[0]
    raise UsageError(f"{where}: table {table} has no integer primary key; pass --cursor-column with a "
                     "unique, increasing column")


def is_password_parameter(name: str) -> bool:
    """Whether a database URL's query parameter ``name`` holds a password (``password``, ``passwd``,
    ``sslpassword``, ``pwd``...)."""
    name = name.lower()
    return "pass" in name or name == "pwd"


def redact_url(url: str) -> str:
    """A database URL without its passwords (the user part's and the query's), for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        if "@" in rest:
            creds, _, host = rest.rpartition("@")
            rest = f"{creds.split(':', 1)[0]}:***@{host}"
        return re.sub(r"([?&][^=&]*(?:pass|pwd)[^=&]*=)[^&]*", r"\1***", f"{scheme}://{rest}", flags=re.I)
    secret = [k for k in parsed.query if is_password_parameter(k)]
    if secret:
        parsed = parsed.update_query_dict({k: "***" for k in secret})
    return parsed.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")


def open_sql_table(db: str, table: str, cursor_column: str | None = None, *, lock_timeout_s: float | None = 300.0,
                   stop: threading.Event | None = None) -> TableSource:
    """Open ``table`` of ``db``: a SQLite file path or ``sqlite:///path``, or any other SQLAlchemy URL
    (``sources/readers.py``'s ``open_table`` sends ``postgresql://`` to ADBC's reader instead).

    ``lock_timeout_s``: how long a SQLite read waits for another writer's lock (None: until
    ``stop`` is set, then the read returns no rows).

    Raises:
        SourceNotFoundError: the SQLite file does not exist.
        UsageError: no such table or column, no usable cursor, or SQLAlchemy missing for a URL.
        SourceUnreadableError: the database cannot be opened.
    """
    if db.startswith("sqlite:///"):
        return _SqliteTable(db[len("sqlite:///"):], table, cursor_column, lock_timeout_s, stop)
    if "://" in db:
        return _SqlAlchemyTable(db, table, cursor_column)
    return _SqliteTable(db, table, cursor_column, lock_timeout_s, stop)


# cursor values as JSON (for the checkpoint and dead-letter entries)
def encode_cursor(value: Any) -> Any:
    """A JSON-safe form of a cursor value (int, float, str stay; datetimes and dates get a tag)."""
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if value is None or isinstance(value, int | float | str):
        return value
    raise SourceError(f"cursor value {value!r} of type {type(value).__name__} cannot be checkpointed")


def decode_cursor(value: Any) -> Any:
    """The inverse of :func:`encode_cursor`."""
    if isinstance(value, dict):
        if "datetime" in value:
            return dt.datetime.fromisoformat(value["datetime"])
        if "date" in value:
            return dt.date.fromisoformat(value["date"])
        if "hex" in value:
            return bytes.fromhex(value["hex"])
    return value
