"""``export --cluster --follow``: after the cuts of the table as it was are settled, poll for new rows.

Every ``--poll-interval`` seconds (the flag of a one-process ``--follow``) the coordinator plans the
cuts after the last recorded one (:meth:`~s3pump.export.plan.CutPlanner.plan_cuts`, the cursor column
alone), checks that every worker sees rows up to the last of them, saves them in the checkpoint (the
plan, *before* any range of them is submitted) and sends them in ranges through the same window and
:class:`~.export_cluster.RangeSettler` as the first pass: the checkpoint moves only past contiguous
settled cuts, so exactly once holds as in a single run. Range numbers (and so Dask keys) go on across
polls. A cut whose range was lost stays recorded and is sent again at the next poll.

``--dedup``: each poll reads every cut again, as one process does, so an updated row is exported too.
After each pass the coordinator merges the ranges' row hashes, saves them, and sends the workers only
the hashes that changed (:func:`update_hashes`), so a worker compares the next pass with what was
just written, not with the hashes of the run's start.

A stop request (SIGINT/SIGTERM: ``exporter.stop``) ends the wait at once; a pass in flight submits no
more ranges and settles those running; then the export returns (exit 0, as one process's
``--follow``). A second signal cancels the ranges in flight (``run.cancelled``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..export.job import ExportJob
from ..export.ranges import ExportRange, RangeJob, group_cuts

__all__ = ["Polls", "follow_ranges", "plan_ranges", "update_hashes"]


@dataclass(frozen=True, slots=True)
class Polls:
    """``--follow`` on the cluster: poll every ``interval_s`` seconds; ranges of about ``range_rows`` rows;
    ``cutter`` as for :func:`plan_ranges`."""

    interval_s: float
    range_rows: int
    cutter: Callable[[Any], list[tuple[Any, Any]]] | None = None


def plan_ranges(exporter: ExportJob, job: RangeJob, range_rows: int, start: int,
                cutter: Callable[[Any], list[tuple[Any, Any]]] | None = None) -> list[ExportRange]:
    """Plan the cuts to the end of the table (recorded in the checkpoint, not saved) and group those to
    export now into ranges numbered from ``start``: the cuts not done (every cut with ``--dedup``, which
    reads every cut each pass; unchanged groups are not written). ``cutter``: cuts at partition
    boundaries (``export/partition_cuts.py``), else one process's batches.

    Raises:
        UsageError: a NULL in the cursor column.
        SourceUnreadableError: the database failed.
    """
    cp = exporter.checkpoint
    cuts = exporter.planner.plan_cuts(cutter)
    todo = cuts if exporter.dedup else [cut for cut in cuts if cut not in cp.done]
    return [ExportRange(start + i, job, group) for i, group in
            enumerate(group_cuts(todo, exporter.batch_rows, range_rows))]


def follow_ranges(exporter: ExportJob, job: RangeJob, settle: Any, polls: Polls, start: int,
                  send: Callable[[list[ExportRange]], None], check: Callable[[Any], None],
                  push_hashes: Callable[[dict[str, tuple[bytes, str]]], Any]) -> None:
    """Poll and export new cuts until ``exporter.stop`` is set or the run is cancelled.

    Args:
        settle: the run's :class:`~.export_cluster.RangeSettler` (its ``advance`` and, with ``--dedup``,
            the hashes and keys the ranges sent back).
        start: the number of the next range.
        send: exports ranges through the cluster's window and returns when all are settled.
        check: every worker sees the table up to a JSON-encoded cursor value (raises otherwise).
        push_hashes: gives every worker's runtime the row hashes that changed (``--dedup``).

    Raises:
        WorkerMismatchError: a worker cannot read the new rows (exit 2).
        StoreError: the checkpoint could not be written.
    """
    run = exporter.run_
    index = start
    while True:
        if exporter.dedup:
            _merge_hashes(exporter, settle, push_hashes)
        if exporter.stop.wait(polls.interval_s) or run.cancelled:
            return
        ranges = plan_ranges(exporter, job, polls.range_rows, index, polls.cutter)
        if exporter.stop.is_set() or run.cancelled:
            return
        if not ranges:
            continue
        check(ranges[-1].cuts[-1][2])
        exporter.save_checkpoint()  # the new cuts fixed before any of their objects is written
        index += len(ranges)
        send(ranges)
        settle.advance()


def _merge_hashes(exporter: ExportJob, settle: Any,
                  push_hashes: Callable[[dict[str, tuple[bytes, str]]], Any]) -> None:
    """``--dedup`` after a pass: the ranges' row hashes into the ledger, saved; the changed ones sent on."""
    ledger = exporter.ledger
    delta = {cur: value for cur, value in settle.hashes.items() if ledger.hashes.get(cur) != value}
    ledger.hashes.update(delta)
    exporter.writer.seen_rows.update(settle.hashes)
    ledger.seen_keys.update(settle.seen_keys)
    if not delta:
        return
    exporter.state.save_hashes(ledger.hashes)
    push_hashes(delta)


def update_hashes(plugin: str, delta: dict[str, tuple[bytes, str]], dask_worker: Any = None) -> None:
    """On a worker (``Client.run``): add the row hashes that changed to the export's runtime, which each
    range loads (a worker that joins later has the run's first hashes: it rewrites some unchanged groups
    to the same keys, never a second copy)."""
    runtime = dask_worker.plugins[plugin] if dask_worker is not None else None
    if runtime is None:
        return
    if getattr(runtime, "hashes", None) is None:
        runtime.hashes = {}
    runtime.hashes.update(delta)
