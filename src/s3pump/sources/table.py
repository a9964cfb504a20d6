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
* Any SQLAlchemy URL (``postgresql://…``, ``mysql+pymysql://…``), with the ``sql`` extra
  (``pip install 's3pump[sql]'``).

Declared column types map to Arrow types by SQLite's affinity rules (sqlite.org,
"Datatypes In SQLite", 3.1), after the names BOOL, DATETIME/TIMESTAMP and DATE.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import SourceError, SourceNotFoundError, SourceUnreadableError, UsageError

__all__ = ["BadRow", "Column", "RowBatch", "TableSource", "arrow_type_for", "open_table"]


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

    rows: list[tuple[Any, ...]]
    first: Any
    last: Any
    bad: list[BadRow] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.rows) + len(self.bad)


def arrow_type_for(declared: str) -> pa.DataType:
    """The Arrow type of a declared SQL column type (SQLite affinity rules, plus dates and booleans)."""
    t = (declared or "").upper()
    if "BOOL" in t:
        return pa.bool_()
    if "DATETIME" in t or "TIMESTAMP" in t:
        return pa.timestamp("us")
    if t.startswith("DATE"):
        return pa.date32()
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
    """Reads one table in cursor order. Use :func:`open_table` to get one; close it when done."""

    def __init__(self, table: str, columns: list[Column], cursor: Column) -> None:
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

    def read_range(self, first: Any, last: Any) -> RowBatch | None:
        """All rows with ``first <= cursor <= last`` (for replaying a dead-letter entry)."""
        return self._batch(self._fetch(first, last, None, inclusive=True))

    def close(self) -> None:  # pragma: no cover - overridden
        return None

    # ---- implemented by the readers ----
    def _fetch(self, low: Any, high: Any, limit: int | None, inclusive: bool = False) -> list[Any]:
        raise NotImplementedError

    def _fetch_equal(self, value: Any) -> list[Any]:
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


class _SqliteTable(TableSource):
    def __init__(self, path: str, table: str, cursor_column: str | None) -> None:
        if not os.path.exists(path):
            raise SourceNotFoundError(f"{path}: no such SQLite file")
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            info = self.conn.execute(f"PRAGMA table_info({_quote(table)})").fetchall()
        except sqlite3.Error as e:
            raise SourceUnreadableError(f"{path}: cannot read SQLite database ({e})") from None
        if not info:
            raise UsageError(f"{path}: no table named {table!r}")
        columns = [Column(name, decl or "", arrow_type_for(decl or ""), not notnull and not pk, pk)
                   for _cid, name, decl, notnull, _dflt, pk in info]
        super().__init__(table, columns, _pick_cursor(path, table, columns, cursor_column))
        self.path = path
        cols = ", ".join(_quote(c.name) for c in columns)
        c = _quote(self.cursor.name)
        base = f"SELECT {cols} FROM {_quote(table)}"
        self._sql_first = f"{base} ORDER BY {c} LIMIT ?"
        self._sql_after = f"{base} WHERE {c} > ? ORDER BY {c} LIMIT ?"
        self._sql_range = f"{base} WHERE {c} >= ? AND {c} <= ? ORDER BY {c}"
        self._sql_equal = f"{base} WHERE {c} = ?"
        # with text_factory=bytes, TEXT values of every non-BLOB column come back as bytes
        self._text = {i for i, col in enumerate(columns) if not pa.types.is_binary(col.arrow_type)}

    def _sql(self, low: Any, high: Any, limit: int | None, inclusive: bool) -> tuple[str, tuple[Any, ...]]:
        if inclusive:
            return self._sql_range, (low, high)
        if low is None:
            return self._sql_first, (limit,)
        return self._sql_after, (low, limit)

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            if "decode" not in str(e).lower():
                raise SourceUnreadableError(f"{self.path}: reading {self.table} failed ({e})") from None
        return self._run_bytes(sql, params)

    def _run_bytes(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Re-read as bytes and decode text per value: rows with invalid UTF-8 become BadRows."""
        self.conn.text_factory = bytes
        try:
            raw = self.conn.execute(sql, params).fetchall()
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

    def close(self) -> None:
        self.conn.close()


class _SqlAlchemyTable(TableSource):
    def __init__(self, url: str, table: str, cursor_column: str | None) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise UsageError(f"{_redact(url)}: database URLs need SQLAlchemy; pip install 's3pump[sql]' "
                             "(SQLite file paths work without it)") from None
        self._sa = sa
        try:
            self.engine = sa.create_engine(url)
            meta = sa.MetaData()
            self.t = sa.Table(table, meta, autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            raise UsageError(f"{_redact(url)}: no table named {table!r}") from None
        except (sa.exc.SQLAlchemyError, ImportError) as e:
            raise SourceUnreadableError(f"{_redact(url)}: cannot open database ({type(e).__name__}: "
                                        f"{str(e).splitlines()[0]})") from None
        pk_names = [c.name for c in self.t.primary_key.columns]
        columns = [
            Column(c.name, str(c.type), arrow_type_for(str(c.type)), bool(c.nullable) and not c.primary_key,
                   pk_names.index(c.name) + 1 if c.name in pk_names else 0)
            for c in self.t.columns
        ]
        super().__init__(table, columns, _pick_cursor(_redact(url), table, columns, cursor_column))
        self.url = _redact(url)
        self.conn = self.engine.connect()

    def _fetch(self, low: Any, high: Any, limit: int | None, inclusive: bool = False) -> list[Any]:
        c = self.t.c[self.cursor.name]
        q = self._sa.select(self.t).order_by(c)
        if inclusive:
            q = q.where(c >= low, c <= high)
        elif low is not None:
            q = q.where(c > low)
        if limit is not None:
            q = q.limit(limit)
        return self._execute(q)

    def _fetch_equal(self, value: Any) -> list[Any]:
        return self._execute(self._sa.select(self.t).where(self.t.c[self.cursor.name] == value))

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


def _pick_cursor(where: str, table: str, columns: Sequence[Column], name: str | None) -> Column:
    if name is not None:
        for c in columns:
            if c.name == name:
                return c
        raise UsageError(f"{where}: table {table} has no column {name!r} for --cursor-column")
    pks = [c for c in columns if c.pk]
    if len(pks) == 1 and pks[0].arrow_type == pa.int64():
        return pks[0]
    raise UsageError(f"{where}: table {table} has no integer primary key; pass --cursor-column with a "
                     "unique, increasing column")


def _redact(url: str) -> str:
    """A database URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def open_table(db: str, table: str, cursor_column: str | None = None) -> TableSource:
    """Open ``table`` of ``db`` (a SQLite file path, ``sqlite:///path``, or any SQLAlchemy URL).

    Raises:
        SourceNotFoundError: the SQLite file does not exist.
        UsageError: no such table or column, no usable cursor, or SQLAlchemy missing for a URL.
        SourceUnreadableError: the database cannot be opened.
    """
    if db.startswith("sqlite:///"):
        return _SqliteTable(db[len("sqlite:///"):], table, cursor_column)
    if "://" in db:
        return _SqlAlchemyTable(db, table, cursor_column)
    return _SqliteTable(db, table, cursor_column)


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
