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

The readers: SQLite's in :mod:`.sqlite_table`, SQLAlchemy's in :mod:`.sqlalchemy_table`, PostgreSQL's in
:mod:`.postgres`; :func:`~.readers.open_table` picks one.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import SourceError, UsageError

__all__ = [
    "BadRow",
    "Column",
    "RowBatch",
    "SqlTextTable",
    "TableSource",
    "arrow_type_for",
    "find_column",
    "is_password_parameter",
    "pick_cursor",
    "quote_name",
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


def quote_name(name: str) -> str:
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


def find_column(columns: Sequence[Column], name: str) -> Column | None:
    """The column called ``name``; else the only one whose name matches it ignoring case (as SQLite
    matches names), so ``invoicedate`` finds ``InvoiceDate``; else None."""
    for c in columns:
        if c.name == name:
            return c
    folded = [c for c in columns if c.name.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def pick_cursor(where: str, table: str, columns: Sequence[Column], name: str | None) -> Column:
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
