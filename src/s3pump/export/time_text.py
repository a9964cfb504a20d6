"""Times written as ISO 8601 text: parsed value by value where a batch mixes forms, never a stopped run.

SQLite has no time type: a TEXT (or DATETIME) column holds ``2025-01-02 03:04:05``,
``2025-01-02T03:04:05.5`` or ``2025-01-02T03:04:05+02:00`` side by side, and now and then a text
that is no time at all. Arrow parses a whole column in one form only (a naive column refuses a
zone offset and a zoned one a naive value), so one odd value used to end ``--partition-by
time:`` with exit 2 on every rerun at the same batch. The rule here:

* a naive value is UTC, as it is; a value with a zone offset is converted to UTC
  (``2025-01-02T03:04:05+02:00`` is ``2025-01-02 01:04:05``), whatever the other values of the
  batch are;
* a value that is no ISO 8601 date or time is its row's failure: the row goes to the
  dead-letter queue with the column and the reason (:func:`drop_untimed`), and its batch-mates
  are exported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..sources.table import BadRow

if TYPE_CHECKING:
    from .partition import PartitionSpec

__all__ = ["drop_untimed", "parse_iso_texts"]

_TS = pa.timestamp("us")
_TS_UTC = pa.timestamp("us", "UTC")
_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, OverflowError)
NOT_A_TIME = "not an ISO 8601 date or time"


def _one(text: str) -> int | None:
    """µs since 1970 UTC of one text, or None if it is no time."""
    one = pa.array([text], pa.string())
    for typ in (_TS, _TS_UTC):
        try:
            return one.cast(typ).cast(pa.int64())[0].as_py()
        except _ERRORS:
            continue
    return None


def parse_iso_texts(texts: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    """``texts`` (string) as ``timestamp[us]`` in UTC (module rules), and the indices of the values
    that are no time (null in the array) with the reason."""
    try:  # one form for the whole column: one cast
        return texts.cast(_TS), {}
    except _ERRORS:
        pass
    try:
        return texts.cast(_TS_UTC).cast(_TS), {}
    except _ERRORS:
        pass
    micros: list[int | None] = []
    bad: dict[int, str] = {}
    for i, v in enumerate(texts.to_pylist()):
        got = None if v is None else _one(v)
        if v is not None and got is None:
            bad[i] = f"{v!r:.80} is {NOT_A_TIME}"
        micros.append(got)
    return pa.array(micros, pa.int64()).cast(_TS), bad


_MICROS = {"s": 1_000_000, "ms": 1_000}
_MAX_MICROS = 2**63 - 1


def _bad_epochs(column: pa.Array, epoch: str) -> dict[int, str]:
    """The values of a Unix-time column that are no time (NaN, infinite, beyond timestamp[us])."""
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_decimal(column.type)):
        return {}
    per = _MICROS[epoch]
    bad: dict[int, str] = {}
    for i, v in enumerate(column.to_pylist()):
        if v is None:
            continue
        try:
            ok = abs(v * per) <= _MAX_MICROS
        except (ArithmeticError, ValueError, TypeError):
            ok = False
        if not ok:  # (NaN compares false, so it is caught here too)
            bad[i] = f"{v!r} is no Unix time in {'seconds' if epoch == 's' else 'milliseconds'} (out of range)"
    return bad


def drop_untimed(table: pa.Table, positions: list[int], specs: Sequence[PartitionSpec],
                 rows: Sequence[tuple[Any, ...]], cursor_index: int) -> tuple[pa.Table, list[int], list[BadRow]]:
    """Take out the rows whose time partition column holds a text that is no time, or a Unix time out
    of range (``:epoch-s``/``:epoch-ms``).

    ``positions[i]`` is the index in ``rows`` (the batch's raw rows) of ``table``'s row ``i``.
    Returns the table and positions without those rows, and a :class:`BadRow` for each.
    """
    bad: dict[int, str] = {}
    for spec in specs:
        if spec.kind != "time" or spec.column not in table.column_names:
            continue
        column = table[spec.column].combine_chunks()
        if spec.epoch:
            failed = _bad_epochs(column, spec.epoch)
        elif pa.types.is_string(column.type):
            failed = parse_iso_texts(column)[1]
        else:
            continue
        for i, reason in failed.items():
            bad.setdefault(i, f"column {spec.column}: {reason}, so it has no --partition-by {spec} partition")
    if not bad:
        return table, positions, []
    keep = [i for i in range(table.num_rows) if i not in bad]
    out = [BadRow(rows[positions[i]][cursor_index], reason, repr(rows[positions[i]])) for i, reason in bad.items()]
    return table.take(pa.array(keep, pa.int64())), [positions[i] for i in keep], out

