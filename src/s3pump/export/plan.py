"""The export's planner: batch cuts, read and turned into objects in a producer thread.

:class:`CutPlanner` yields, batch by batch, the objects of the cuts the checkpoint already holds
(each the same range ``after < C <= last`` to the same keys), then of new batches after the last
one: up to ``--batch-rows`` rows ordered by the cursor, whose cut ``[after, first, last]`` is written
to the checkpoint (:meth:`~.checkpointer.Checkpointer.save`) *before* any of its objects is handed
on. :class:`PlanThread` runs that in a producer thread (``sources/handoff.py``), so reading,
converting, serializing and the checkpoint's PUT for a new cut never run on the engine's thread
(a source whose reads must stay on one thread, the SQLAlchemy fallback, is planned inline).
``export --cluster`` plans its cuts from the cursor column alone (:meth:`CutPlanner.plan_cuts`).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from ..events import Event
from ..items import UploadItem
from ..sources.handoff import Handoff
from ..sources.table import RowBatch, TableSource, decode_cursor, encode_cursor
from .checkpointer import Checkpointer
from .objects import BatchWriter, Converted
from .rows import to_array_from_arrow, to_arrow

__all__ = ["CutPlanner", "PlanThread"]

T = TypeVar("T")
Objects = list[UploadItem | Event]


class CutPlanner:
    """Cuts, reads and writes batches of ``source`` into objects (see the module docstring).

    ``whole_table``: the last pass read every row to the end (it was not stopped).
    """

    def __init__(self, source: TableSource, writer: BatchWriter, checkpointer: Checkpointer, *, batch_rows: int,
                 dedup: bool, dry_run: bool, stop: threading.Event) -> None:
        self.source, self.writer, self.checkpointer = source, writer, checkpointer
        self.batch_rows, self.dedup, self.dry_run, self.stop = batch_rows, dedup, dry_run, stop
        self.schema = source.schema
        self.read_ahead = source.reads_in_any_thread  # the next batch is read while this one is written
        self.whole_table = False

    def batches(self) -> Iterator[Objects]:
        """Objects of the recorded cuts, then of new batches, until caught up or asked to stop."""
        self.whole_table = False
        cp, lock = self.checkpointer.checkpoint, self.checkpointer.lock
        with lock:
            after = None if self.dedup else decode_cursor(cp.cursor)
            recorded = [list(cut) for cut in cp.batches]  # unfinished cuts (every cut with --dedup)
        for cut in recorded:
            if self.stop.is_set():
                return
            cut_after, first, last = (decode_cursor(v) for v in cut)
            with lock:
                done = cut in cp.done
            if done:  # stored by a cluster worker: settles in order, not read
                yield self.writer.objects(None, first, last, cut)
            else:
                yield self.writer.objects(self.source.read_cut(cut_after, last), first, last, cut)
            after = last
        # The next batch is read and converted to Arrow in a thread while this one is serialized and
        # sent: building its row tuples holds the GIL, but Arrow's compute, Parquet, gzip and the
        # upload release it (docs/benchmarks.md). Its cut is recorded only when it is taken, so a
        # checkpoint never names a batch before it is planned.
        reader: cf.ThreadPoolExecutor | None = None
        ahead: cf.Future[tuple[RowBatch | None, Converted | None]] | None = None
        try:
            while not self.stop.is_set():
                batch, converted = ahead.result() if ahead is not None else self.read(after)
                ahead = None
                if batch is None:
                    self.whole_table = not self.stop.is_set()
                    return
                if batch.first is None or batch.last is None:  # a NULL arrived since the check: never loop
                    self.source.check_cursor_not_null()
                cut = [encode_cursor(after), encode_cursor(batch.first), encode_cursor(batch.last)]
                self.record_cut(cut)
                if batch.count >= self.batch_rows and self.read_ahead:
                    reader = reader or cf.ThreadPoolExecutor(1, thread_name_prefix="s3pump-export-read")
                    ahead = reader.submit(self.read, batch.last)
                yield self.writer.objects(batch, batch.first, batch.last, cut, converted)
                after = batch.last
                if batch.count < self.batch_rows:
                    self.whole_table = not self.stop.is_set()
                    return
        finally:
            if reader is not None:  # the source is closed after this: let a read in flight finish first
                reader.shutdown(wait=True, cancel_futures=True)

    def recorded(self, cuts: Iterable[list[Any]]) -> Iterator[Objects]:
        """Objects of recorded cuts (a cluster worker's range), each the same range to the same keys."""
        for cut in cuts:
            after, first, last = (decode_cursor(v) for v in cut)
            yield self.writer.objects(self.source.read_cut(after, last), first, last, cut)

    def read(self, after: Any) -> tuple[RowBatch | None, Converted | None]:
        """The batch after ``after`` and its Arrow table (in the read-ahead thread, but the first):
        straight into Arrow where the source can, else rows and ``to_arrow``."""
        got = self.source.read_arrow_after(after, self.batch_rows, to_array_from_arrow)
        if got is not None:
            batch, table = got
            return batch, ((table, list(range(table.num_rows)), []) if table is not None else None)
        batch = self.source.read_after(after, self.batch_rows)
        return batch, (to_arrow(batch.rows, self.schema, self.source.cursor_index) if batch is not None else None)

    def record_cut(self, cut: list[Any]) -> None:
        """Fix a new batch's range and names in the checkpoint before any of its objects is written."""
        with self.checkpointer.lock:
            self.checkpointer.checkpoint.batches.append(cut)
        if not self.dry_run:
            self.checkpointer.save()

    def plan_cuts(self, cutter: Callable[[Any], list[tuple[Any, Any]]] | None = None) -> list[list[Any]]:
        """``export --cluster``'s plan: the recorded cuts, then new ones to the end of the table from the
        cursor column alone (each the ``--batch-rows``-th cursor value after the last), added to the
        checkpoint (not saved: the coordinator saves it once the workers can read the table).

        ``cutter(after)``: the next cuts' ``(first, last)`` cursor values after ``after`` instead (``[]``
        at the end of the table), e.g. cuts at partition boundaries (``export/partition_cuts.py``)."""
        cp = self.checkpointer.checkpoint
        self.source.check_cursor_not_null()
        after = decode_cursor(cp.cursor)
        for cut in cp.batches:
            after = decode_cursor(cut[2])
        while not self.stop.is_set():
            one = self.source.plan_cut(after, self.batch_rows) if cutter is None else None
            nxt = cutter(after) if cutter is not None else [one] if one is not None else []
            # a stop while a query waited for a lock answers "no rows": what it returned is not a cut
            if not nxt or self.stop.is_set():
                break
            with self.checkpointer.lock:
                for first, last in nxt:
                    cp.batches.append([encode_cursor(after), encode_cursor(first), encode_cursor(last)])
                    after = last
        self.whole_table = not self.stop.is_set()
        return [list(cut) for cut in cp.batches]


class PlanThread(Generic[T]):
    """The lists of ``batches`` produced in a thread of their own (``threaded``) or inline, handed over
    through a bounded queue of one list; :meth:`close` stops the producer and waits for it (a read in
    flight finishes first: the source is closed after this)."""

    def __init__(self, batches: Iterator[list[T]], *, threaded: bool, name: str = "s3pump-export-plan") -> None:
        self._batches = batches
        self._handoff: Handoff[list[T]] | None = None
        self._finished = threading.Event()
        if not threaded:
            self._finished.set()
            return
        self._handoff = Handoff(max_batches=1, batch=1, name=name)

        def produce(out: Handoff[list[T]]) -> None:
            try:
                for objs in batches:
                    out.put(objs)
            finally:
                try:
                    _close(batches)  # a generator: its read-ahead thread ends here, in this thread
                finally:
                    self._finished.set()

        self._handoff.start(produce)

    def __iter__(self) -> Iterator[list[T]]:
        return iter(self._handoff) if self._handoff is not None else self._batches

    def stop(self) -> None:
        """Make the producer stop at its next hand-over (thread-safe; a run's cancel calls it)."""
        if self._handoff is not None:
            self._handoff.stop()

    def close(self) -> None:
        self.stop()
        self._finished.wait()
        if self._handoff is None:
            _close(self._batches)


def _close(batches: Iterator[Any]) -> None:
    close = getattr(batches, "close", None)
    if close is not None:
        close()
