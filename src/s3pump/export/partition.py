"""Hive-style partitioning of exported rows, and the keys of exported objects.

``--partition-by time:COLUMN:hour|day|month`` → ``year=YYYY/month=MM[/day=DD[/hour=HH]]``
from the row's own timestamp (never the load time): a DATE/DATETIME/TIMESTAMP column, or a
TEXT column of ISO 8601 values. A numeric column is a usage error (it holds no dates;
filing every row under 1970-01-01 would be silent nonsense) unless the spec says it holds
Unix time: ``time:COLUMN:day:epoch-s`` (seconds) or ``:epoch-ms`` (milliseconds).
``--partition-by column:COL`` →
``COL=value``. Several specs nest in the order given. Values are percent-encoded for keys
(what ``pyarrow.dataset`` Hive partitioning decodes, ``segment_encoding="uri"``); a null or
empty value is ``__HIVE_DEFAULT_PARTITION__``, as in Hive and Spark.

An object's key is a pure function of table, partition and the batch's cut (its first and
last cursor values when it was cut, recorded in the checkpoint before any of its objects is
written; see ``jobs/export.py``)::

    prefix/T/year=2025/month=01/day=03/part-<first>-<last>.parquet

so exporting the same batch again overwrites and never duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import UsageError
from ..urls import join_key
from .rows import to_array

__all__ = [
    "DEFAULT_PARTITION",
    "PartitionSpec",
    "check_time_column",
    "escape_cursor",
    "escape_name",
    "escape_value",
    "object_key",
    "parse_partition",
    "split",
    "timestamps_of",
]

DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_GRAINS = {
    "month": "year=%Y/month=%m",
    "day": "year=%Y/month=%m/day=%d",
    "hour": "year=%Y/month=%m/day=%d/hour=%H",
}


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """``kind`` is ``time`` (with ``grain`` month/day/hour) or ``column``."""

    kind: str
    column: str
    grain: str | None = None
    epoch: str | None = None  # "s" or "ms": the column holds Unix time in these units

    def __str__(self) -> str:
        if self.kind != "time":
            return f"column:{self.column}"
        return f"time:{self.column}:{self.grain}" + (f":epoch-{self.epoch}" if self.epoch else "")


_EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000}  # microseconds per unit


def parse_partition(text: str) -> PartitionSpec:
    """Parse ``time:COLUMN:hour|day|month[:epoch-s|:epoch-ms]`` or ``column:COL``.

    Raises:
        UsageError: any other form.
    """
    kind, _, rest = text.partition(":")
    if kind == "time":
        epoch = None
        for unit in _EPOCH_UNITS:
            if rest.endswith(f":epoch-{unit}"):
                rest, epoch = rest[: -len(f":epoch-{unit}")], unit
        column, _, grain = rest.rpartition(":")
        if column and grain in _GRAINS:
            return PartitionSpec("time", column, grain, epoch)
    elif kind == "column" and rest:
        return PartitionSpec("column", rest)
    raise UsageError(f"--partition-by {text!r}: use time:COLUMN:hour|day|month[:epoch-s|:epoch-ms] or "
                     "column:COLUMN")


def check_time_column(spec: PartitionSpec, declared: str, typ: pa.DataType) -> None:
    """Refuse a time partition on a column that holds no dates or times (before any row is read).

    Dates, timestamps and TEXT (ISO 8601) partition as they are; integer, real and decimal
    columns only with ``:epoch-s``/``:epoch-ms``, and ``:epoch-*`` only on those.

    Raises:
        UsageError: one line naming the column and its declared type (exit 2).
    """
    if spec.kind != "time":
        return
    numeric = pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ)
    temporal = pa.types.is_timestamp(typ) or pa.types.is_date(typ) or pa.types.is_string(typ)
    what = f"declared {declared}" if declared else "declared without a type"
    if spec.epoch and not numeric:
        raise UsageError(f"--partition-by {spec}: column {spec.column} is {what}, not a number of Unix "
                         f"{'seconds' if spec.epoch == 's' else 'milliseconds'}; drop :epoch-{spec.epoch}")
    if not spec.epoch and not temporal:
        hint = (f"; if it holds Unix time, say so: time:{spec.column}:{spec.grain}:epoch-s (or :epoch-ms)"
                if numeric else "")
        raise UsageError(f"--partition-by {spec}: column {spec.column} is {what}, which holds no dates or "
                         f"times; use a DATE, DATETIME, TIMESTAMP or ISO 8601 TEXT column{hint}")


def escape_value(value: str) -> str:
    """A partition value as a key segment: percent-encoded; empty → the default partition."""
    if value == "":
        return DEFAULT_PARTITION
    return quote(value, safe="-_.~ +@,")


def escape_cursor(value: Any) -> str:
    """A cursor value as part of an object name."""
    if isinstance(value, int):
        return str(value)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return quote(text, safe="._~-")


def timestamps_of(array: pa.ChunkedArray | pa.Array, epoch: str | None = None) -> pa.Array:
    """A column as timestamp[us] (timestamps, dates, ISO 8601 text; numbers: Unix time in ``epoch`` units)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if epoch is not None:
        per = _EPOCH_UNITS[epoch]
        if pa.types.is_integer(array.type):
            micros = pc.multiply_checked(array.cast(pa.int64()), per)
        else:
            micros = pc.round(pc.multiply_checked(array.cast(pa.float64()), float(per))).cast(pa.int64())
        return micros.cast(pa.timestamp("us"))
    if pa.types.is_timestamp(array.type):
        return array.cast(pa.timestamp("us", array.type.tz)) if array.type.unit != "us" else array
    if pa.types.is_date(array.type):
        return array.cast(pa.timestamp("us"))
    return to_array(array.to_pylist(), pa.timestamp("us"))


def _segments(table: pa.Table, spec: PartitionSpec) -> pa.Array:
    if spec.column not in table.column_names:
        raise UsageError(f"--partition-by {spec}: the table has no column {spec.column!r}")
    if spec.kind == "time":
        try:
            ts = timestamps_of(table[spec.column], spec.epoch)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError, OverflowError) as e:
            raise UsageError(f"--partition-by {spec}: column {spec.column} does not hold timestamps "
                             f"({e})") from None
        grain = spec.grain or "day"
        # format each distinct hour/day/month once (strftime per row costs ~0.7 us)
        floored = pc.floor_temporal(ts, 1, grain)
        uniques = pc.unique(floored)
        default = "/".join(f"{p.split('=')[0]}={DEFAULT_PARTITION}" for p in _GRAINS[grain].split("/"))
        texts = pc.fill_null(pc.strftime(uniques, format=_GRAINS[grain]), default)
        return pc.take(texts, pc.index_in(floored, value_set=uniques, skip_nulls=False))
    values = table[spec.column].combine_chunks()
    text = values.cast(pa.string()) if not pa.types.is_binary(values.type) else pc.cast(values, pa.string())
    uniques = pc.unique(text)
    escaped = pa.array([f"{escape_name(spec.column)}={escape_value(v) if v is not None else DEFAULT_PARTITION}"
                        for v in uniques.to_pylist()], pa.string())
    return pc.take(escaped, pc.index_in(text, value_set=uniques, skip_nulls=False))


def escape_name(name: str) -> str:
    return quote(name, safe="-_.~")


def split(table: pa.Table, specs: list[PartitionSpec]) -> list[tuple[str, pa.Array, pa.Table]]:
    """Group the rows of ``table`` by partition path.

    Returns:
        ``[(path, indices, rows)]`` sorted by path; ``indices`` (int64) are the group's rows in
        ``table``, in their order there, so each group stays in cursor order; ``rows`` is
        ``table.take(indices)``, a zero-copy slice of one take of the whole table in group order
        (one take per group cost 10 times as much: about 1 ms each). ``path`` is ``""`` without
        partitioning.
    """
    n = table.num_rows
    if not n:
        return []
    if not specs:
        return [("", pc.indices_nonzero(pa.repeat(True, n)).cast(pa.int64()), table)]  # 0..n-1, no Python ints
    segments = [_segments(table, s) for s in specs]
    paths = segments[0] if len(segments) == 1 else pc.binary_join_element_wise(*segments, "/")
    order = pc.sort_indices(paths)  # stable: rows keep cursor order within a group
    counts = pc.value_counts(pc.take(paths, order)).to_pylist()  # in order of first appearance = sorted
    if len(counts) == 1:  # (the sort is stable: one group is the table as it is)
        return [(counts[0]["values"], order, table)]
    rows = table.take(order)
    out: list[tuple[str, pa.Array, pa.Table]] = []
    start = 0
    for entry in counts:
        c = entry["counts"]
        out.append((entry["values"], order.slice(start, c), rows.slice(start, c)))
        start += c
    return out


def object_key(prefix: str, table: str, path: str, first: Any, last: Any, extension: str) -> str:
    """``prefix/T/<path>/part-<first>-<last>.<extension>``."""
    name = f"part-{escape_cursor(first)}-{escape_cursor(last)}.{extension}"
    rel = f"{escape_name(table)}/{path}/{name}" if path else f"{escape_name(table)}/{name}"
    return join_key(prefix, rel)
