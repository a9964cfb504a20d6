"""Part sizing within S3's limits, multipart ETags, backoff and the retry budget."""

from __future__ import annotations

import hashlib
import random

from hypothesis import given
from hypothesis import strategies as st

from s3pump.engine.multipart import multipart_etag, part_count, part_size_for
from s3pump.errors import RequestTimeoutError, ThrottlingError
from s3pump.retry import RetryBudget, backoff_delay_s

MIB = 2**20


def test_part_size_default_and_growth() -> None:
    assert part_size_for(100 * MIB, 8 * MIB) == 8 * MIB
    assert part_size_for(10_000 * 8 * MIB, 8 * MIB) == 8 * MIB  # exactly 10,000 parts
    grown = part_size_for(10_000 * 8 * MIB + 1, 8 * MIB)
    assert grown > 8 * MIB and grown % MIB == 0
    assert part_count(10_000 * 8 * MIB + 1, grown) <= 10_000


@given(st.integers(min_value=0, max_value=10_000 * 5 * 1024 * MIB), st.sampled_from([5, 8, 16, 64, 100]))
def test_part_size_property(size: int, mib: int) -> None:
    """Every object up to 48.8 TiB fits in at most 10,000 parts of 5 MiB..5 GiB."""
    ps = part_size_for(size, mib * MIB)
    assert 5 * MIB <= ps <= 5 * 1024 * MIB
    assert part_count(size, ps) <= 10_000


def test_multipart_etag_matches_s3_rule() -> None:
    parts = [b"a" * 10, b"b" * 3]
    digests = [hashlib.md5(p).digest() for p in parts]
    assert multipart_etag(digests) == hashlib.md5(b"".join(digests)).hexdigest() + "-2"


def test_backoff_full_jitter_bounds() -> None:
    rng = random.Random(1)
    delays = [backoff_delay_s(3, 0.1, 20.0, rng) for _ in range(2000)]
    assert all(0 <= d <= 0.8 for d in delays)
    assert max(delays) > 0.6 and min(delays) < 0.1  # spread over the whole window
    assert all(backoff_delay_s(40, 0.1, 2.0, rng) <= 2.0 for _ in range(100))


def test_retry_budget_spends_and_refunds() -> None:
    b = RetryBudget(20)
    assert b.try_spend(ThrottlingError("x"))  # 5
    assert b.try_spend(RequestTimeoutError("x"))  # 10
    assert not b.try_spend(RequestTimeoutError("x"))  # 5 left < 10
    assert b.try_spend(ThrottlingError("x"))  # 0 left
    assert not b.try_spend(ThrottlingError("x"))
    for _ in range(5):
        b.refund()
    assert b.try_spend(ThrottlingError("x"))
    assert b.retries == 4
