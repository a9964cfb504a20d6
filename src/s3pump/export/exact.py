"""Integers, doubles and booleans converted to Arrow exactly, or not at all (issue 25).

``pyarrow.array(values, pa.int64())`` truncates a float (``3.7`` → ``3``, ``-2.5`` → ``-2``)
instead of raising, and an integer cast to ``bool`` makes every non-zero value ``true``. SQLite
is dynamically typed (an INTEGER column keeps ``3.7`` as REAL, a BOOLEAN column keeps ``2`` or
``'false'``), so such values reach the export. Here a value that would change raises
``ValueError`` naming why, and the caller (``export.rows.to_arrow``) sends its row to the
dead-letter queue:

* ``int64``: Python ints within the int64 range; a float only when it is integral and within
  range (``3.0`` → ``3``, exact); anything else (``3.7``, ``1e19``, NaN, text) is refused.
* ``float64``: floats; an integer only when the double holds it exactly (``|n| <= 2**53`` or
  any other exactly representable one); a ``Decimal`` (another database's NUMERIC) only when its
  digits are the double's shortest form (``0.1`` yes, ``0.12345678901234567890`` no); text is
  refused.
* ``bool``: ``0``/``1`` (integers, or floats ``0.0``/``1.0``), Python booleans, and the text
  ``true``/``false`` in any case (SQLite's own keywords); anything else (``2``, ``-1``,
  ``'yes'``) is refused.

The common case (every value already of the type) costs one ``pyarrow.array`` call, as before.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["exact_array", "is_exact_type"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INFER_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, TypeError,
                 ValueError)
_BOOL_TEXT = {"true": True, "false": False}


def is_exact_type(typ: pa.DataType) -> bool:
    """Whether :func:`exact_array` converts to ``typ`` (int64, float64, bool)."""
    return typ in (pa.int64(), pa.float64()) or pa.types.is_boolean(typ)


def exact_array(values: Sequence[Any], typ: pa.DataType) -> pa.Array:
    """``values`` as an array of ``typ`` (int64, float64 or bool), each value unchanged.

    Raises:
        ValueError: a value that the type cannot hold exactly (the message says which and why).
    """
    try:
        inferred = pa.array(values)
    except _INFER_ERRORS:
        inferred = None
    if inferred is not None:
        kind = inferred.type
        if kind == typ:
            return inferred
        if pa.types.is_null(kind):
            return pa.nulls(len(inferred), typ)
        if kind == pa.int64() and typ == pa.float64():
            return pa.array(values, typ)  # raises where a double cannot hold the integer exactly
        if (kind == pa.int64() and pa.types.is_boolean(typ)
                and pc.all(pc.is_in(inferred.drop_null(), pa.array([0, 1]))).as_py() in (True, None)):
            return inferred.cast(typ)
    return pa.array([_exact(v, typ) for v in values], typ)


def _exact(v: Any, typ: pa.DataType) -> Any:
    if v is None:
        return None
    if typ == pa.int64():
        return _int(v)
    if typ == pa.float64():
        return _float(v)
    return _bool(v)


def _int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise ValueError(f"{v} is out of the int64 range")
        return v
    if isinstance(v, float | decimal.Decimal):
        if not (math.isfinite(v) if isinstance(v, float) else v.is_finite()):
            raise ValueError(f"{v!r} is not a finite number")
        if v != int(v):
            raise ValueError(f"{v!r} is not an integer (converting it would truncate it to {int(v)})")
        n = int(v)
        if not _INT64_MIN <= n <= _INT64_MAX:
            raise ValueError(f"{v!r} is out of the int64 range")
        return n
    raise ValueError(f"{type(v).__name__} {v!r:.40} is not an integer")


def _float(v: Any) -> float:
    if isinstance(v, float):
        return v
    if isinstance(v, int | decimal.Decimal) and not isinstance(v, bool):
        try:
            f = float(v)
        except OverflowError:
            raise ValueError(f"{v} is out of the double range") from None
        # an integer: the double must hold it exactly; a decimal (a database's NUMERIC): its digits must
        # be the double's shortest form, as a REAL is read (``0.1`` is the double ``0.1``)
        same = decimal.Decimal(f) == v if isinstance(v, int) else decimal.Decimal(repr(f)) == v
        if not same:
            raise ValueError(f"{v} has no exact double (it would become {f!r})")
        return f
    raise ValueError(f"{type(v).__name__} {v!r:.40} is not a number")


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[v.lower()]
    raise ValueError(f"{v!r:.40} is not a boolean (only 0, 1, true and false are)")
