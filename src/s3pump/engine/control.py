"""The engine's control pool: control-plane calls (CreateMultipartUpload, ListParts,
CompleteMultipartUpload, AbortMultipartUpload, a torn object's DeleteObjects) on a few threads of
their own, so a slow call never holds up the scheduler thread.

A call's answer (its result, or the :class:`~s3pump.errors.S3PumpError` it raised) is put on the
scheduler's queue as an :class:`Answered`; its handler then runs on the scheduler thread
(:meth:`ControlPool.answered`), so handlers share no state with the pool's threads. At shutdown
the scheduler waits for every call (:meth:`ControlPool.wait_all`) and runs the last aborts here
too (:meth:`ControlPool.run_all`), not on its own thread.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import S3PumpError

__all__ = ["THREAD_NAME_PREFIX", "Answered", "ControlPool"]

_log = logging.getLogger("s3pump.engine")

#: The pool's threads are named ``s3pump-control_N``.
THREAD_NAME_PREFIX = "s3pump-control"

T = TypeVar("T")


@dataclass(slots=True)
class Answered:
    """A control-plane call returned (put on the scheduler's queue by a control thread)."""

    handler: Callable[[Any], None]
    result: Any
    creates: Any = None  # the MultipartUpload a CreateMultipartUpload was sent for


class ControlPool:
    """``workers`` threads running control-plane calls; answers go to ``answers`` (the scheduler's queue).

    :meth:`call` and :meth:`answered` are for the scheduler thread only.
    """

    def __init__(self, answers: queue.SimpleQueue[Any], workers: int = 4) -> None:
        self._answers = answers
        self._pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=THREAD_NAME_PREFIX)
        self._futures: set[cf.Future[None]] = set()
        #: calls submitted whose answer the scheduler has not handled yet
        self.pending = 0

    def call(self, handler: Callable[[Any], None], fn: Callable[..., Any], *args: Any,
             creates: Any = None, delay_s: float = 0.0) -> None:
        """Run ``fn(*args)`` on a control thread (after ``delay_s`` seconds); ``handler(result or
        error)`` then runs on the scheduler thread. An exception other than an S3PumpError (a bug)
        is logged and answered as an S3PumpError: it fails the file, never leaves the run waiting."""
        self.pending += 1
        answers = self._answers

        def work() -> None:
            if delay_s:
                time.sleep(delay_s)
            try:
                result: Any = fn(*args)
            except S3PumpError as e:
                result = e
            except Exception as e:
                _log.exception("control-plane call %s failed", getattr(fn, "__name__", fn))
                result = S3PumpError(f"internal error in {getattr(fn, '__name__', 'a control call')}: {e!r}")
            answers.put(Answered(handler, result, creates))

        self._futures = {f for f in self._futures if not f.done()}
        self._futures.add(self._pool.submit(work))

    def answered(self, msg: Answered) -> None:
        """Run the handler of an answer taken off the queue (scheduler thread)."""
        self.pending -= 1
        msg.handler(msg.result)

    def wait_all(self) -> None:
        """Block until every call submitted so far has returned (its answer is on the queue)."""
        cf.wait(list(self._futures))
        self._futures.clear()

    def run_all(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Run each of ``calls`` on the pool and wait for all of them; their results, in order.
        Raises what a call raised."""
        futures = [self._pool.submit(c) for c in calls]
        return [f.result() for f in futures]

    def close(self) -> None:
        """Stop taking calls; calls still running finish on their own (not waited for)."""
        self._pool.shutdown(wait=False)
