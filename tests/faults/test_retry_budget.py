"""The retry budget survives a flaky network and still stops a storm against a dead endpoint."""

from __future__ import annotations

import random

from s3pump.errors import RequestTimeoutError, ThrottlingError
from s3pump.retry import RetryBudget


def test_retries_that_succeed_are_refunded() -> None:
    """30 % of attempts fail (as in the chaos suite, a quarter of them timeouts), at most 6
    attempts: over a 2,000-file run's worth of requests the budget is never exhausted."""
    b = RetryBudget(500)
    rng = random.Random(3)
    lowest = b.tokens
    for _ in range(3000):
        last = None
        for _attempt in range(5):
            if rng.random() >= 0.30:
                break
            last = RequestTimeoutError("x") if rng.random() < 0.25 else ThrottlingError("x")
            assert b.try_spend(last), "budget exhausted under a merely flaky network"
        b.refund(last)
        lowest = min(lowest, b.tokens)
    assert lowest > 100


def test_dead_endpoint_drains_the_budget() -> None:
    b = RetryBudget(500)
    spent = 0
    while b.try_spend(ThrottlingError("x")):  # every retry fails: nothing is refunded
        spent += 1
    assert spent == 100 and b.tokens == 0
