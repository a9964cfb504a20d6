"""PostgreSQL column types → what to select and the Arrow type it becomes (issue 25).

Types come from the catalog (``pg_attribute``/``pg_type``), never from SQLite's affinity rules.
ADBC's PostgreSQL driver reads a query by binary COPY into Arrow; for each type this module says
whether its Arrow form is taken as is, or a SQL cast gives the exact form:

======================  ============================================  ===============================
PostgreSQL              selected as                                   Arrow
======================  ============================================  ===============================
smallint/int/bigint     the column                                    int16 / int32 / int64
boolean                 the column                                    bool
real / double           the column                                    float32 / float64
numeric(p,s), p <= 18   ``(col * 10^s)::int8`` (exact: the unscaled   decimal128(p,s)
                        value), NULL for NaN
numeric(p,s), p > 18    the column (ADBC: the decimal text)           decimal128(p,s) (decimal256 p>38)
numeric (bare), money   ``col`` / ``col::numeric`` (decimal text)     decimal128(38,s) for a batch whose
                                                                      values all fit, s its largest
                                                                      scale; else the decimal text
text/varchar/char/enum  the column (enum: its output form)            string
bytea                   the column                                    binary
date                    the column                                    date32
timestamp               the column                                    timestamp[us]
timestamptz             the column                                    timestamp[us, tz=UTC]
time                    the column                                    time64[us]
interval                the column                                    month_day_nano_interval
uuid                    its output form (canonical, lower case)       string
json / jsonb            the column (ADBC's ``arrow.json``: the text)  string (the JSON text)
int/bigint/smallint/    the column                                    list<int…/float…/bool/string>
real/double/bool/text
arrays (1-dimensional)
any other type          ``format('%s', col)`` (its output function:   string
                        the text psql and psycopg show)
(inet, cidr, timetz,
xml, point, bit, other
arrays, domains...)
======================  ============================================  ===============================

Values no export format can hold exactly (:func:`bad_row_check`) make their row a dead-letter
row, with its reason and the row as JSON: ``±infinity`` and values before year 1 (BC) or after
year 9999 in date/timestamp/timestamptz columns, infinite intervals, ``NaN``/``±Infinity`` in
numeric columns, arrays of more than one dimension. The rest of the batch is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["BARE_NUMERIC", "PgColumn", "as_cursor", "bad_row_check", "convert_column", "pg_column"]

#: The declared Arrow type of a bare ``numeric`` (and ``money``) column: its decimal text; a batch
#: whose values all fit ``decimal128(38, s)`` is stored as that (:func:`convert_column`).
BARE_NUMERIC = pa.string()

_NATIVE = {
    "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(), "bool": pa.bool_(),
    "float4": pa.float32(), "float8": pa.float64(), "text": pa.string(), "varchar": pa.string(),
    "bpchar": pa.string(), "bytea": pa.binary(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", "UTC"), "time": pa.time64("us"),
    "interval": pa.month_day_nano_interval(), "json": pa.string(), "jsonb": pa.string(),
}
_LIST_ELEMENTS = ("int2", "int4", "int8", "float4", "float8", "bool", "text", "varchar", "bpchar")
_TIMES = ("date", "timestamp", "timestamptz")


@dataclass(frozen=True, slots=True)
class PgColumn:
    """A column as the catalog declares it, and how it is read: ``expr`` selects it (a quoted name,
    perhaps with a cast), ``arrow_type`` is its declared Arrow type; ``kind`` says how the ADBC
    column is converted (``native``, ``decimal``, ``scaled_int``, ``bare_numeric``, ``json``, ``text``,
    ``list``); ``raw`` is the column itself where ``expr`` is a computation the dead-letter check
    must not see through (a NaN numeric is NULL in its ``scaled_int`` expression)."""

    name: str
    declared: str  # format_type(): "numeric(10,2)", "timestamp with time zone", "integer[]"
    typname: str  # pg_type.typname: "numeric", "timestamptz", "_int4"
    arrow_type: pa.DataType
    expr: str
    kind: str
    check: str | None  # a SQL condition true when the value can be stored (None: always)
    raw: str = ""  # the quoted column, when ``expr`` is not it (empty: ``expr``)

    @property
    def column(self) -> str:
        return self.raw or self.expr


def _numeric_typmod(typmod: int) -> tuple[int, int] | None:
    if typmod < 4:
        return None  # bare numeric
    t = typmod - 4
    precision, scale = (t >> 16) & 0xFFFF, t & 0xFFFF
    if scale > precision or scale >= 0x8000:  # a negative scale (PostgreSQL 15+): no Arrow decimal of it
        return None
    return precision, scale


def pg_column(name: str, declared: str, typname: str, typtype: str, typmod: int, elem: str | None,
              quoted: str) -> PgColumn:
    """How a column of catalog type ``typname`` (``typtype``, ``typmod``; ``elem`` the element type
    of an array) is selected and typed; ``quoted`` is its quoted name."""
    q = quoted
    if typname == "numeric":
        ps = _numeric_typmod(typmod)
        not_special = f"{q} NOT IN ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric)"
        if ps is not None:  # with a typmod: no infinities ("numeric field overflow"), NaN only
            not_special = f"{q} <> 'NaN'::numeric"  # (PostgreSQL's NaN equals NaN)
            p, s = ps
            typ = pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
            if p <= 18:  # the unscaled value as an int8: ADBC reads it 3-4 times faster than the text
                unscaled = f"CASE WHEN {not_special} THEN ({q} * 1{'0' * s})::int8 END"
                return PgColumn(name, declared, typname, typ, unscaled, "scaled_int", not_special, raw=q)
            return PgColumn(name, declared, typname, typ, q, "decimal", not_special)
        return PgColumn(name, declared, typname, BARE_NUMERIC, q, "bare_numeric", not_special)
    if typname == "money":
        return PgColumn(name, declared, typname, BARE_NUMERIC, f"{q}::numeric", "bare_numeric", None)
    if typname in ("json", "jsonb"):
        return PgColumn(name, declared, typname, pa.string(), q, "json", None)
    if typname in _NATIVE and typtype == "b":
        check = None
        if typname in _TIMES:
            low = "'0001-01-01 00:00:00+00'" if typname == "timestamptz" else "'0001-01-01'"
            high = "'10000-01-01 00:00:00+00'" if typname == "timestamptz" else "'10000-01-01'"
            check = f"({q} >= {low} AND {q} < {high})"  # false for ±infinity too
        elif typname == "interval":
            check = f"isfinite({q})"
        return PgColumn(name, declared, typname, _NATIVE[typname], q, "native", check)
    if elem is not None and elem in _LIST_ELEMENTS:
        return PgColumn(name, declared, typname, pa.list_(_NATIVE[elem]), q, "list",
                        f"coalesce(array_ndims({q}), 1) = 1")
    # the type's output function (what psql and psycopg show): an explicit ``::text`` cast may differ
    # (``'::1'::inet::text`` is ``::1/128``); format('%s', NULL) is '' so NULL is kept apart
    text = f"CASE WHEN {q} IS NOT NULL THEN format('%s', {q}) END"
    return PgColumn(name, declared, typname, pa.string(), text, "text", None)


def as_cursor(c: PgColumn) -> PgColumn:
    """``c`` read as itself when it is the cursor column: its values name batches and go back into
    ``WHERE`` clauses, so a ``scaled_int`` numeric is read as its decimal text instead."""
    if c.kind == "scaled_int":
        return replace(c, expr=c.raw, kind="decimal", raw="")
    return c


def bad_row_check(columns: Sequence[PgColumn], row: str | None = None) -> str | None:
    """A SQL expression: NULL for a row every column of which can be stored, else the reason (the
    first column that cannot, and its value as text); with ``row`` (an expression of text with no
    newline, e.g. ``row_to_json(t)::text``) ``row``, a newline, then the reason: one value per row,
    the check evaluated once."""
    before = f"{row} || E'\\n' || " if row is not None else ""
    whens = [f"WHEN {c.column} IS NOT NULL AND NOT {c.check} THEN "
             f"{before}'column {_sql_text(c.name)} ({_sql_text(c.declared)}): ' || {_reason(c)}"
             for c in columns if c.check is not None]
    return f"CASE {' '.join(whens)} END" if whens else None


def _reason(c: PgColumn) -> str:
    if c.kind == "list":
        return f"'an array of ' || array_ndims({c.column}) || ' dimensions has no Arrow list form'"
    what = ("no export format holds it exactly (infinity, NaN, or a date outside years 1-9999, "
            "e.g. BC)")
    return f"{c.column}::text || ': {what}'"


def _sql_text(s: str) -> str:
    return s.replace("'", "''")


def _storage(col: pa.Array) -> pa.Array:
    return col.storage if isinstance(col, pa.ExtensionArray) else col


def convert_column(col: pa.Array, c: PgColumn) -> pa.Array:
    """An ADBC column of ``c`` as its Arrow type (a bare numeric: ``decimal128(38, s)`` when every
    value fits, else its decimal text)."""
    if c.kind == "native":
        if pa.types.is_null(col.type):
            return pa.nulls(len(col), c.arrow_type)
        col = _storage(col)
        return col if col.type == c.arrow_type else col.cast(c.arrow_type)
    if c.kind == "scaled_int":  # int8 unscaled values: a decimal's 128-bit storage is just that
        if pa.types.is_null(col.type):
            return pa.nulls(len(col), c.arrow_type)
        wide = _storage(col).cast(pa.int64()).cast(pa.decimal128(19, 0))
        return pa.Array.from_buffers(c.arrow_type, len(wide), wide.buffers(), offset=wide.offset)
    if c.kind == "bare_numeric":
        text = _storage(col).cast(pa.string())
        return _narrowest_decimal(text)
    col = _storage(col)
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), c.arrow_type)
    return col if col.type == c.arrow_type else col.cast(c.arrow_type)


def _narrowest_decimal(text: pa.Array) -> pa.Array:
    """``decimal128(38, s)`` (``s`` the largest scale of the values) if every value fits; else ``text``."""
    if text.null_count == len(text):
        return text
    length = pc.utf8_length(text)
    dot = pc.find_substring(text, ".")
    scale = pc.if_else(pc.equal(dot, -1), 0, pc.subtract(pc.subtract(length, dot), 1))
    negative = pc.starts_with(text, "-").cast(pa.int32())
    whole = pc.subtract(pc.if_else(pc.equal(dot, -1), length, dot), negative)
    s = pc.max(scale).as_py()
    if s is None or s > 38 or pc.max(whole).as_py() + s > 38:
        return text
    return text.cast(pa.decimal128(38, s))
