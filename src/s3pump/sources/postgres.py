"""A PostgreSQL table → batches straight into Arrow, through ADBC's PostgreSQL driver (issue 25).

``postgresql://`` and ``postgres://`` URLs come here (the ``postgres`` extra:
``adbc-driver-postgresql``); the driver reads each query by binary COPY into Arrow record batches,
with no Python object per row. Batches, cuts and keys are those of the SQLite reader
(:mod:`.table`): ``WHERE C > :after ORDER BY C LIMIT :n``, and a full batch that ends inside a run
of equal cursor values is read again as the range ``after < C <= last`` so the run stays whole.

Types come from the catalog (:mod:`.pg_types`, which also says what each becomes). A row holding
a value no export format holds exactly (``infinity``, a BC date, ``NaN``...) is a :class:`BadRow`
with its reason and the row as JSON (``row_to_json``), computed by the server in the same
statement; the rest of its batch is stored.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SourceUnreadableError, UsageError
from .pg_types import PgColumn, as_cursor, bad_row_check, convert_column, pg_column
from .sqlite_arrow import ArrowRows
from .table import BadRow, Column, RowBatch, SqlTextTable, find_column

__all__ = ["PostgresTable", "is_postgres_url", "libpq_url"]

_BAD = "s3pump_bad"

_CATALOG = """
SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text, t.typtype::text,
       a.atttypmod, et.typname::text, a.attnotnull,
       coalesce(array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1, 0)::int4
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_FIND = """
SELECT c.oid::int8, n.nspname::text, c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND {where}
ORDER BY pg_table_is_visible(c.oid) DESC, n.nspname
"""


def is_postgres_url(db: str) -> bool:
    """``postgresql://…``, ``postgres://…``, or a SQLAlchemy URL naming a driver (``postgresql+psycopg://``,
    ``postgresql+psycopg2://``…): every one is read through ADBC (the SQLAlchemy fallback types columns
    by their declared names and cannot load an infinite or BC time; docs/export.md)."""
    scheme = db.partition("://")[0].lower()
    return bool(db.partition("://")[1]) and scheme.partition("+")[0] in ("postgresql", "postgres")


def libpq_url(db: str) -> str:
    """``db`` as libpq takes it: a driver named after ``+`` (SQLAlchemy's form) removed
    (``postgresql+psycopg://u@h/db`` → ``postgresql://u@h/db``; PostgreSQL docs, "Connection URIs")."""
    scheme, sep, rest = db.partition("://")
    return f"{scheme.partition('+')[0]}{sep}{rest}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class PostgresTable(SqlTextTable):
    """One table of a PostgreSQL database, read through ADBC (one statement at a time)."""

    reads_in_any_thread = True  # every statement holds _lock

    def __init__(self, url: str, table: str, cursor_column: str | None) -> None:
        where = _redact(url)
        try:
            import adbc_driver_postgresql.dbapi as adbc
        except ImportError:
            raise UsageError(f"{where}: PostgreSQL needs its driver; pip install 's3pump[postgres]'") from None
        self._adbc = adbc
        self._lock = threading.Lock()
        self.where = where
        try:
            self.conn = adbc.connect(libpq_url(url), autocommit=True)
        except Exception as e:
            raise SourceUnreadableError(f"{where}: cannot connect to PostgreSQL ({_one_line(e)})") from None
        try:
            self._open(table, cursor_column)
        except BaseException:
            self.conn.close()
            raise

    def _open(self, table: str, cursor_column: str | None) -> None:
        schema_name, _, name = table.rpartition(".")
        found = self._rows(_FIND.format(where="c.relname = $1" + (" AND n.nspname = $2" if schema_name else
                                                                      " AND pg_table_is_visible(c.oid)")),
                           (name, schema_name) if schema_name else (name,))
        if not found:  # as SQLite does: a name in another case finds its table if only one matches
            found = self._rows(_FIND.format(where="lower(c.relname) = lower($1)" + (
                " AND lower(n.nspname) = lower($2)" if schema_name else "")),
                (name, schema_name) if schema_name else (name,))
            if len(found) != 1:
                raise UsageError(f"{self.where}: no table named {table!r}")
        oid, nsp, rel = found[0]
        self.relation = f"{_quote(nsp)}.{_quote(rel)}"
        self.pg: list[PgColumn] = []
        columns: list[Column] = []
        for att, declared, typname, typtype, typmod, elem, notnull, pk in self._rows(_CATALOG, (oid,)):
            c = pg_column(att, declared, typname, typtype, typmod, elem, _quote(att))
            self.pg.append(c)
            columns.append(Column(att, declared, c.arrow_type, not notnull, pk))
        cursor = _pick_cursor(self.where, rel, columns, cursor_column)
        at = columns.index(cursor)
        self.pg[at] = as_cursor(self.pg[at])
        super().__init__(self.where, rel, columns, cursor)
        q = _quote(cursor.name)
        # one column, NULL for a good row: a bad row's JSON (row_to_json escapes every newline), "\n", its reason
        check = bad_row_check(self.pg, row="row_to_json(s3pump_t)::text")
        extra = f", {check} AS {_BAD}" if check is not None else ""
        self._checked = check is not None
        select = f"SELECT {', '.join(c.expr for c in self.pg)}{extra} FROM {self.relation} AS s3pump_t"
        # statements as (SQL pieces, to join around their values: ``_statement``)
        self._sql_first = (f"{select} WHERE {q} IS NOT NULL ORDER BY {q} LIMIT ", "")
        self._sql_after = (f"{select} WHERE {q} > ", f" ORDER BY {q} LIMIT ", "")
        self._sql_range = (f"{select} WHERE {q} >= ", f" AND {q} <= ", f" ORDER BY {q}")
        self._sql_upto = (f"{select} WHERE {q} <= ", f" ORDER BY {q}")
        self._sql_between = (f"{select} WHERE {q} > ", f" AND {q} <= ", f" ORDER BY {q}")
        self._sql_ties = (f"SELECT count(*) FROM {self.relation} WHERE {q} = ", "")
        self._sql_nulls = f"SELECT count(*) FROM {self.relation} WHERE {q} IS NULL"
        # (a few statements per export: as SqlTextTable declares them, with $n parameters)
        self._sql_nth = f"SELECT {q} FROM {self.relation} WHERE {q} IS NOT NULL ORDER BY {q} OFFSET $1 LIMIT 1"
        self._sql_nth_after = f"SELECT {q} FROM {self.relation} WHERE {q} > $1 ORDER BY {q} OFFSET $2 LIMIT 1"
        self._sql_max = f"SELECT max({q}) FROM {self.relation}"
        self._sql_max_after = f"SELECT max({q}) FROM {self.relation} WHERE {q} > $1"
        self._sql_count = f"SELECT count({q}) FROM {self.relation}"
        self._sql_count_after = f"SELECT count(*) FROM {self.relation} WHERE {q} > $1"

    # ---- statements
    def _arrow(self, sql: str | tuple[str, ...], params: tuple[Any, ...]) -> pa.Table:
        """One statement's whole answer; ``sql`` as pieces gets ``params`` through :func:`_statement`."""
        if isinstance(sql, tuple):
            sql, params = _statement(sql, params)
        try:
            with self._lock, self.conn.cursor() as cur:
                cur.execute(sql, params or None)
                return cur.fetch_arrow_table()
        except Exception as e:
            raise SourceUnreadableError(f"{self.where}: reading {self.table} failed ({_one_line(e)})") from None

    def _rows(self, sql: str | tuple[str, ...], params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        t = self._arrow(sql, params)
        return list(zip(*(c.to_pylist() for c in t.columns), strict=True))

    def _one(self, sql: str | tuple[str, ...], params: tuple[Any, ...]) -> Any:
        rows = self._rows(sql, params)
        return rows[0][0] if rows else None

    # ---- batches straight into Arrow
    def _batch_of(self, raw: pa.Table) -> RowBatch | None:
        """The rows of ``raw`` (one statement's answer) as a batch: its good rows converted, its bad ones
        (a reason from the server) as BadRows."""
        if raw.num_rows == 0:
            return None
        cursor = raw.column(self.cursor_index)
        first, last = cursor[0].as_py(), cursor[-1].as_py()
        bad: list[BadRow] = []
        if self._checked:
            found = raw.column(_BAD)
            if found.null_count < raw.num_rows:
                for i in pc.indices_nonzero(pc.is_valid(found)).to_pylist():
                    row, _, reason = found[i].as_py().partition("\n")
                    bad.append(BadRow(_cursor_value(cursor, i), reason, row))
                raw = raw.filter(pc.is_null(found))
            raw = raw.drop_columns([_BAD])
        arrays = [convert_column(col.combine_chunks(), c) for col, c in zip(raw.columns, self.pg, strict=True)]
        table = pa.Table.from_arrays(arrays, names=[c.name for c in self.pg])
        return RowBatch(ArrowRows(table), first, last, bad, table=table)

    def read_after(self, after: Any, limit: int) -> RowBatch | None:
        sql, params = (self._sql_first, (limit,)) if after is None else (self._sql_after, (after, limit))
        raw = self._arrow(sql, params)
        if raw.num_rows == limit and limit > 0:  # a run of equal cursor values may go on: keep it whole
            last = raw.column(self.cursor_index)[-1].as_py()
            if self._one(self._sql_ties, (last,)) > 1:
                return self.read_cut(after, last)
        return self._batch_of(raw)

    def read_arrow_after(self, after: Any, limit: int, convert: Callable[[pa.Array, pa.DataType], pa.Array]
                         ) -> tuple[RowBatch | None, pa.Table | None] | None:
        batch = self.read_after(after, limit)
        return (batch, batch.table) if batch is not None else (None, None)

    def read_range(self, first: Any, last: Any) -> RowBatch | None:
        return self._batch_of(self._arrow(self._sql_range, (first, last)))

    def read_cut(self, after: Any, last: Any) -> RowBatch | None:
        if after is None:
            return self._batch_of(self._arrow(self._sql_upto, (last,)))
        return self._batch_of(self._arrow(self._sql_between, (after, last)))

    # ---- the cursor column alone
    def _count_null(self) -> int:
        return int(self._one(self._sql_nulls, ()) or 0)

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):
            self.conn.close()


def _statement(pieces: tuple[str, ...], values: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """``pieces`` joined around ``values``: an integer as its literal, anything else as a ``$n``
    parameter. ADBC reads a statement without parameters by binary COPY, and one with parameters
    through a libpq result (``PQexecParams``), which costs 20-25 % more client CPU per row
    (docs/benchmarks.md): an integer cursor (the usual one) and every LIMIT/OFFSET go inline."""
    sql, params = [pieces[0]], []
    for value, piece in zip(values, pieces[1:], strict=True):
        if type(value) is int:  # (not bool: True would read as 1)
            sql.append(str(value))
        else:
            params.append(value)
            sql.append(f"${len(params)}")
        sql.append(piece)
    return "".join(sql), tuple(params)


def _cursor_value(cursor: pa.ChunkedArray, i: int) -> Any:
    try:
        return cursor[i].as_py()
    except (OverflowError, ValueError):  # an infinite or BC timestamp as the cursor: its text
        return str(cursor[i])


def _redact(url: str) -> str:
    """``url`` without its passwords (the user part's and the query's), for messages: what
    :func:`.table.redact_url` gives, without importing SQLAlchemy (0.3 s of a run's start)."""
    scheme, sep, rest = url.partition("://")
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    netloc, tail = rest[:end], rest[end:]
    creds, at, host = netloc.rpartition("@")
    if at and ":" in creds:
        netloc = f"{creds.split(':', 1)[0]}:***@{host}"
    tail = re.sub(r"([?&][^=&#]*(?:pass|pwd)[^=&#]*=)[^&#]*", r"\1***", tail, flags=re.I)
    return f"{scheme}{sep}{netloc}{tail}"


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def _pick_cursor(where: str, table: str, columns: list[Column], name: str | None) -> Column:
    if name is not None:
        if (found := find_column(columns, name)) is not None:
            return found
        raise UsageError(f"{where}: table {table} has no column {name!r} for --cursor-column")
    pks = [c for c in columns if c.pk]
    if len(pks) == 1 and pa.types.is_integer(pks[0].arrow_type):
        return pks[0]
    raise UsageError(f"{where}: table {table} has no integer primary key; pass --cursor-column with a "
                     "unique, increasing column")
