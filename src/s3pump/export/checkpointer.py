"""The export's writes of its own state (checkpoint, dead-letter entries) on a thread of their own.

The engine's thread only *asks* for a write: a finished batch moves the checkpoint while the event
bus delivers a ``FileDone`` (its lock held), and a store call there would stall every upload for a
round trip. The :class:`Checkpointer` runs the writes one at a time, in the order asked, on its own
thread:

* :meth:`submit` a write (a dead-letter entry) to run in order;
* :meth:`save_later` the checkpoint: several asks while one write is queued become one write,
  of the checkpoint as it is when the write starts (every state of it is a valid one);
* :meth:`save` the checkpoint and wait (a new cut is recorded before any object of it is written);
* :meth:`flush`: wait for every write asked so far.

After a write fails, no later one runs (a checkpoint is never written past a dead-letter entry
that was not), and :meth:`save`, :meth:`flush` and :meth:`raise_failure` raise its error.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from .state import Checkpoint, StateStore

__all__ = ["Checkpointer"]


class Checkpointer:
    """Writes ``checkpoint`` through ``state`` (and other writes) in one thread, in order.

    ``lock`` guards every change to the checkpoint (the export's planner and its ledger hold it
    while they change it); a write serializes the checkpoint under it.
    """

    def __init__(self, state: StateStore, checkpoint: Checkpoint, lock: threading.RLock) -> None:
        self.state = state
        self.checkpoint = checkpoint
        self.lock = lock
        self._pool: cf.ThreadPoolExecutor | None = None
        self._futures: list[cf.Future[Any]] = []
        self._failure: BaseException | None = None
        self._asked = 0  # save requests so far; a save writes only if it is the latest
        self._guard = threading.Lock()

    def submit(self, write: Callable[[], Any]) -> cf.Future[Any]:
        """Run ``write`` after every write asked before it (not at all if one of them failed)."""
        with self._guard:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="s3pump-export-state")
            fut = self._pool.submit(self._guarded, write)
            self._futures = [f for f in self._futures if not f.done()]
            self._futures.append(fut)
            return fut

    def _guarded(self, write: Callable[[], Any]) -> Any:
        if self._failure is not None:
            return None
        try:
            return write()
        except BaseException as e:
            self._failure = e
            raise

    def save_later(self) -> cf.Future[Any]:
        """Write the checkpoint soon (as it is then); returns at once."""
        with self._guard:
            self._asked += 1
            mine = self._asked

        def write() -> None:
            if mine == self._asked:  # a later request writes a later state
                self._write()

        return self.submit(write)

    def save(self) -> None:
        """Write the checkpoint as it is now (or later) and wait.

        Raises:
            StoreError: this write or an earlier one failed.
        """
        fut = self.submit(self._write)
        cf.wait([fut])
        self.raise_failure()

    def _write(self) -> None:
        with self.lock:
            self.checkpoint.updated_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            body = self.checkpoint.to_json()
        self.state.write(body)

    def flush(self) -> None:
        """Wait for every write asked so far.

        Raises:
            StoreError: one of them failed (the first error).
        """
        with self._guard:
            pending = list(self._futures)
        cf.wait(pending)
        self.raise_failure()

    def raise_failure(self) -> None:
        """Raise the error of the first write that failed, if any."""
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Wait for the writes asked so far and stop the thread (errors stay for :meth:`raise_failure`)."""
        with self._guard:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
