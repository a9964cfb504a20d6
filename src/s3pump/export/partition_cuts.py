"""``export --cluster``'s cuts at Hive partition boundaries, where that makes fewer objects.

An export writes one object per cut and partition. One process cuts every ``--batch-rows`` rows
wherever they fall, so a cut that straddles a partition boundary (a day, with ``time:ts:day``) is two
objects. When the partition is monotone in the cursor (the cursor column *is* the partition column,
or a time column that grows with the cursor), the coordinator can end each cut at a boundary instead:

* **The rule.** Read the next window of ``--batch-rows`` rows after the last cut (as one process reads
  a batch), split it by partition. If every partition's rows are one contiguous run in cursor order
  and there are several, the cut ends where the last run starts (that partition may go on past the
  window: the next cut starts with it). If the window holds one partition, the partitions interleave
  (``column:entity`` over an ID cursor), or the table ends in it, the window is the cut, as in one
  process. So a cut holds whole partitions and at most one partition's first ``--batch-rows`` rows,
  and there are about as many cuts as one process's batches.
* **Fewer objects.** Cut that way, a partition of ``P`` rows is ``ceil(P / batch_rows)`` objects (its
  full windows, then its rest, at the start of the next cut); one process writes at least that many for
  it (its ``batch_rows`` multiples inside the partition, plus one), and one more per boundary inside a
  batch. So for monotone data the cluster writes no more
  objects than one process, and fewer wherever a batch would straddle a boundary. Each object still
  holds at most ``--batch-rows`` rows; a cut is still recorded before any of its objects is written,
  so exactly once holds as before.
* **When.** By default when every ``--partition-by`` column is the cursor column (monotone by
  definition); ``S3PUMP_EXPORT_PARTITION_CUTS=1`` (or ``cluster_options={"partition_cuts": True}``)
  for other columns, ``=0`` never. Not with ``--one-object-per-row`` (one object per row anyway).
  Without it, the cluster's cuts are one process's batches, key for key.
* **Cost.** The coordinator reads each window's rows (as one process reads its batches) instead of
  only the cursor column's ``--batch-rows``-th value.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow.compute as pc

from ..errors import UsageError
from .partition import PartitionSpec, split
from .plan import CutPlanner

__all__ = ["PartitionCutter", "partition_cuts_wanted"]


def partition_cuts_wanted(specs: list[PartitionSpec], cursor_column: str, one_per_row: bool,
                          option: bool | None = None) -> bool:
    """Whether to cut at partition boundaries: ``option`` (the API's), else ``S3PUMP_EXPORT_PARTITION_CUTS``
    (``1``/``0``), else when every partition column is the cursor column.

    Raises:
        UsageError: ``S3PUMP_EXPORT_PARTITION_CUTS`` neither ``0`` nor ``1``.
    """
    if not specs or one_per_row:
        return False
    if option is not None:
        return bool(option)
    raw = os.environ.get("S3PUMP_EXPORT_PARTITION_CUTS")
    if raw is not None and raw.strip() not in ("0", "1"):
        raise UsageError(f"S3PUMP_EXPORT_PARTITION_CUTS={raw!r}: give 1 (cut at partition boundaries) or 0")
    if raw is not None:
        return raw.strip() == "1"
    return all(s.column == cursor_column for s in specs)


class PartitionCutter:
    """``cutter(after)`` for :meth:`~.plan.CutPlanner.plan_cuts`: the next cuts ``(first, last)`` after
    ``after``, ended at partition boundaries by the rule above (``[]`` at the end of the table)."""

    def __init__(self, planner: CutPlanner, specs: list[PartitionSpec]) -> None:
        self.planner, self.specs = planner, specs
        self.cursor_index = planner.source.cursor_index

    def __call__(self, after: Any) -> list[tuple[Any, Any]]:
        batch, converted = self.planner.read(after)
        if batch is None:
            return []
        if batch.first is None or batch.last is None:  # a NULL arrived since the check: never loop
            self.planner.source.check_cursor_not_null()
        whole = [(batch.first, batch.last)]
        if converted is None or converted[0].num_rows == 0:
            return whole
        table, positions, _bad = converted
        groups = split(table, self.specs)
        if len(groups) < 2:
            return whole
        runs: list[tuple[int, int]] = []
        for _path, indices, _rows in groups:
            lo, hi = pc.min(indices).as_py(), pc.max(indices).as_py()
            if hi - lo + 1 != len(indices):  # partitions interleave here: the plain cut
                return whole
            runs.append((lo, hi))
        runs.sort()
        if batch.count < self.planner.batch_rows:  # the end of the table: the window is the last cut
            return whole
        end = runs[-1][0] - 1  # the last partition may go on past the window: the next cut starts with it
        return [(batch.first, batch.rows[positions[end]][self.cursor_index])]
