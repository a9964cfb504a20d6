"""A producer thread handing objects to a consumer in batches through a bounded queue.

The directory walk and sync's planner run in a thread of their own and hand their items (and
events) to the engine's thread this way, so memory stays flat however many files there are:
at most ``max_batches`` batches of ``batch`` objects wait in the queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from ..errors import CancelledError

__all__ = ["Handoff", "Stopped", "threaded"]

T = TypeVar("T")
_END = object()


class Stopped(Exception):
    """The consumer went away (cancelled, or done early); the producer unwinds."""


class Handoff(Generic[T]):
    """Producer thread -> consumer, in batches through a bounded queue.

    The producer's exception is raised again in the consumer; :meth:`stop` makes the
    producer's next :meth:`put` raise :class:`Stopped`."""

    def __init__(self, max_batches: int = 64, batch: int = 256, name: str = "s3pump-producer") -> None:
        self._q: queue.Queue[object] = queue.Queue(maxsize=max(1, max_batches))
        self._stop = threading.Event()
        self._batch: list[T] = []
        self._batch_size = batch
        self._failure: list[BaseException] = []
        self._name = name

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def put(self, obj: T) -> None:
        self._batch.append(obj)
        if len(self._batch) >= self._batch_size:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self._put(batch)

    def _put(self, obj: object) -> None:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                self._q.put(obj, timeout=0.2)
                return
            except queue.Full:
                continue

    def start(self, produce: Callable[[Handoff[T]], None]) -> None:
        """Run ``produce(self)`` in a daemon thread."""
        def run() -> None:
            try:
                produce(self)
                self.flush()
            except Stopped:
                pass
            except BaseException as e:  # surfaced in the consumer
                self._failure.append(e)
            finally:
                while not self._stop.is_set():
                    try:
                        self._q.put(_END, timeout=0.2)
                        break
                    except queue.Full:
                        continue

        threading.Thread(target=run, name=self._name, daemon=True).start()

    def __iter__(self) -> Iterator[T]:
        """The producer's objects, then its exception if it failed.

        Raises:
            CancelledError: :meth:`stop` was called (by a run's cancel, from any thread) before the
                producer finished: seen within 0.2 s, even while the producer is blocked (a stalled
                listing), so what was handed out so far is never taken for the whole.
        """
        while True:
            try:
                got = self._q.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    raise CancelledError("cancelled") from None
                continue
            if got is _END:
                break
            yield from got  # type: ignore[misc]
        if self._failure:
            raise self._failure[0]

    def stop(self) -> None:
        self._stop.set()


def threaded(source: Iterable[T], max_batches: int, name: str = "s3pump-walk") -> Iterator[T]:
    """Iterate ``source`` in a daemon thread; its objects arrive in batches through a bounded queue."""
    handoff: Handoff[T] = Handoff(max_batches, name=name)

    def produce(out: Handoff[T]) -> None:
        for obj in source:
            out.put(obj)

    handoff.start(produce)
    try:
        yield from handoff
    finally:
        handoff.stop()
