"""Arrow types for SQLite columns without a declared type: views' computed columns, untyped columns.

A view's computed column (``length(a)``, ``price*qty``) and a column created without a type
have no declared type, so the declared-type rules (``sources.table.arrow_type_for``) can only
say ``binary``, and every integer or text value would be a bad row. Such a column is typed by
the values it holds instead, from their storage classes (``typeof``) over the whole table or
view, in one scan when the source is opened; so the type is the same for every batch of a run,
and the export's recorded schema (``export/schema_check.py``) notices when a later run infers
another one. The rules:

* only INTEGERs → ``int64``; INTEGERs and REALs → ``float64`` (an integer a double cannot hold
  exactly is a bad row); only TEXT → ``string``; only BLOBs → ``binary``;
* other mixtures: the class of most values (numbers counted together), the values of the other
  classes are bad rows (dead-letter queue, naming the column); ties go to text;
* no value but NULLs (or no rows): ``binary``, as the declared-type rules say; a later run that
  finds values of a class is a schema change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from .table import Column

__all__ = ["infer_untyped", "is_untyped", "type_of_classes"]

_CLASSES = ("integer", "real", "text", "blob")


def is_untyped(declared: str) -> bool:
    """Whether a declared type says nothing (``""``; SQLAlchemy's ``NullType`` prints ``NULL``)."""
    return not declared.strip()


def type_of_classes(integer: int, real: int, text: int, blob: int) -> pa.DataType:
    """The Arrow type of a column holding this many values of each storage class (module rules)."""
    numbers = integer + real
    if not numbers and not text and not blob:
        return pa.binary()
    best = max((text, 2), (numbers, 1), (blob, 0))[1]  # ties: text, then numbers
    if best == 2:
        return pa.string()
    if best == 0:
        return pa.binary()
    return pa.float64() if real else pa.int64()


def infer_untyped(columns: Sequence[Column], table_sql: str, quote: Callable[[str], str],
                  query: Callable[[str], list[Any]]) -> list[Column]:
    """``columns`` with each untyped one's ``arrow_type`` inferred from its values (one scan of
    ``table_sql``, a quoted table or view name, with ``query``); the others as they are."""
    untyped = [c for c in columns if is_untyped(c.declared_type)]
    if not untyped:
        return list(columns)
    sums = ", ".join(f"TOTAL(typeof({quote(c.name)}) = '{k}')" for c in untyped for k in _CLASSES)
    rows = query(f"SELECT {sums} FROM {table_sql}")
    counts = [int(v or 0) for v in rows[0]] if rows else [0] * (4 * len(untyped))
    inferred = {c.name: type_of_classes(*counts[4 * i:4 * i + 4]) for i, c in enumerate(untyped)}
    return [dataclasses.replace(c, arrow_type=inferred[c.name]) if c.name in inferred else c for c in columns]
