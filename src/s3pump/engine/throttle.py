"""A client-side request rate that backs off in a throttling storm, as the AWS SDKs' adaptive retry mode.

The AWS SDKs' adaptive mode (botocore ``retries/adaptive.py``, ``retries/throttling.py``) sends every
request through a token bucket whose rate follows CUBIC: a throttled answer sets the rate to
``BETA`` x the rate measured (or allowed) then, and successes grow it back along
``SCALE * (t - K)**3 + last_max`` (``K`` so that the curve starts at the cut rate), never above
twice the measured send rate.

:class:`ThrottleRate` is that, for the engine's data-plane requests (single PUTs, parts), with one
difference: it engages on a storm, not on one throttle: :data:`STORM_THROTTLES` throttled answers
in a row with no success between them (a lone SlowDown among successes is retried as before), and
it cuts at most once per :data:`CUT_INTERVAL_S` (the answers of every request in flight arrive
together). It is off with ``--concurrency auto``, whose AIMD already cuts on throttling. Once the
rate has grown back above what the run sends, the bucket stops limiting.
"""

from __future__ import annotations

import threading
import time

__all__ = ["ThrottleRate"]

BETA = 0.7
SCALE = 0.4
MIN_RATE_PER_S = 0.5
STORM_THROTTLES = 3
CUT_INTERVAL_S = 0.5
_MEASURE_BUCKET_S = 0.5
_SMOOTH = 0.8


class ThrottleRate:
    """The engine's request rate under throttling; thread-safe (the scheduler thread uses it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enabled = False
        self.rate_per_s = 0.0
        self._tokens = 0.0
        self._stamp = time.monotonic()
        self._in_a_row = 0
        self._last_cut = -1e9
        self._last_max = 0.0
        self._k = 0.0
        # the measured send rate (botocore's RateClocker): requests per bucket, smoothed
        self._measured = 0.0
        self._bucket_start = time.monotonic()
        self._bucket_count = 0

    # ------------------------------------------------------------------ sending
    def wait_s(self) -> float:
        """Seconds until a request may be sent (0.0: now); takes nothing."""
        if not self.enabled:
            return 0.0
        with self._lock:
            self._refill(time.monotonic())
            return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate_per_s

    def sent(self) -> None:
        """A request was sent: count it, and take its token when the rate is limited."""
        now = time.monotonic()
        with self._lock:
            self._clock(now)
            if self.enabled:
                self._refill(now)
                self._tokens -= 1.0

    # ------------------------------------------------------------------ answers
    def throttled(self) -> bool:
        """A request was throttled; True when the rate was cut."""
        now = time.monotonic()
        with self._lock:
            self._in_a_row += 1
            if self._in_a_row < STORM_THROTTLES or now - self._last_cut < CUT_INTERVAL_S:
                return False
            base = min(self._measured, self.rate_per_s) if self.enabled else max(self._measured, 1.0)
            self._last_max = max(base, MIN_RATE_PER_S)
            self._k = (self._last_max * (1 - BETA) / SCALE) ** (1 / 3)
            self._last_cut = now
            self._set_rate(now, max(MIN_RATE_PER_S, self._last_max * BETA))
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._in_a_row = 0
            if not self.enabled:
                return
            now = time.monotonic()
            cubic = SCALE * (now - self._last_cut - self._k) ** 3 + self._last_max
            new = min(cubic, 2 * max(self._measured, MIN_RATE_PER_S))
            if cubic > 4 * max(self._measured, 1.0) and now - self._last_cut > 2.0:
                self.enabled = False  # grown back past what the run sends: no limit any more
                return
            self._set_rate(now, max(MIN_RATE_PER_S, new))

    # ------------------------------------------------------------------ internals
    def _set_rate(self, now: float, rate: float) -> None:
        self._refill(now)
        self.rate_per_s = rate
        if not self.enabled:
            self.enabled = True
            self._tokens = min(self._tokens, 1.0)
        self._tokens = min(self._tokens, max(1.0, rate))

    def _refill(self, now: float) -> None:
        if self.rate_per_s > 0:
            self._tokens = min(max(1.0, self.rate_per_s), self._tokens + (now - self._stamp) * self.rate_per_s)
        self._stamp = now

    def _clock(self, now: float) -> None:
        self._bucket_count += 1
        elapsed = now - self._bucket_start
        if elapsed >= _MEASURE_BUCKET_S:
            rate = self._bucket_count / elapsed
            self._measured = rate * _SMOOTH + self._measured * (1 - _SMOOTH)
            self._bucket_count = 0
            self._bucket_start = now
