"""The engine's stop: what becomes of the requests in flight when a run is cancelled.

A single PUT already sent may be stored by the server whatever the client does next: cancelling it
only loses its answer, and a journal that never hears of the object sends the file again on the
rerun (a cluster's cancelled shard: every PUT in flight). So on cancel no new request starts, and
:func:`settle_in_flight` **waits** for the single PUTs in flight, each at most until its own request
timeout (:func:`~.inflight.timeout_for`, counted from when it was sent), and reports each outcome:
``FileDone`` (with its ETag) for every PUT the server answered as stored; nothing for one cancelled
at its timeout or failed for a retryable reason (not done: the rerun sends it), ``FileFailed`` for
one that failed for good (e.g. AccessDenied). A PUT whose answer never comes is never reported done.

Parts of multipart uploads are cancelled at once, as before: the uploads are aborted (or kept for the
resume journal) right after; a part stored meanwhile is still reported (``PartDone``).

A second Ctrl-C (:meth:`Engine.hurry <.scheduler.Engine.hurry>`) cancels what is still in flight and
stops the wait (the aborts are still sent).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

from ..errors import S3PumpError
from ..events import EventBus, FileFailed
from ..store.base import PutResult
from .inflight import Req, Settled
from .put import SinglePuts

__all__ = ["CANCELLED_GRACE_S", "settle_in_flight"]

#: Seconds to wait for the answer of a request once it was cancelled (awscrt answers a cancelled
#: request at once; this bounds a store that does not).
CANCELLED_GRACE_S = 10.0


def settle_in_flight(inflight: dict[int, Req], answers: queue.SimpleQueue[Any], puts: SinglePuts, bus: EventBus,
                     hurried: Callable[[], bool], *, grace_s: float = CANCELLED_GRACE_S) -> None:
    """Wait for the requests in ``inflight`` (the engine's, keyed by ``id(req)``) to settle, taking
    their answers (:class:`~.inflight.Settled`) off the scheduler's queue ``answers``: parts are
    cancelled at once; single PUTs are waited for, each cancelled at ``req.started + req.timeout_s``.
    Each PUT's outcome is reported on ``bus`` (see the module docstring); other messages on the queue
    (control-plane answers, wake-ups) are left to the caller's drain. Returns once nothing is in
    flight, or once ``hurried()`` (everything left cancelled, not waited for), or at the latest
    ``grace_s`` seconds after the last PUT's deadline. Runs on the scheduler thread."""
    for req in list(inflight.values()):
        if req.mp is not None:
            _cancel(req)
    others: list[object] = []
    _take_answered(inflight, answers, puts, bus, others)
    for key, req in list(inflight.items()):
        if req.handle is None:  # its send raised (not an S3PumpError) before the store took it: no answer
            del inflight[key]
            SinglePuts.close_file(req)
    deadline = max((r.started + r.timeout_s for r in inflight.values() if r.mp is None), default=0.0)
    deadline = max(deadline, time.monotonic()) + grace_s
    while inflight and time.monotonic() < deadline:
        if hurried():
            for req in list(inflight.values()):
                _cancel(req)
            break
        now = time.monotonic()
        for req in list(inflight.values()):
            if req.mp is None and not req.timed_out and now > req.started + req.timeout_s:
                _cancel(req)  # its answer never came: not done (the server may still store it)
        try:
            msg = answers.get(timeout=0.2)
        except queue.Empty:
            continue
        _handle(msg, inflight, puts, bus, others)
    for msg in others:  # back for the caller (the control pool's answers)
        answers.put(msg)


def _take_answered(inflight: dict[int, Req], answers: queue.SimpleQueue[Any], puts: SinglePuts, bus: EventBus,
                   others: list[object]) -> None:
    """Report the requests whose answers are on the queue already (without waiting)."""
    while True:
        try:
            msg = answers.get_nowait()
        except queue.Empty:
            return
        _handle(msg, inflight, puts, bus, others)


def _handle(msg: object, inflight: dict[int, Req], puts: SinglePuts, bus: EventBus, others: list[object]) -> None:
    """One message off the queue: a request of ``inflight`` settled (reported), or kept in ``others``."""
    if not isinstance(msg, Settled):
        others.append(msg)
    elif inflight.pop(id(msg.req), None) is not None:
        _settled(msg.req, msg.result, puts, bus)


def _cancel(req: Req) -> None:
    req.timed_out = True  # stopped by us: its error is not the file's
    if req.handle is not None:
        req.handle.cancel()


def _settled(req: Req, result: PutResult | S3PumpError, puts: SinglePuts, bus: EventBus) -> None:
    """Report one request that settled during the stop."""
    req.handle = None
    if req.mp is not None:
        if isinstance(result, PutResult):
            req.mp.late_part_done(req, result)  # the journal keeps it for the rerun
        return
    if isinstance(result, PutResult):
        puts.late_success(req, result)  # FileDone: the object exists
        return
    SinglePuts.close_file(req)
    if not result.retryable and not req.timed_out:  # failed for good, not by the stop
        item = req.item
        bus.emit(FileFailed(item.source, item.key, item.size_bytes, result))
