"""A throttling storm costs time, not files (issue 24): throttled retries spend neither attempts nor the
budget within the tolerance, and the engine's request rate backs off (engine/throttle.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from s3pump import TransferConfig, upload
from s3pump.engine.throttle import MIN_RATE_PER_S, ThrottleRate
from s3pump.errors import ClockSkewError, ThrottlingError
from s3pump.retry import OUTAGE_EXTRA_ATTEMPTS, RetryPolicy
from s3pump.store.memory import MemoryStore

#: A small budget and few attempts: spent on throttling, they would fail files within a second.
CFG = TransferConfig(concurrency=16, retry_budget=50, max_attempts=3, backoff_base_s=0.05, backoff_max_s=0.2)


class _Storm:
    """Every request is throttled (503 SlowDown) for ``duration_s`` from the first one."""

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self.started: float | None = None
        self.throttled = 0
        self._lock = threading.Lock()

    def __call__(self, op: str, key: str) -> ThrottlingError | None:
        with self._lock:
            now = time.monotonic()
            if self.started is None:
                self.started = now
            if now - self.started < self.duration_s:
                self.throttled += 1
                return ThrottlingError(f"{key}: SlowDown", status=503, code="SlowDown")
            return None


def test_a_storm_within_the_tolerance_loses_no_file(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for i in range(300):
        (tmp_path / "src" / f"f{i:03d}").write_bytes(b"%d" % i)
    store = MemoryStore()
    store.create_bucket("bkt")
    storm = _Storm(2.0)
    store.fault = storm
    t0 = time.monotonic()
    report = upload([tmp_path / "src"], "s3://bkt/", CFG.replace(outage_tolerance_s=30.0), store=store,
                    failed_list=tmp_path / "failed.jsonl")
    assert storm.throttled >= 3 and time.monotonic() - t0 >= 2.0  # the storm happened and was waited out
    assert report.files_failed == 0 and report.files_done == 300 and len(store.buckets["bkt"]) == 300
    assert not (tmp_path / "failed.jsonl").exists()


def test_throttled_retries_spend_no_budget_within_the_tolerance() -> None:
    policy = RetryPolicy(max_attempts=2, budget=0, outage_tolerance_s=30.0)
    error = ThrottlingError("s3://b/k: SlowDown", status=503, code="SlowDown")
    for attempt in range(1, 2 + OUTAGE_EXTRA_ATTEMPTS):
        delay = policy.decide(error, attempt)
        assert delay is not None and 0.2 <= delay <= 5.0
    assert policy.decide(error, 2 + OUTAGE_EXTRA_ATTEMPTS) is None  # one request cannot loop forever
    off = RetryPolicy(max_attempts=2, budget=0, outage_tolerance_s=0.0)
    assert off.decide(error, 1) is None  # the tolerance off: the budget rules


def test_a_skewed_clock_gets_one_retry() -> None:
    policy = RetryPolicy(max_attempts=6, budget=0)
    error = ClockSkewError("s3://b/k: clock", code="RequestTimeTooSkewed")
    assert policy.decide(error, 1) is not None
    assert policy.decide(error, 2) is None


def test_the_request_rate_backs_off_in_a_storm_and_recovers() -> None:
    rate = ThrottleRate()
    for _ in range(100):
        rate.sent()
    assert not rate.throttled() and not rate.throttled()  # two in a row: not a storm yet
    assert rate.throttled()
    assert rate.enabled and rate.rate_per_s >= MIN_RATE_PER_S
    first = rate.rate_per_s
    rate.sent()
    assert rate.wait_s() > 0.0  # the bucket now paces the requests
    rate._last_cut -= 1.0  # the next cut is allowed (once per CUT_INTERVAL_S)
    assert rate.throttled()
    assert rate.rate_per_s <= first
    rate.succeeded()  # a success ends the run of throttles
    assert not rate.throttled()
    rate._last_cut -= 30.0  # long after the storm: CUBIC has grown past what is sent, the limit goes
    rate.succeeded()
    assert not rate.enabled and rate.wait_s() == 0.0
