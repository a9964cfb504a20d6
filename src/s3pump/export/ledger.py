"""The export's ledger: each planned batch's objects until they are stored, and the checkpoint they move.

The planner registers every object of a batch (:meth:`Ledger.register`) before the engine sees it,
then marks the batch planned; the engine's thread calls :meth:`Ledger.advance` after taking a batch's
objects (one with none settles there). The engine's ``FileDone``/``FileFailed`` events settle the objects
(:meth:`Ledger.on_event`, on the engine's thread, in the bus's lock: no store I/O here). When a batch
and every batch before it are settled, the checkpoint moves past it: failures become a dead-letter
entry and the checkpoint a write, both handed to the :class:`~.checkpointer.Checkpointer`, in that
order. The planner's thread and the engine's share the ledger under one lock, which is never held
while an event is emitted (the bus's lock is taken first on the engine's thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..events import BatchExported, Event, EventBus, FileDone, FileFailed
from ..sources.table import encode_cursor
from .checkpointer import Checkpointer
from .counters import ExportCounters
from .dlq import DlqEntry

__all__ = ["Ledger", "PendingBatch"]


@dataclass(slots=True)
class PendingBatch:
    """A batch between planning and its checkpoint: objects still outstanding and failures seen.

    ``first``/``last`` are the cursor values of its cut (they name its objects); ``cut`` is the
    JSON-encoded ``[after, first, last]`` kept in the checkpoint (None when replaying the DLQ).
    """

    seq: int
    first: Any
    last: Any
    cut: list[Any] | None = None
    outstanding: set[str] = field(default_factory=set)
    failures: list[dict[str, str]] = field(default_factory=list)
    planned: bool = False


class Ledger:
    """Objects outstanding per batch, the dedup hashes they carry, and the checkpoint's advance.

    Args:
        checkpointer: where the checkpoint (under ``checkpointer.lock``, shared with the ledger) is written.
        put_dlq: records a dead-letter entry ``(entry, first, last)`` (called on the checkpointer's thread).
        dedup: keep row hashes per object (``--dedup``); ``dry_run``: write nothing.
    """

    def __init__(self, checkpointer: Checkpointer, counters: ExportCounters, bus: EventBus, *, table: str,
                 cursor_name: str, dedup: bool, dry_run: bool,
                 put_dlq: Callable[[DlqEntry, Any, Any], None]) -> None:
        self.checkpointer = checkpointer
        self.lock: threading.RLock = checkpointer.lock
        self.counters, self.bus = counters, bus
        self.table, self.cursor_name, self.dedup, self.dry_run = table, cursor_name, dedup, dry_run
        self.put_dlq = put_dlq
        #: move the checkpoint past settled batches (off: a cluster worker's ranges, a dead-letter replay)
        self.advance_checkpoint = True
        self.hashes: dict[str, tuple[bytes, str]] = {}  # dedup: repr(cursor) -> (row hash, key holding it)
        self.stored_rows: dict[str, int] = {}  # dedup: key -> rows it holds
        self.seen_keys: set[str] = set()  # keys this run wrote or found unchanged
        self.pending: dict[int, PendingBatch] = {}  # in seq order (dicts keep insertion order)
        self.key_rows: dict[str, int] = {}
        self._key_batch: dict[str, PendingBatch] = {}
        self._key_hashes: dict[str, dict[str, bytes]] = {}
        self._seq = 0
        self._rows_reported = 0

    def load_hashes(self, hashes: dict[str, tuple[bytes, str]]) -> None:
        """Start from the dedup hashes of the last run."""
        with self.lock:
            self.hashes = hashes
            self.stored_rows = {}
            for _h, key in hashes.values():
                self.stored_rows[key] = self.stored_rows.get(key, 0) + 1

    def open_batch(self, first: Any, last: Any, cut: list[Any] | None) -> PendingBatch:
        with self.lock:
            self._seq += 1
            rec = PendingBatch(self._seq, first, last, cut)
            self.pending[rec.seq] = rec
            return rec

    def unchanged(self, key: str, hashes: dict[str, bytes]) -> bool:
        """``--dedup``: the object ``key`` holds exactly these rows, each as it is now (then it is seen)."""
        with self.lock:
            same = (self.stored_rows.get(key) == len(hashes)
                    and all(self.hashes.get(k) == (h, key) for k, h in hashes.items()))
            if same:
                self.seen_keys.add(key)
            return same

    def register(self, rec: PendingBatch, key: str, rows: int, hashes: dict[str, bytes] | None) -> None:
        """An object of ``rec`` that the engine will write."""
        with self.lock:
            rec.outstanding.add(key)
            self.seen_keys.add(key)
            self._key_batch[key] = rec
            self.key_rows[key] = rows
            if hashes is not None:
                self._key_hashes[key] = hashes

    def planned(self, rec: PendingBatch) -> None:
        """Every object of ``rec`` is registered (the consumer of the plan calls :meth:`advance` next,
        for a batch with no object to write)."""
        with self.lock:
            rec.planned = True

    def settle(self, key: str) -> None:
        """--dry-run: count a planned object as settled, without writing it."""
        with self.lock:
            rec = self._key_batch.pop(key, None)
            self.key_rows.pop(key, None)
            self._key_hashes.pop(key, None)
            if rec is not None:
                rec.outstanding.discard(key)

    def stored(self, key: str, version_id: str | None) -> None:
        """Object ``key`` is stored (here or by a cluster worker): a key the run wrote, no longer superseded."""
        with self.lock:
            cp = self.checkpointer.checkpoint
            self.seen_keys.add(key)
            if cp.superseded and key in cp.superseded:
                cp.superseded.remove(key)  # rewritten by this export: keep it
            if version_id:  # what a consumer pins: the version this export wrote
                cp.versions[key] = version_id

    def on_event(self, event: Event) -> None:
        """The engine's answer for an object (a bus subscriber; the bus's lock is held)."""
        if isinstance(event, FileDone):
            with self.lock:
                rec = self._key_batch.pop(event.key, None)
                if rec is None:
                    return
                rows = self.key_rows.pop(event.key, 0)
                self.stored(event.key, event.version_id)
                cp, c = self.checkpointer.checkpoint, self.counters
                c.rows_exported += rows
                c.objects_written += 1
                c.bytes_written += event.size_bytes
                cp.rows_exported += rows
                cp.objects_written += 1
                if self.dedup:
                    moved = self._key_hashes.pop(event.key, {})
                    for cur in moved:  # a row that moved here from another object leaves that one
                        old = self.hashes.get(cur)
                        if old is not None and old[1] != event.key and old[1] in self.stored_rows:
                            self.stored_rows[old[1]] -= 1
                    self.hashes.update({cur: (h, event.key) for cur, h in moved.items()})
                    self.stored_rows[event.key] = len(moved)
                rec.outstanding.discard(event.key)
            self.advance()
        elif isinstance(event, FileFailed):
            with self.lock:
                rec = self._key_batch.pop(event.key, None)
                if rec is None:
                    return
                self.key_rows.pop(event.key, None)
                self._key_hashes.pop(event.key, None)
                self.counters.objects_failed += 1
                rec.failures.append({"key": event.key, "error": str(event.error)})
                rec.outstanding.discard(event.key)
            self.advance()

    def advance(self) -> None:
        """Settle finished batches in order: failures to the dead-letter queue, then one checkpoint write
        (both asked of the checkpointer; none here)."""
        moved = False
        with self.lock:
            cp = self.checkpointer.checkpoint
            while self.pending:
                seq = next(iter(self.pending))
                rec = self.pending[seq]
                if not rec.planned or rec.outstanding:
                    break
                if rec.failures and not self.dry_run:
                    entry = DlqEntry("upload", self.table, self.cursor_name, encode_cursor(rec.first),
                                     encode_cursor(rec.last), f"{len(rec.failures)} objects failed to upload",
                                     keys=rec.failures)
                    self.put_dlq(entry, rec.first, rec.last)
                del self.pending[seq]
                if self.advance_checkpoint:
                    cp.cursor = encode_cursor(rec.last)
                    if not self.dedup and rec.cut is not None and rec.cut in cp.batches:
                        cp.batches.remove(rec.cut)
                    if rec.cut is not None and rec.cut in cp.done:
                        cp.done.remove(rec.cut)
                    moved = True
            if not moved or self.dry_run:
                return
            self.checkpointer.save_later()
            self.counters.checkpoint = cursor = cp.cursor
            rows, self._rows_reported = self.counters.rows_exported - self._rows_reported, self.counters.rows_exported
        self.bus.emit(BatchExported(rows, cursor))
