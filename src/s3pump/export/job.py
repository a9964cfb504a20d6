"""One export of a table inside its ``Run``: checkpoint, planner, objects, ledger, superseded objects, report.

Its parts, each in a module of ``export/``: the :class:`~.plan.CutPlanner` (cuts, reads and
batches, in a producer thread), the :class:`~.objects.BatchWriter` (a batch → its objects, through
the format's writer), the :class:`~.ledger.Ledger` (objects outstanding per batch; the engine's
events settle them) and the :class:`~.checkpointer.Checkpointer` (the checkpoint's and the
dead-letter queue's writes, on a thread of their own). ``jobs/export.py`` is the verb;
``jobs/export_cluster.py`` drives one job's cuts on Dask workers through the public methods here.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..events import Event, RowsFound
from ..items import UploadItem
from ..reports import ExportReport
from ..run import Run
from ..sources.table import TableSource, decode_cursor
from ..store.base import ObjectAttributes
from ..urls import S3Url, join_key
from .checkpointer import Checkpointer
from .counters import ExportCounters
from .dlq import DeadLetterQueue, DlqEntry
from .formats import Serializer, make_serializer
from .ledger import Ledger
from .objects import BatchWriter, ObjectLayout, schema_hash
from .partition import PartitionSpec, escape_name
from .plan import CutPlanner, PlanThread
from .protogen import proto_schema
from .schema_check import check_schema, schema_columns, version_proto_name
from .state import Checkpoint, StateStore
from .superseded import delete_superseded, drop_older_versions

__all__ = ["ExportJob"]


class ExportJob:
    """Exports ``source`` to ``dest`` within ``run`` (see ``jobs/export.py`` for the flags).

    ``hold_dlq``: keep dead-letter entries in :attr:`held_dlq` instead of writing them (a cluster
    worker's, for its coordinator). ``schema_version``: the version the objects are named for, when a
    coordinator chose it (a cluster worker); else :meth:`begin` sets it from the checkpoint.
    """

    def __init__(self, source: TableSource, dest: S3Url, run: Run, specs: list[PartitionSpec], fmt: str,
                 compression: str | None, one_per_row: bool, dedup: bool, dlq: str | None, batch_rows: int,
                 state_file: str | Path | None, stop: threading.Event, dry_run: bool = False, *,
                 schema_evolution: bool = False, hold_dlq: bool = False, schema_version: int = 1) -> None:
        config = run.config
        self.run_, self.source, self.dest, self.config, self.store = run, source, dest, config, run.store
        self.table = source.table
        self.specs, self.fmt, self.one_per_row, self.dedup = specs, fmt, one_per_row, dedup
        self.compression, self.batch_rows, self.stop = compression, batch_rows, stop
        self.counters = ExportCounters()
        self.schema = source.schema
        self.schema_hash = schema_hash(self.schema)
        self.proto = proto_schema(self.table, self.schema, schema_hash=self.schema_hash) if fmt == "protobuf" else None
        serializer: Serializer = make_serializer(fmt, compression, proto=self.proto, delimited=not one_per_row)
        attrs = dataclasses.replace(ObjectAttributes.of(config), content_type=config.content_type
                                    or serializer.content_type)
        self.state = StateStore(run, dest.bucket, dest.prefix, self.table, state_file)
        self.dlq = DeadLetterQueue(dlq or f"s3://{dest.bucket}/{join_key(dest.prefix, '_dlq/')}", run)
        self.stats, self.bus = run.stats, run.bus
        self.dlq_entries: list[str] = []
        self.held_dlq: list[tuple[DlqEntry, Any, Any]] | None = [] if hold_dlq else None
        self.dry_run, self.schema_evolution = dry_run, schema_evolution
        self.would_write: list[dict[str, Any]] = []
        self.would_delete: list[str] = []
        self.deleted: list[str] = []
        checkpoint = Checkpoint(self.table, source.cursor.name, None, fmt, [str(s) for s in specs], self.schema_hash,
                                dedup=dedup, schema_version=schema_version)
        self.checkpointer = Checkpointer(self.state, checkpoint, threading.RLock())
        self.ledger = Ledger(self.checkpointer, self.counters, run.bus, table=self.table,
                             cursor_name=source.cursor.name, dedup=dedup, dry_run=dry_run, put_dlq=self.put_dlq)
        run.subscribe(self.ledger.on_event)
        layout = ObjectLayout(dest, self.table, self.schema, specs, fmt, serializer, attrs, self.schema_hash,
                              one_per_row, dedup)
        self.writer = BatchWriter(layout, source, self.ledger, self.counters, put_dlq=self.put_dlq,
                                  schema_version=lambda: self.checkpoint.schema_version, dry_run=dry_run)
        self.planner = CutPlanner(source, self.writer, self.checkpointer, batch_rows=batch_rows, dedup=dedup,
                                  dry_run=dry_run, stop=stop)
        self._plan: PlanThread[UploadItem | Event] | None = None
        run.on_cancel(self._stop_plan)

    @property
    def checkpoint(self) -> Checkpoint:
        return self.checkpointer.checkpoint

    def close(self) -> None:
        """Wait for the state writes asked so far and stop their thread (before the run's store closes)."""
        self.checkpointer.close()

    # ------------------------------------------------------------------ the run
    def run(self, *, replay: bool, follow: bool, poll_interval_s: float, from_start: bool) -> ExportReport:
        self.begin(from_start)
        replayed = 0
        if replay:
            replayed = self._replay()
        else:
            if not follow:  # a total to go by (following, the rows keep coming: none)
                self.say_rows_total()
            old_keys = set(self.ledger.stored_rows)
            while True:
                self.source.check_cursor_not_null()  # a NULL added while following stops the run here
                self.cycle(self.planner.batches())
                if self.dedup and not self.dry_run:
                    self.state.save_hashes(self.ledger.hashes)
                if not follow or self.stop.is_set():
                    break
                self.stop.wait(poll_interval_s)
                if self.stop.is_set():
                    break
            if self.complete():
                self.delete_superseded(old_keys)
        return self.report(replayed)

    def say_rows_total(self) -> None:
        """Count the rows this run reads (past the checkpoint's cursor; every row with ``--dedup``) and
        say it (``RowsFound``), for the progress view's total and ETA."""
        rows = self.source.count_after(None if self.dedup else decode_cursor(self.checkpoint.cursor))
        if rows is not None:
            self.bus.emit(RowsFound(rows))

    def begin(self, from_start: bool) -> None:
        """Load the checkpoint (or, ``from_start``, list what it supersedes); check the table's schema
        against the recorded one (``export/schema_check.py``); write the protobuf schema of its version."""
        saved = self.state.load()
        cp = self.checkpoint
        if saved is not None and not from_start:
            self._check_compatible(saved)
            self.checkpointer.checkpoint = cp = saved
            cp.schema_hash = self.schema_hash
        elif saved is not None and not self.one_per_row:  # (lab-layout keys are not under prefix/T/)
            # what an earlier export stored; saved with the first cut, so a rerun after a kill sweeps too
            base = join_key(self.dest.prefix, escape_name(self.table) + "/")
            cp.superseded = sorted(o.key for o in self.store.list_objects(self.dest.bucket, base))
        cp.dedup = self.dedup
        version = cp.schema_version
        cp.schema_version = check_schema(
            cp.schemas, cp.schema_version, schema_columns(self.schema, [c.declared_type for c in self.source.columns]),
            evolution=self.schema_evolution, table=self.table, where=f"s3://{self.dest.bucket}/{self.state.checkpoint_key}")
        if cp.schema_version != version and not self.dedup:  # the unfinished cuts are exported in the new one
            self._drop_older_versions([(decode_cursor(c[1]), decode_cursor(c[2])) for c in cp.batches])
        if self.proto is not None and not self.dry_run:  # the schema next to the data, so `protoc --decode` works
            name = version_proto_name(escape_name(self.table), cp.schema_version)
            self.run_.put_now(join_key(self.dest.prefix, f"_schema/{name}"), self.proto.proto_text.encode(),
                              ObjectAttributes(content_type="text/plain; charset=utf-8"))
        self.counters.checkpoint = cp.cursor
        if self.dedup:
            self.ledger.load_hashes(self.state.load_hashes() if not from_start else {})

    def _drop_older_versions(self, ranges: list[tuple[Any, Any]]) -> None:
        if not self.one_per_row and not self.dry_run:
            drop_older_versions(self.store, self.dest, self.table, self.checkpoint.schema_version, ranges)

    def export_cuts(self, cuts: Iterable[list[Any]]) -> None:
        """Export recorded cuts (an ``export --cluster`` range on a worker), each as the same range to
        the same keys, and wait for their objects. The checkpoint is the coordinator's."""
        self.ledger.advance_checkpoint = False
        self.cycle(self.planner.recorded(cuts))

    def put_dlq(self, entry: DlqEntry, first: Any, last: Any) -> None:
        """Record a dead-letter entry after the writes asked before it; a cluster worker's is held."""
        if self.held_dlq is not None:
            self.held_dlq.append((entry, first, last))
        else:
            self.checkpointer.submit(lambda: self.dlq_entries.append(self.dlq.put(entry, first, last)))

    def record_dlq(self, entry: DlqEntry, first: Any, last: Any) -> None:
        """Write a dead-letter entry now (a coordinator's, from a worker's result)."""
        self.dlq_entries.append(self.dlq.put(entry, first, last))

    def save_checkpoint(self) -> None:
        """Write the checkpoint as it is now, and wait (after every write asked before).

        Raises:
            StoreError: it (or an earlier write) failed.
        """
        self.checkpointer.save()

    @property
    def whole_table(self) -> bool:
        return self.planner.whole_table

    def complete(self) -> bool:
        """This run read the whole table and every object of it is stored (nothing failed or stopped)."""
        return (self.planner.whole_table and not self.stop.is_set() and not self.ledger.pending
                and self.counters.objects_failed == 0 and self.counters.rows_failed == 0)

    def delete_superseded(self, old_keys: set[str]) -> None:
        """Delete the objects a complete run superseded (``export/superseded.py``)."""
        if self.dedup and not self.dry_run:
            self.ledger.hashes = {c: v for c, v in self.ledger.hashes.items() if c in self.writer.seen_rows}
            self.state.save_hashes(self.ledger.hashes)
        keys = delete_superseded(self.store, self.dest.bucket, self.checkpoint, old_keys if self.dedup else set(),
                                 self.ledger.seen_keys, dry_run=self.dry_run)
        if self.dry_run:
            self.would_delete = keys
            return
        self.deleted = keys
        if self.checkpoint.superseded is not None:
            self.checkpoint.superseded = None
            self.save_checkpoint()

    def _check_compatible(self, saved: Checkpoint) -> None:
        where = f"s3://{self.dest.bucket}/{self.state.checkpoint_key}"
        mine = (self.source.cursor.name, self.fmt, [str(s) for s in self.specs])
        theirs = (saved.cursor_column, saved.format, saved.partition_by)
        if saved.table != self.table or mine != theirs:
            raise UsageError(
                f"{where}: this prefix was exported with --cursor-column {saved.cursor_column} --format "
                f"{saved.format} --partition-by {' '.join(saved.partition_by) or '(none)'}; use the same flags, "
                "another prefix, or --from-start")
        if saved.dedup is not None and saved.dedup != self.dedup:
            # the batches of the two modes differ: mixing them would store rows under two keys
            raise UsageError(f"{where}: this prefix was exported {'with' if saved.dedup else 'without'} --dedup; "
                             "use the same flags, another prefix, or --from-start")

    def _stop_plan(self) -> None:
        plan = self._plan
        if plan is not None:
            plan.stop()

    def cycle(self, batches: Iterator[list[UploadItem | Event]]) -> None:
        """Plan ``batches`` (in a producer thread where the source reads in any thread) and write their
        objects; then wait for the checkpoint's writes.

        Raises:
            StoreError: a checkpoint or dead-letter write failed (the transfer stops at the next object).
        """
        self._plan = plan = PlanThread(batches, threaded=self.source.reads_in_any_thread)
        try:
            if self.dry_run:
                for obj in self._taken(plan):
                    if isinstance(obj, UploadItem):
                        self.would_write.append({"key": obj.key, "source": obj.source, "bytes": obj.size_bytes,
                                                 "rows": self.ledger.key_rows.get(obj.key, 0)})
                        self.ledger.settle(obj.key)
                    else:
                        self.bus.emit(obj)
            else:
                self.run_.transfer(self._taken(plan))
        finally:
            plan.close()
            self._plan = None
            self.writer.close()
        self.ledger.advance()  # a batch with nothing to upload settles here
        self.checkpointer.flush()

    def _taken(self, plan: PlanThread[UploadItem | Event]) -> Iterator[UploadItem | Event]:
        """The objects of each planned batch, on the engine's thread; after each batch the ledger may
        move the checkpoint (a batch with no object to write)."""
        for objs in plan:
            self.checkpointer.raise_failure()
            yield from objs
            self.ledger.advance()

    # ------------------------------------------------------------------ --replay-dlq
    def _replay(self) -> int:
        """Export each dead-letter entry's range again; drop the entries whose failures are gone."""
        self.ledger.advance_checkpoint = False
        replayed = 0
        entries = list(self.dlq.entries(self.table))
        self._drop_older_versions([(decode_cursor(e.first), decode_cursor(e.last)) for _h, e in entries])
        for handle, entry in entries:
            if self.stop.is_set():
                break
            first, last = decode_cursor(entry.first), decode_cursor(entry.last)
            batch = self.source.read_range(first, last)
            if self.stop.is_set():  # stopped while waiting for a lock: the entry stays
                break
            rows_failed, objects_failed = self.counters.rows_failed, self.counters.objects_failed
            if batch is not None:
                self.cycle(iter([self.writer.objects(batch, first, last)]))
            still = (self.counters.rows_failed > rows_failed if entry.kind == "rows"
                     else self.counters.objects_failed > objects_failed)
            if not still:
                self.dlq.remove(handle)
                replayed += 1
        return replayed

    def report(self, replayed: int) -> ExportReport:
        c = self.counters
        return ExportReport(
            table=self.table, destination=str(self.dest), format=self.fmt, rows_read=c.rows_read,
            rows_exported=c.rows_exported, rows_failed=c.rows_failed, rows_unchanged=c.rows_unchanged,
            objects_written=c.objects_written, objects_failed=c.objects_failed,
            objects_skipped=c.objects_skipped, bytes_written=c.bytes_written, batches=c.batches,
            elapsed_s=c.elapsed_s, retries=self.stats.retries, checkpoint=self.checkpoint.cursor,
            dlq=self.dlq.location, dlq_entries=list(dict.fromkeys(self.dlq_entries)),
            failed=list(self.stats.failed), stopped=self.stop.is_set(), replayed_entries=replayed,
            dry_run=self.dry_run, would_write=list(self.would_write), deleted=list(self.deleted),
            would_delete=list(self.would_delete),
        )
