"""Rows (tuples from the database) → an Arrow table of the table's declared schema.

The fast path converts whole columns in C (``pyarrow.array``). Only when a column fails
(SQLite is dynamically typed: a TEXT value can sit in an INTEGER column) are the rows tried
one by one, so a bad row becomes a dead-letter entry and its batch-mates still export.

Timestamps may arrive as ``datetime`` (SQLAlchemy), ISO 8601 text (SQLite's usual
``YYYY-MM-DD HH:MM:SS[.ffffff]``, with or without a zone offset; offsets are converted to
UTC) or integers (Unix seconds).

Decimals (``NUMERIC(p,s)``/``DECIMAL(p,s)`` columns, ``decimal128(p,s)``) are exact. SQLite
stores such values as INTEGER, REAL or TEXT; a REAL is taken as the shortest decimal that
round-trips it (``repr``: the double nearest to ``1.98`` gives ``1.98``), then set to scale
``s``; a REAL within 4 ulps of an ``s``-place decimal is that decimal (``0.1 + 0.2`` stored
in a ``NUMERIC(10,2)`` is ``0.30``: binary floating-point noise, not data). Any other value
that does not fit (more than ``s`` decimal places, more than ``p`` digits, text that is no
number) is a bad row (dead-letter queue), never rounded.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..gcpause import gc_paused
from ..sources.table import BadRow
from .exact import exact_array, is_exact_type
from .time_text import parse_iso_texts

__all__ = ["to_array", "to_array_from_arrow", "to_arrow"]

_MIN_MICROS = -62_135_596_800_000_000  #: 0001-01-01T00:00:00 in Unix microseconds
_MAX_MICROS = 253_402_300_799_999_999  #: 9999-12-31T23:59:59.999999
_MIN_DAYS, _MAX_DAYS = -719_162, 2_932_896  #: 0001-01-01 and 9999-12-31 in days since 1970-01-01
_CONVERT_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError,
                   TypeError, ValueError)


def to_array(values: Sequence[Any], typ: pa.DataType) -> pa.Array:
    """``values`` as an Arrow array of ``typ``; raises one of ``_CONVERT_ERRORS`` if impossible."""
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return _temporal(values, typ)
    if pa.types.is_decimal(typ):
        return pa.array([_decimal(v, typ.precision, typ.scale) for v in values], typ)
    if is_exact_type(typ):  # never a truncated float or a 2 made true (export/exact.py)
        return exact_array(values, typ)
    return pa.array(values, typ)


_DECIMAL_CONTEXT = decimal.Context(prec=100, traps=[decimal.InvalidOperation])


def _decimal(value: Any, precision: int, scale: int) -> decimal.Decimal | None:
    """``value`` as an exact Decimal with ``scale`` places; ValueError if that would change it."""
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a decimal")
        if isinstance(value, decimal.Decimal):
            exact = value
        elif isinstance(value, int):
            exact = decimal.Decimal(value)
        elif isinstance(value, float):
            exact = decimal.Decimal(repr(value))  # the shortest decimal that round-trips the double
        elif isinstance(value, str):
            exact = decimal.Decimal(value.strip())
        else:
            raise ValueError(f"{type(value).__name__} is not a decimal")
        if not exact.is_finite():
            raise decimal.InvalidOperation
        scaled = exact.quantize(decimal.Decimal(1).scaleb(-scale), context=_DECIMAL_CONTEXT)
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a finite decimal") from None
    if scaled != exact and not (isinstance(value, float) and abs(float(scaled) - value) <= 4 * math.ulp(value)):
        raise ValueError(f"{value!r} has more than {scale} decimal places")
    if len(scaled.as_tuple().digits) > precision:
        raise ValueError(f"{value!r} has more than {precision} digits")
    return scaled


def to_array_from_arrow(column: pa.Array, typ: pa.DataType) -> pa.Array:
    """A column read straight into Arrow (int64, float64 or string, as the ``sqlite3`` reader's
    values would infer) as an array of ``typ``, converted as :func:`to_array` converts those values;
    raises one of ``_CONVERT_ERRORS`` if impossible."""
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return _temporal_array(column, typ)
    if column.type == typ:
        return column
    return to_array(column.to_pylist(), typ)


def _temporal(values: Sequence[Any], typ: pa.DataType) -> pa.Array:
    """Timestamps and dates from datetime objects, ISO 8601 text (zone offsets → UTC) or Unix seconds."""
    return _temporal_array(pa.array(values), typ)  # one Python type per column, else ArrowInvalid


def _temporal_array(inferred: pa.Array, typ: pa.DataType) -> pa.Array:
    kind = inferred.type
    if pa.types.is_null(kind):
        return pa.nulls(len(inferred), typ)
    if pa.types.is_string(kind):
        if not pa.types.is_timestamp(typ):
            return _in_years_1_to_9999(inferred.cast(typ), inferred)
        stamps, bad = parse_iso_texts(inferred)  # naive = UTC, zoned converted to UTC (export/time_text.py)
        if bad:
            raise ValueError(next(iter(bad.values())))
        return _in_years_1_to_9999(stamps if stamps.type == typ else stamps.cast(typ), inferred)
    if pa.types.is_date(typ) and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        for v in inferred.drop_null().to_pylist():  # a date holds no time of day: never truncate one
            if v % 86400:
                raise ValueError(f"{v!r} Unix seconds is not midnight; a date cannot hold its time of day")
    if pa.types.is_integer(kind):  # Unix seconds
        stamps = pc.multiply_checked(inferred, 1_000_000).cast(pa.timestamp("us"))
    elif pa.types.is_floating(kind):  # Unix seconds with a fraction
        stamps = pc.round(pc.multiply_checked(inferred, 1_000_000.0)).cast(pa.int64()).cast(pa.timestamp("us"))
    else:
        stamps = inferred
    return _in_years_1_to_9999(stamps.cast(typ), inferred)


def _in_years_1_to_9999(converted: pa.Array, source: pa.Array) -> pa.Array:
    """``converted`` (timestamps or dates of the values ``source``), if every one lies in years 1 to 9999: what
    every export format holds exactly (ISO 8601's four-digit years, JSON Lines' text, the readers' datetimes; the
    PostgreSQL source dead-letters the rest too, ``sources/pg_types.py``).

    Raises:
        ValueError: the first value outside, named.
    """
    if pa.types.is_date(converted.type):
        ordinal, low, high = converted.cast(pa.date32()).cast(pa.int32()), _MIN_DAYS, _MAX_DAYS
    elif pa.types.is_timestamp(converted.type):
        ordinal = converted.cast(pa.timestamp("us", converted.type.tz)).cast(pa.int64())
        low, high = _MIN_MICROS, _MAX_MICROS
    else:
        return converted
    outside = pc.or_(pc.less(ordinal, low), pc.greater(ordinal, high))
    if pc.any(outside).as_py():
        value = source.filter(outside)[0].as_py()
        unit = " Unix seconds" if isinstance(value, int | float) else ""
        raise ValueError(f"{value!r}{unit} is outside years 1-9999, which no export format holds exactly")
    return converted


def to_arrow(
    rows: Sequence[tuple[Any, ...]], schema: pa.Schema, cursor_index: int
) -> tuple[pa.Table, list[int], list[BadRow]]:
    """Convert ``rows`` to a table of ``schema``.

    Returns:
        (table, positions, bad): ``positions[i]`` is the index in ``rows`` of table row ``i``;
        ``bad`` are the rows that could not be converted, with the column and error.
    """
    if not rows:
        return schema.empty_table(), [], []
    with gc_paused():  # the column tuples hold no cycles; a collection here would only walk them
        columns = list(zip(*rows, strict=True))
        try:
            arrays = [to_array(col, f.type) for col, f in zip(columns, schema, strict=True)]
            return pa.Table.from_arrays(arrays, schema=schema), list(range(len(rows))), []
        except _CONVERT_ERRORS:
            pass
    # slow path: find the rows that fail, convert the rest value by value if need be
    good: list[int] = []
    bad: list[BadRow] = []
    for i, row in enumerate(rows):
        for v, f in zip(row, schema, strict=True):
            try:
                to_array([v], f.type)
            except _CONVERT_ERRORS as e:
                reason = str(e).splitlines()[0] if isinstance(e, ValueError) and str(e) else type(e).__name__
                if reason.startswith("Failed to parse string"):  # Arrow's words for a text that is no time
                    reason = "not an ISO 8601 date or time"
                bad.append(BadRow(row[cursor_index], f"column {f.name}: value {v!r:.80} is not "
                                  f"{f.type} ({reason})", repr(row)))
                break
        else:
            good.append(i)
    arrays = []
    for j, f in enumerate(schema):
        col = [rows[i][j] for i in good]
        try:
            arrays.append(to_array(col, f.type))
        except _CONVERT_ERRORS:  # mixed representations that each convert alone
            arrays.append(pa.concat_arrays([to_array([v], f.type) for v in col]) if col else
                          pa.array([], f.type))
    return pa.Table.from_arrays(arrays, schema=schema), good, bad
