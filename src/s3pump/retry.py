"""The one retry policy: how many attempts, how long to wait, and a run-wide retry budget.

Every caller that retries (the engine's scheduler, its control-plane calls, the store's synchronous
calls, a run's single PUTs and deletes) asks the same :class:`RetryPolicy`, so every retry spends
the same budget and is reported through the same ``on_retry`` hook (the run turns it into a
:class:`~s3pump.events.RetryScheduled` event, which the summary counts).

Backoff follows "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015):
``delay = uniform(0, min(cap, base * 2**attempt))``. The budget follows the AWS SDKs' standard
retry mode: a retry spends tokens (5; 10 after a timeout); a success refunds one, or, if it was a
retry, that retry's whole cost; an empty bucket means no more retries. So retries that work (a
flaky network) cost nothing in the long run, while a dead endpoint, whose retries all fail, drains
the bucket and cannot start a storm.

This module sits at the bottom of the import graph (it imports only :mod:`s3pump.errors`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from .errors import ClockSkewError, NetworkError, RequestTimeoutError, S3PumpError, ThrottlingError

__all__ = ["RetryBudget", "RetryHook", "RetryPolicy", "backoff_delay_s"]

RETRY_COST = 5
#: Backoff during an outage: full jitter between these bounds (s), so a returning endpoint is seen soon.
OUTAGE_BACKOFF_MIN_S = 0.2
#: Connection errors in a row, with no success between them: the endpoint is down, not one request unlucky.
OUTAGE_FAILURES = 3
OUTAGE_BACKOFF_CAP_S = 5.0
#: Attempts an outage may add to one request (about two minutes of capped backoff): a request that fails
#: alone, while others succeed, cannot be retried forever.
OUTAGE_EXTRA_ATTEMPTS = 50
#: Ceiling of one backoff in a throttling storm, whatever ``backoff_max_s`` says (at least): a storm of
#: ``outage_tolerance_s`` must not use up a request's extra attempts.
THROTTLE_BACKOFF_CAP_S = 1.0
TIMEOUT_RETRY_COST = 10
SUCCESS_REFUND = 1

T = TypeVar("T")
#: ``on_retry(what, attempt, delay_s, error)``: ``what`` names the request (a key, or a key and a
#: part number); ``attempt`` is the number of the attempt about to be made (2 for the first retry).
RetryHook = Callable[[tuple[str, int | None], int, float, S3PumpError], None]

_rng = random.Random()


def backoff_delay_s(attempt: int, base_s: float, cap_s: float, rng: random.Random = _rng) -> float:
    """Full-jitter delay before retry number ``attempt`` (1-based), in seconds."""
    return rng.uniform(0.0, min(cap_s, base_s * (2 ** min(attempt, 30))))


class RetryBudget:
    """Token bucket of retries for one run; thread-safe (the scheduler and the control-plane
    threads share it)."""

    __slots__ = ("_capacity", "_lock", "_tokens", "retries")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._tokens = capacity
        self._lock = threading.Lock()
        self.retries = 0

    @property
    def tokens(self) -> int:
        return self._tokens

    @staticmethod
    def cost_of(error: S3PumpError) -> int:
        return TIMEOUT_RETRY_COST if isinstance(error, RequestTimeoutError) else RETRY_COST

    def try_spend(self, error: S3PumpError) -> bool:
        """Take the tokens for one retry after ``error``; False when the budget is spent."""
        cost = self.cost_of(error)
        with self._lock:
            if self._tokens < cost:
                return False
            self._tokens -= cost
            self.retries += 1
            return True

    def refund(self, retried_after: S3PumpError | None = None) -> None:
        """A request succeeded: give back one token, or, when it succeeded on a retry after
        ``retried_after``, that retry's cost (AWS SDKs' standard mode); up to the capacity."""
        gain = SUCCESS_REFUND if retried_after is None else self.cost_of(retried_after)
        with self._lock:
            self._tokens = min(self._capacity, self._tokens + gain)


class RetryPolicy:
    """Attempts, full-jitter backoff and one :class:`RetryBudget`, shared by all of a run's callers.

    ``decide`` is the whole decision (the scheduler uses it to put a request back on its timer
    heap); ``call`` is the one blocking retry loop, for synchronous control-plane calls.

    Outages: once the endpoint has answered a request of this run, a connection error or timeout
    (:class:`~s3pump.errors.NetworkError`, :class:`~s3pump.errors.RequestTimeoutError`) is judged by
    what happened since the last success. Fewer than :data:`OUTAGE_FAILURES` such errors in a row
    (others still succeed: a flaky connection): the ordinary attempts, but no budget. From
    :data:`OUTAGE_FAILURES` in a row with nothing succeeding between them (the endpoint is down or
    frozen) until ``outage_tolerance_s`` after the last success: retried without spending attempts or
    budget, with full jitter between :data:`OUTAGE_BACKOFF_MIN_S` and :data:`OUTAGE_BACKOFF_CAP_S`, up
    to :data:`OUTAGE_EXTRA_ATTEMPTS` more attempts per request. So an outage shorter than the
    tolerance costs time, not files. Past the tolerance the ordinary rules apply; an endpoint that
    never answered gets them from the start, so a wrong endpoint fails fast.

    Throttling (:class:`~s3pump.errors.ThrottlingError`: 503 SlowDown, 429) is an answer: the endpoint
    is there and asks for less. Until ``outage_tolerance_s`` has passed since the throttling began
    (the first throttle after the last success), a throttled request is retried without spending
    attempts or budget, with full jitter of at least :data:`OUTAGE_BACKOFF_MIN_S`, up to
    :data:`OUTAGE_EXTRA_ATTEMPTS` more attempts; the engine meanwhile lowers its request rate
    (engine/throttle.py). So a throttling storm costs time, not files.

    A skewed clock (:class:`~s3pump.errors.ClockSkewError`) gets one retry (signed anew), no more.
    """

    def __init__(self, *, max_attempts: int = 6, backoff_base_s: float = 0.1, backoff_max_s: float = 20.0,
                 budget: RetryBudget | int = 500, on_retry: RetryHook | None = None,
                 outage_tolerance_s: float = 0.0) -> None:
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.budget = budget if isinstance(budget, RetryBudget) else RetryBudget(budget)
        self.on_retry = on_retry
        self.outage_tolerance_s = outage_tolerance_s
        self._last_success: float | None = None  # monotonic time of the last success
        self._failures_in_a_row = 0  # connection errors and timeouts since the last success
        self._throttled_since: float | None = None  # monotonic time of the first throttle since the last success

    @classmethod
    def from_config(cls, config: object, on_retry: RetryHook | None = None) -> RetryPolicy:
        """The policy of a :class:`~s3pump.config.TransferConfig` (``max_attempts``, ``backoff_base_s``,
        ``backoff_max_s``, ``retry_budget``)."""
        return cls(max_attempts=config.max_attempts, backoff_base_s=config.backoff_base_s,  # type: ignore[attr-defined]
                   backoff_max_s=config.backoff_max_s, budget=config.retry_budget,  # type: ignore[attr-defined]
                   on_retry=on_retry, outage_tolerance_s=getattr(config, "outage_tolerance_s", 0.0))

    @property
    def retries(self) -> int:
        """Retries granted so far (every caller's)."""
        return self.budget.retries

    def decide(self, error: S3PumpError, attempt: int, what: tuple[str, int | None] = ("", None)) -> float | None:
        """After attempt number ``attempt`` failed with ``error``: the delay in seconds before the
        next attempt (the budget is spent and ``on_retry`` told), or None when the error is final
        (not retryable, attempts used up, or the budget spent)."""
        if self._throttled(error, attempt):
            cap_s = min(OUTAGE_BACKOFF_CAP_S, max(self.backoff_max_s, THROTTLE_BACKOFF_CAP_S))
            delay = max(OUTAGE_BACKOFF_MIN_S,
                        backoff_delay_s(attempt, max(self.backoff_base_s, OUTAGE_BACKOFF_MIN_S), cap_s))
            if self.on_retry is not None:
                self.on_retry(what, attempt + 1, delay, error)
            return delay
        if isinstance(error, ClockSkewError):  # once, signed anew; then the run stops (errors.stops_run)
            if attempt >= 2:
                return None
            delay = backoff_delay_s(attempt, self.backoff_base_s, self.backoff_max_s)
            if self.on_retry is not None:
                self.on_retry(what, attempt + 1, delay, error)
            return delay
        outage = self._outage(error, attempt)
        if outage == "down":
            delay = max(OUTAGE_BACKOFF_MIN_S, backoff_delay_s(attempt, max(self.backoff_base_s, OUTAGE_BACKOFF_MIN_S),
                                                              min(self.backoff_max_s, OUTAGE_BACKOFF_CAP_S)))
            if self.on_retry is not None:
                self.on_retry(what, attempt + 1, delay, error)
            return delay
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if outage != "flaky" and not self.budget.try_spend(error):
            return None
        delay = backoff_delay_s(attempt, self.backoff_base_s, self.backoff_max_s)
        if self.on_retry is not None:
            self.on_retry(what, attempt + 1, delay, error)
        return delay

    def succeeded(self, retried_after: S3PumpError | None = None) -> None:
        """A request succeeded (after a retry following ``retried_after``, if given): refund the budget;
        the endpoint answers (an outage, if any, is over)."""
        self.budget.refund(retried_after)
        self._last_success = time.monotonic()
        self._failures_in_a_row = 0
        self._throttled_since = None

    def _throttled(self, error: S3PumpError, attempt: int) -> bool:
        """A throttled request within the tolerance of its storm: retried free (see the class docstring)."""
        if not isinstance(error, ThrottlingError) or self.outage_tolerance_s <= 0:
            return False
        now = time.monotonic()
        since = self._throttled_since
        if since is None:  # under the GIL; the first thread to see the storm sets its start
            since = self._throttled_since = now
        return now - since < self.outage_tolerance_s and attempt < self.max_attempts + OUTAGE_EXTRA_ATTEMPTS

    def _outage(self, error: S3PumpError, attempt: int) -> str | None:
        """``"down"``, ``"flaky"`` or None (not a connection error of an endpoint that answered within the
        tolerance): see the class docstring."""
        last = self._last_success
        if last is None or self.outage_tolerance_s <= 0 or not isinstance(error, NetworkError | RequestTimeoutError):
            return None
        if time.monotonic() - last >= self.outage_tolerance_s:
            return None
        self._failures_in_a_row += 1  # under the GIL; an approximate count is all this needs
        if self._failures_in_a_row >= OUTAGE_FAILURES and attempt < self.max_attempts + OUTAGE_EXTRA_ATTEMPTS:
            return "down"
        return "flaky"

    def call(self, fn: Callable[..., T], *args: object, what: tuple[str, int | None] = ("", None),
             **kwargs: object) -> T:
        """``fn(*args, **kwargs)``, retried while :meth:`decide` allows. Only for idempotent calls.

        Raises:
            S3PumpError: the last error, once it is final.
        """
        attempt = 1
        retried_after: S3PumpError | None = None
        while True:
            try:
                result = fn(*args, **kwargs)
            except S3PumpError as e:
                delay = self.decide(e, attempt, what)
                if delay is None:
                    raise
                attempt += 1
                retried_after = e
                time.sleep(delay)
                continue
            self.succeeded(retried_after)
            return result
