"""Retries: exponential backoff with full jitter, and a run-wide retry budget.

Backoff follows "Exponential Backoff And Jitter" (AWS Architecture Blog, 2015):
``delay = uniform(0, min(cap, base * 2**attempt))``. The budget follows the AWS
SDKs' standard retry mode: a retry spends tokens; a success refunds one, or, if it
was a retry, that retry's whole cost; an empty bucket means no more retries. So
retries that work (a flaky network) cost nothing in the long run, while a dead
endpoint, whose retries all fail, drains the bucket and cannot start a storm.
"""

from __future__ import annotations

import random

from ..errors import RequestTimeoutError, S3PumpError

__all__ = ["RetryBudget", "backoff_delay_s"]

RETRY_COST = 5
TIMEOUT_RETRY_COST = 10
SUCCESS_REFUND = 1


_rng = random.Random()


def backoff_delay_s(attempt: int, base_s: float, cap_s: float, rng: random.Random = _rng) -> float:
    """Full-jitter delay before retry number ``attempt`` (1-based), in seconds."""
    return rng.uniform(0.0, min(cap_s, base_s * (2 ** min(attempt, 30))))


class RetryBudget:
    """Token bucket of retries for one run (not thread-safe: the scheduler thread owns it)."""

    __slots__ = ("_capacity", "_tokens", "retries")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._tokens = capacity
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
        if self._tokens < cost:
            return False
        self._tokens -= cost
        self.retries += 1
        return True

    def refund(self, retried_after: S3PumpError | None = None) -> None:
        """A request succeeded: give back one token, or, when it succeeded on a retry after
        ``retried_after``, that retry's cost (AWS SDKs' standard mode); up to the capacity."""
        gain = SUCCESS_REFUND if retried_after is None else self.cost_of(retried_after)
        self._tokens = min(self._capacity, self._tokens + gain)
