"""The engine's request gate: how many requests may be in flight (``--concurrency``, or adaptive
concurrency's limit) and how fast they may start (``--rps``, or the lowered rate of a throttling
storm, as the AWS SDKs' adaptive retry mode). The scheduler counts its slots against :attr:`limit`
and asks :meth:`RequestGate.may_send` before each request. Scheduler thread only.
"""

from __future__ import annotations

import logging
import time

from ..config import TransferConfig
from ..errors import S3PumpError, ThrottlingError
from ..events import ConcurrencyChanged, EventBus
from .limits import ConcurrencyDecision, EngineLimits
from .throttle import ThrottleRate

__all__ = ["RequestGate"]

_log = logging.getLogger("s3pump.engine")


class RequestGate:
    """The limits of one engine: ``limits`` shared with other engines of the process (a cluster
    worker's), else its own from ``config``; a concurrency change is told on ``bus``."""

    def __init__(self, config: TransferConfig, bus: EventBus, limits: EngineLimits | None = None) -> None:
        self.bus = bus
        lim = limits if limits is not None else EngineLimits.from_config(config)
        self.rps = lim.rps
        self.bandwidth = lim.bandwidth  # bytes/s as sent (--bwlimit), paced by the bodies
        self.adaptive = lim.adaptive
        #: requests that may be in flight
        self.limit = self.adaptive.limit if self.adaptive is not None else config.concurrency
        #: seconds until the request rate allows the next request (set by may_send, 0 when it does)
        self.wait_s = 0.0
        # a throttling storm lowers the request rate, as the AWS SDKs' adaptive mode (AIMD does it when adaptive)
        self._throttle = ThrottleRate() if self.adaptive is None else None

    def may_send(self, in_flight: int) -> bool:
        """A request may start now: ``in_flight`` is under the limit, and the request rate allows it."""
        if in_flight >= self.limit:
            return False
        throttle = self._throttle
        if throttle is not None and throttle.enabled:
            wait_s = throttle.wait_s()
            if wait_s > 0.0:
                self.wait_s = wait_s
                return False
        if self.rps is not None:
            self.wait_s = self.rps.wait_s()
            return self.wait_s == 0.0
        return True

    def sent(self) -> None:
        """A request started (after :meth:`may_send` said it may)."""
        if self.rps is not None:
            self.rps.try_take()  # may_send saw the token; only the scheduler thread takes them
        if self._throttle is not None:
            self._throttle.sent()

    def succeeded(self, size_bytes: int, latency_s: float) -> None:
        """A request of ``size_bytes`` succeeded after ``latency_s`` seconds."""
        if self._throttle is not None:
            self._throttle.succeeded()
        if self.adaptive is not None:
            self.adaptive.on_success(size_bytes, latency_s)

    def failed(self, error: S3PumpError) -> None:
        """A request failed: a throttling answer lowers the concurrency (adaptive) or the request rate."""
        if not isinstance(error, ThrottlingError):
            return
        if self.adaptive is not None:
            self._apply(self.adaptive.on_throttled())
        if self._throttle is not None and self._throttle.throttled():
            _log.debug("throttled: request rate cut to %.1f/s", self._throttle.rate_per_s)

    def adjust(self) -> None:
        """Adaptive concurrency closes its measuring windows (and may change :attr:`limit`)."""
        if self.adaptive is not None:
            self._apply(self.adaptive.maybe_adjust(time.monotonic()))

    def _apply(self, decision: ConcurrencyDecision | None) -> None:
        if decision is None:
            return
        self.limit = decision.new
        _log.debug("concurrency %d -> %d (%s; %.1f MB/s, p50 latency %.1f ms)", decision.old, decision.new,
                   decision.reason, decision.throughput_bps / 1e6, decision.latency_s * 1e3)
        self.bus.emit(ConcurrencyChanged(decision.old, decision.new, decision.reason, decision.throughput_bps,
                                         decision.latency_s))
