"""An Arrow table → the text of JSON Lines, one object per row, built a column at a time.

:func:`encode_jsonl` writes exactly the bytes that :func:`encode_rows` (the row-by-row
reference: ``json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)``
over ``table.to_pylist()``) writes, about eight times faster: each column becomes an Arrow
string array of JSON values (mostly with Arrow compute, in C++ and without the GIL), and one
``binary_join_element_wise`` glues keys and values into lines. Values as JSON:

* integers as digits; floats as Python's ``repr`` (``2.0``, ``1e-05``, ``1e+16``); NaN and
  infinities are refused (``ValueError``), as ``allow_nan=False`` does;
* booleans ``true``/``false``; NULL ``null``; text as JSON strings, unescaped UTF-8 (only
  ``"``, ``\\`` and control characters escaped);
* timestamps (naive, microseconds) and dates as ISO 8601 (``isoformat()``:
  ``2025-01-01T00:00:37``, ``…T00:00:37.000120``, ``2025-01-01``), UTC timestamps with
  ``+00:00`` (``2025-01-01T00:00:37+00:00``); outside years 1-9999
  ``ValueError``, as Python's ``datetime`` has no such values;
* decimals as exact strings with the column's scale (``str(Decimal)``: ``"1.98"``, ``"2.00"``);
* bytes as base64 strings.

A table with any other column type (never produced by ``sources.table``'s schemas) goes
through :func:`encode_rows`. Errors: ``ValueError``/``TypeError`` for a value JSON cannot
hold; the export job then encodes the batch row by row and sends the failing rows to the
dead-letter queue.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
from json.encoder import encode_basestring
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["encode_jsonl", "encode_rows"]

_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'  # what a JSON string must escape (ensure_ascii=False)
_MAX_TEXT_BYTES = 1 << 30  # one join stays well under Arrow's 2 GiB per string array
# Python's datetime range, in microseconds and days since the Unix epoch
_MIN_US, _MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999
_MIN_DAY, _MAX_DAY = -719_162, 2_932_896


def _json_default(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, bytes):
        return base64.b64encode(v).decode("ascii")
    if isinstance(v, decimal.Decimal):
        return str(v)  # exact, with the column's scale: "1.98", "2.00"
    raise TypeError(f"{type(v).__name__} is not JSON serializable")


def encode_rows(table: pa.Table) -> bytes:
    """JSON Lines of ``table``, row by row through the standard library (any column type; slow)."""
    enc = json.JSONEncoder(ensure_ascii=False, default=_json_default, allow_nan=False, separators=(",", ":"))
    return "".join(enc.encode(r) + "\n" for r in table.to_pylist()).encode("utf-8")


def _supported(typ: pa.DataType) -> bool:
    return (pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)
            or pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ)
            or pa.types.is_large_binary(typ) or pa.types.is_decimal(typ) or pa.types.is_null(typ)
            or pa.types.is_date32(typ) or (pa.types.is_timestamp(typ) and typ.unit == "us" and typ.tz in (None, "UTC")))


def encode_jsonl(table: pa.Table) -> bytes:
    """JSON Lines of ``table``: byte for byte what :func:`encode_rows` gives, computed by column.

    Raises:
        ValueError: a NaN or infinite float, a date or timestamp outside years 1-9999.
    """
    names = table.column_names
    if (table.num_rows == 0 or len(set(names)) != len(names)
            or not all(_supported(f.type) for f in table.schema)):
        return encode_rows(table)
    return _encode(table)


def _encode(table: pa.Table) -> bytes:
    n = table.num_rows
    pieces: list[Any] = []  # constant text and value arrays, alternately
    text = ""  # constant text before the next value array
    for i, (field, column) in enumerate(zip(table.schema, table.columns, strict=True)):
        text += ("{" if i == 0 else ",") + json.dumps(field.name, ensure_ascii=False) + ":"
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        suffix = ""  # constant text after every value: a UTC timestamp's "+00:00" when none is NULL
        if pa.types.is_timestamp(array.type) and array.type.tz is not None and array.null_count == 0:
            array, suffix = array.cast(pa.timestamp("us")), "+00:00"
        values, quote = _values(array)
        if quote and values.null_count == 0:  # the quotes go into the constant text around it
            pieces += [text + '"', values]
            text = suffix + '"'
            continue
        if quote:
            values = pc.binary_join_element_wise('"', values, '"', "")
        pieces += [text, pc.fill_null(values, "null") if values.null_count else values]
        text = ""
    pieces.append(text + "}\n")
    size = sum(len(p.encode()) * n if isinstance(p, str) else p.nbytes for p in pieces)
    if size > _MAX_TEXT_BYTES and n > 1:
        half = n // 2
        return _encode(table.slice(0, half)) + _encode(table.slice(half))
    lines = pc.binary_join_element_wise(*pieces, "")
    offsets_buf, data = lines.buffers()[1:3]
    offsets = memoryview(offsets_buf).cast("i")  # int32: a string array under 2 GiB
    return data[offsets[lines.offset]:offsets[lines.offset + len(lines)]].to_pybytes()


def _values(a: pa.Array) -> tuple[pa.Array, bool]:
    """One column's values as JSON text (a string array; NULLs stay null), and whether each value
    still needs its double quotes around it."""
    typ = a.type
    if pa.types.is_null(typ):
        return pa.nulls(len(a), pa.string()), False
    if pa.types.is_boolean(typ):
        return pc.if_else(a, "true", "false"), False
    if pa.types.is_integer(typ):
        return a.cast(pa.string()), False
    if pa.types.is_floating(typ):
        return _floats(a), False
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        a = a.cast(pa.string())
        if not pc.any(pc.match_substring_regex(a, _NEEDS_ESCAPE)).as_py():
            return a, True
        return pa.array([None if v is None else encode_basestring(v) for v in a.to_pylist()], pa.string()), False
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        return pa.array([None if v is None else binascii.b2a_base64(v, newline=False).decode("ascii")
                         for v in a.to_pylist()], pa.string()), True
    if pa.types.is_decimal(typ):
        return a.cast(pa.string()), True  # str(Decimal): "1.98", "2.00", "0E-8"
    if pa.types.is_date32(typ):
        _check_range(a.cast(pa.int32()), _MIN_DAY, _MAX_DAY, "date")
        return a.cast(pa.string()), True
    return _timestamps(a), True


def _floats(a: pa.Array) -> pa.Array:
    """Python's ``repr``: Arrow's shortest round-trip digits where its notation is the same (fixed
    notation for 1e-4 <= |x| < 1e16, ``.0`` added to whole numbers), ``repr`` itself for the rest."""
    if pc.any(pc.invert(pc.is_finite(a))).as_py():
        raise ValueError("Out of range float values are not JSON compliant")
    a = a.cast(pa.float64())  # a float32 is written as the double it converts to, as Python does
    text = a.cast(pa.string())
    exponent = pc.match_substring(text, "e")
    whole = pc.and_(pc.invert(exponent), pc.invert(pc.match_substring(text, ".")))
    if pc.any(whole).as_py():
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    size = pc.abs(a)
    other = pc.or_(exponent, pc.or_(pc.greater_equal(size, 1e16), pc.and_(pc.less(size, 1e-4),
                                                                            pc.not_equal(size, 0.0))))
    if pc.any(other).as_py():
        reprs = pa.array([repr(v) for v in pc.filter(a, other).to_pylist()], pa.string())
        text = pc.replace_with_mask(text, other, reprs)
    return text


def _check_range(ints: pa.Array, low: int, high: int, what: str) -> None:
    bounds = pc.min_max(ints).as_py()
    if bounds["min"] is not None and (bounds["min"] < low or bounds["max"] > high):
        raise ValueError(f"a {what} outside years 1-9999 has no ISO 8601 form here")


def _timestamps(a: pa.Array) -> pa.Array:
    """``datetime.isoformat()``: ``YYYY-MM-DDTHH:MM:SS``, ``.ffffff`` only when not zero; ``+00:00``
    after a UTC timestamp (PostgreSQL's ``timestamptz``)."""
    if a.type.tz is not None:
        return pc.binary_join_element_wise(_timestamps(a.cast(pa.timestamp("us"))), "+00:00", "")
    micros = a.cast(pa.int64())
    _check_range(micros, _MIN_US, _MAX_US, "timestamp")
    try:  # whole seconds, the usual case: seconds' text has no fraction to cut (a safe cast refuses one)
        seconds = a.cast(pa.timestamp("s"))
    except pa.ArrowInvalid:
        pass
    else:  # (the text is ASCII: a byte slice is a character slice, and 4 times cheaper)
        return pc.binary_replace_slice(seconds.cast(pa.string()), start=10, stop=11, replacement="T")
    text = a.cast(pa.string())  # "YYYY-MM-DD HH:MM:SS.ffffff"
    text = pc.binary_replace_slice(text, start=10, stop=11, replacement="T")
    whole = pc.equal(pc.subtract(micros, pc.multiply(pc.divide(micros, 1_000_000), 1_000_000)), 0)
    if pc.all(whole).as_py():
        text = pc.utf8_slice_codeunits(text, 0, 19)
    elif pc.any(whole).as_py():
        text = pc.if_else(whole, pc.utf8_slice_codeunits(text, 0, 19), text)
    return text
