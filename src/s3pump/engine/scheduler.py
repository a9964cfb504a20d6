"""The transfer engine: every job's uploads run through :class:`Engine`.

One scheduler thread owns all state. Store callbacks (awscrt threads) and the control pool
(:mod:`~s3pump.engine.control`) only put answers on a queue; the scheduler takes them off, decides
(done, retry, fail, next part) and emits events: no state is shared between threads, and subscribers
need no locks. A single PUT's lifecycle is :mod:`~s3pump.engine.put`'s, a multipart upload's
:mod:`~s3pump.engine.multipart_upload`'s; here are the loop, the slots, the retries, the timeouts and
the shutdown. Bounds enforced here:

* requests in flight (single PUTs + parts) <= ``concurrency`` (:mod:`~s3pump.engine.gate`)
* part buffers held (in flight or awaiting retry) <= ``max_parts_in_flight``,
  so multipart memory <= ``max_parts_in_flight * part_size_bytes``
* active multipart uploads <= ``max_parts_in_flight``; while one more large item
  waits, no further items are pulled from the source (the source's own bounded
  queue then applies back-pressure to the walk).

A retryable failure is retried as the run's :class:`~s3pump.retry.RetryPolicy` decides; what still
fails is a :class:`~s3pump.events.FileFailed`, never dropped. Every way out (failure, source change,
cancel) aborts an open upload through the run's registry (:class:`~s3pump.engine.uploads.OpenUploads`),
on the control pool. No signal handlers: :meth:`Engine.cancel` is thread-safe; the Run calls it.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator

from ..config import TransferConfig
from ..errors import CancelledError, S3PumpError
from ..events import EventBus, FileFailed, RetryScheduled, Tick
from ..fileid import FileIdentity
from ..items import UploadItem
from ..retry import RetryPolicy
from ..store.base import PutResult, Store
from ..store.body import SentBytes
from .cancel import settle_in_flight
from .control import Answered, ControlPool
from .gate import RequestGate
from .inflight import Req, Settled, final_error, log_settled, timeout_for
from .limits import EngineLimits
from .multipart_upload import MultipartContext, MultipartUpload
from .put import SinglePuts
from .uploads import OpenUploads, report_abort

__all__ = ["Engine"]


class Engine:
    """Runs :class:`UploadItem` s against a :class:`~s3pump.store.base.Store`.

    ``run`` may be called once. ``cancel()`` may be called from any thread (e.g. a
    signal handler): no request starts any more, the single PUTs in flight are waited for
    (each at most its request timeout) and reported (:mod:`~s3pump.engine.cancel`), parts in
    flight are cancelled and open multipart uploads aborted, and ``run`` raises
    :class:`~s3pump.errors.CancelledError`. With
    ``keep_uploads_on_cancel`` (a resume journal records them), open multipart uploads
    are left for a rerun to resume instead (``s3pump cleanup`` aborts orphans).

    ``policy`` and ``uploads`` are the run's retry policy and upload registry (a
    :class:`~s3pump.run.Run` passes its own); by default the engine makes its own, and the
    policy's retries are reported as :class:`~s3pump.events.RetryScheduled` on ``bus``.
    ``limits``: limits shared with other engines of this process (a cluster worker's); by default
    the engine makes its own from ``config``.
    """

    def __init__(self, store: Store, bucket: str, config: TransferConfig, bus: EventBus, *,
                 keep_uploads_on_cancel: bool = False, policy: RetryPolicy | None = None,
                 uploads: OpenUploads | None = None, limits: EngineLimits | None = None) -> None:
        self.keep_uploads_on_cancel = keep_uploads_on_cancel
        self.store = store
        self.bucket = bucket
        self.config = config
        self.bus = bus
        if policy is None:
            def on_retry(what: tuple[str, int | None], attempt: int, delay_s: float, error: S3PumpError) -> None:
                bus.emit(RetryScheduled(what[0], what[1], attempt, delay_s, error))

            policy = RetryPolicy.from_config(config, on_retry)
        self.policy = policy
        self.uploads = uploads if uploads is not None else OpenUploads(store, bucket, policy)
        self._q: queue.SimpleQueue[Settled | Answered | None] = queue.SimpleQueue()
        self._inflight: dict[int, Req] = {}
        self._buffers = 0
        self._retries: list[tuple[float, int, Req]] = []
        self._seq = itertools.count()
        self._held: UploadItem | None = None  # a large item waiting for a multipart slot
        self._control = ControlPool(self._q)
        self._cancel = threading.Event()
        self._stopping = False  # _shutdown runs (see hurry)
        self._hurry = False  # stop waiting for in-flight requests; the aborts are still sent
        self._mp = MultipartContext(store, bucket, config, bus, policy, self.uploads, self._control, self._cancel,
                                    self.wakeup)
        self._puts = SinglePuts(store, bucket, config, bus, self._control)
        self._last_timeout_check = 0.0
        self._last_tick = 0.0
        # per-request debug lines cost nothing otherwise
        self._debug = logging.getLogger("s3pump.engine").isEnabledFor(logging.DEBUG)
        self._gate = RequestGate(config, bus, limits)  # concurrency, requests/s (engine/gate.py)

    # ------------------------------------------------------------------ public
    def cancel(self) -> None:
        """Ask the run to stop; thread-safe."""
        self._cancel.set()
        self.wakeup()

    @property
    def stopping(self) -> bool:
        """The engine is stopping (aborting or keeping its open uploads); thread-safe."""
        return self._stopping

    def hurry(self) -> None:
        """While stopping, stop waiting for in-flight requests (a second Ctrl-C); the aborts are still sent."""
        self._hurry = True
        self.wakeup()

    def wakeup(self) -> None:
        """Wake the scheduler (a part source has a part ready); thread-safe."""
        self._q.put(None)

    def run(self, items: Iterable[UploadItem]) -> None:
        """Upload every item; return when all are done or failed (events tell which).

        Raises:
            CancelledError: ``cancel()`` was called or the thread got KeyboardInterrupt.
        """
        it: Iterator[UploadItem] = iter(items)
        exhausted = False
        try:
            while True:
                if self._cancel.is_set():
                    raise KeyboardInterrupt
                self._drain()
                self._fire_due_retries()
                self._feed_multiparts()
                while not exhausted and self._can_pull() and not self._cancel.is_set():
                    item = self._held
                    if item is None:
                        try:
                            item = next(it)
                        except StopIteration:
                            exhausted = True
                            break
                    self._held = None
                    self._start_item(item)
                    self._drain()
                    self._feed_multiparts()
                if exhausted and self._idle() and not self._cancel.is_set():
                    return
                self._wait()
                self._check_timeouts()
                self._tick()
        except KeyboardInterrupt:
            kept = self._shutdown()
            if kept:
                raise CancelledError(f"cancelled; {kept} multipart upload(s) kept for the resume journal: "
                                     "running the same job again resumes them", kept_uploads=kept) from None
            raise CancelledError("cancelled; in-flight multipart uploads were aborted") from None
        except BaseException:  # not ours to handle (an item source or a subscriber failed): leave nothing open
            self.keep_uploads_on_cancel = False
            with contextlib.suppress(Exception):
                self._shutdown()
            raise
        finally:
            self._control.close()

    # ------------------------------------------------------------------ slots and limits
    def _slot_free(self) -> bool:
        """A request may start now: under the concurrency limit and the request rate."""
        return self._gate.may_send(len(self._inflight))

    def _tick(self) -> None:
        """Adaptive concurrency closes its windows; about twice a second a Tick event reports state."""
        self._gate.adjust()
        now = time.monotonic()
        if now - self._last_tick < 0.5:
            return
        self._last_tick = now
        sending = sum(req.sent.n for req in self._inflight.values() if req.sent is not None)
        self.bus.emit(Tick(len(self._inflight), self._gate.limit, self._buffers, self.policy.budget.tokens,
                           sending))

    def _can_pull(self) -> bool:
        if not self._slot_free():
            return False
        if self._held is not None:
            return self._mp.count < self.config.max_parts_in_flight
        # don't start new work while active multipart uploads could use the request slots
        return not (self._mp.active and self._buffers < self.config.max_parts_in_flight)

    def _idle(self) -> bool:
        return not (self._inflight or self._retries or self._mp.count or self._control.pending or self._held)

    # ------------------------------------------------------------------ the queue
    def _wait(self) -> None:
        timeout = 0.5
        if self._retries:
            timeout = max(0.0, min(timeout, self._retries[0][0] - time.monotonic()))
        if self._gate.wait_s:
            timeout = min(timeout, self._gate.wait_s)
            self._gate.wait_s = 0.0
        try:
            msg = self._q.get(timeout=timeout)
        except queue.Empty:
            return
        self._dispatch(msg)

    def _drain(self) -> None:
        q = self._q
        while True:
            try:
                msg = q.get_nowait()
            except queue.Empty:
                return
            self._dispatch(msg)

    def _dispatch(self, msg: Settled | Answered | None) -> None:
        if isinstance(msg, Settled):
            self._on_settled(msg.req, msg.result)
        elif isinstance(msg, Answered):
            self._control.answered(msg)

    # ------------------------------------------------------------------ items and requests
    def _start_item(self, item: UploadItem) -> None:
        if item.error is not None:
            self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, item.error))
            return
        if item.path is not None and item.identity is None:
            # a producer that did not stat the file: the version checked after the upload is the one
            # found now, before any byte is read (mtime_ns 0 may mean "not given", and 0 is a real mtime)
            with contextlib.suppress(OSError):
                item.identity = FileIdentity.of_path(item.path, follow=self.config.follow_symlinks)
        large = item.path is not None and item.size_bytes > self.config.multipart_threshold_bytes
        if item.parts is not None or large:
            if self._mp.count >= self.config.max_parts_in_flight:
                self._held = item
                return
            MultipartUpload.start(self._mp, item)
            return
        now = time.monotonic()
        self._send(Req(item, started=now, first_started=now))

    def _feed_multiparts(self) -> None:
        """Hand out parts of active multipart uploads, round-robin, within the buffer and request bounds."""
        max_buffers = self.config.max_parts_in_flight
        active = self._mp.active
        idle = 0  # uploads in a row that had no part ready
        while active and idle < len(active):
            if self._buffers >= max_buffers or not self._slot_free():
                return
            mp = active[0]
            nxt = mp.next_part()
            if nxt is False:  # every part handed out, or the upload failed
                active.popleft()
                continue
            active.rotate(-1)  # round-robin between uploads
            if nxt is None:  # a stream with no part ready yet; its source will wake us
                idle += 1
                continue
            idle = 0
            number, body = nxt
            self._buffers += 1
            now = time.monotonic()
            self._send(Req(mp.item, mp, number, body, started=now, first_started=now))

    def _send(self, req: Req) -> None:
        """Start (or restart) the request ``req`` on the store."""
        item = req.item
        req.started = time.monotonic()
        req.timed_out = False
        size = len(req.body) if req.body is not None else (len(item.body) if item.body is not None
                                                            else item.size_bytes)
        req.timeout_s = timeout_for(size, self.config.request_timeout_s)
        self._inflight[id(req)] = req
        self._gate.sent()
        q = self._q
        bw = self._gate.bandwidth
        req.sent = None if bw is None else SentBytes()

        def done(result: PutResult | S3PumpError) -> None:
            q.put(Settled(req, result))

        try:
            if req.mp is None:
                self._puts.send(req, bw, done)
                return
            req.mp.send_part(req, bw, done)
        except S3PumpError as e:  # refused before it started (e.g. credentials, unreadable file)
            done(e)

    def _on_settled(self, req: Req, result: PutResult | S3PumpError) -> None:
        """A PUT or part came back: retried, failed, or done (the PUT's checks, or the part recorded)."""
        self._inflight.pop(id(req), None)
        req.handle = None  # break req -> handle -> store request -> on_done -> req: the cycle pins the body
        item, mp = req.item, req.mp
        if self._debug:
            log_settled(req, result, self.bucket)
        SinglePuts.close_file(req)  # a PUT's file (a part has none)
        if isinstance(result, S3PumpError):
            error = final_error(req, result, self.bucket, follow=self.config.follow_symlinks)
            if mp is None:
                if not self._retry_or_fail(req, error):
                    self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, error))
                return
            if mp.failed is None and self._retry_or_fail(req, error):
                return
            mp.part_failed(error)
            self._release_part(req)
            return
        self.policy.succeeded(req.retried_after)
        size = item.size_bytes if mp is None else len(req.body or b"")
        self._gate.succeeded(size, time.monotonic() - req.started)
        if mp is None:
            self._puts.succeeded(req, result)
            return
        mp.part_done(req.part_number, size, result, time.monotonic() - req.first_started)
        self._release_part(req)

    def _release_part(self, req: Req) -> None:
        assert req.mp is not None
        self._buffers -= 1
        req.body = None
        req.mp.release_part(req.part_number)  # the source may reuse the part's buffer now

    # ------------------------------------------------------------------ retries and timeouts
    def _retry_or_fail(self, req: Req, error: S3PumpError) -> bool:
        """Schedule a retry of ``req`` if allowed; False if the error is final."""
        self._gate.failed(error)
        if self._cancel.is_set():
            return False
        delay = self.policy.decide(error, req.attempt, (req.item.key, req.part_number or None))
        if delay is None:
            return False
        req.attempt += 1
        req.retried_after = error
        heapq.heappush(self._retries, (time.monotonic() + delay, next(self._seq), req))
        return True

    def _fire_due_retries(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now and self._slot_free():
            _, _, req = heapq.heappop(self._retries)
            if req.mp is not None and req.mp.failed is not None:
                self._release_part(req)
                continue
            self._send(req)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        if now - self._last_timeout_check < 1.0:
            return
        self._last_timeout_check = now
        for req in list(self._inflight.values()):
            if not req.timed_out and now - req.started > req.timeout_s and req.handle is not None:
                req.timed_out = True
                req.handle.cancel()

    # ------------------------------------------------------------------ cancellation
    def _shutdown(self) -> int:
        """Stop everything; abort the run's open multipart uploads on the control pool and wait for
        the aborts (or keep the uploads, see ``keep_uploads_on_cancel``). Returns how many were kept."""
        self._stopping = True
        self._cancel.set()
        # single PUTs in flight are waited for and reported (FileDone: a journal knows the object exists)
        settle_in_flight(self._inflight, self._q, self._puts, self.bus, lambda: self._hurry)
        # wait for CreateMultipartUpload calls still running: the registry has their uploads then
        self._control.wait_all()
        with contextlib.suppress(queue.Empty):
            while True:
                msg = self._q.get_nowait()
                if isinstance(msg, Answered) and msg.creates is not None and isinstance(msg.result, str):
                    # the journal must know it to resume or clean it
                    msg.creates.adopt_created(msg.result, announce=self.keep_uploads_on_cancel)
        opened = list(self._mp.open.items())
        self._mp.open.clear()
        if self.keep_uploads_on_cancel:
            for upload_id, _ in opened:
                self.uploads.release(upload_id)
            return len(opened)
        errors = self._control.run_all([functools.partial(self.uploads.abort, mp.item.key, upload_id)
                                        for upload_id, mp in opened])
        for (upload_id, mp), error in zip(opened, errors, strict=True):
            report_abort(self.bus, self.bucket, mp.item.key, upload_id, error, "cancelled")
        return 0
