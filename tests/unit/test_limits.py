"""Token buckets, the paced body, adaptive concurrency decisions, and the limits inside the engine."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from s3pump import TransferConfig, upload
from s3pump.engine.limits import AdaptiveConcurrency, TokenBucket
from s3pump.events import ConcurrencyChanged
from s3pump.store.body import FileRange, Throttled
from s3pump.store.memory import MemoryStore

pytestmark = pytest.mark.timing  # rates and deadlines on the wall clock: run serially (pyproject)


def test_token_bucket_rate() -> None:
    bucket = TokenBucket(2000, burst=10)  # a burst absorbs the sleeps' overshoot
    t0 = time.monotonic()
    taken = 0
    while taken < 400:
        wait = bucket.try_take()
        if wait == 0.0:
            taken += 1
        else:
            time.sleep(wait)
    elapsed = time.monotonic() - t0
    assert 0.185 <= elapsed <= 0.23  # 400 tokens at 2000/s, 10 of them up front


def test_token_bucket_blocking_take_paces_bytes() -> None:
    bucket = TokenBucket(10_000_000, burst=100_000)  # 10 MB/s
    t0 = time.monotonic()
    for _ in range(20):
        bucket.take(100_000)
    assert 0.18 <= time.monotonic() - t0 <= 0.3  # 2 MB minus the 0.1 MB burst


def test_throttled_body_reads_the_same_bytes_at_the_capped_rate(tmp_path: Path) -> None:
    data = bytes(range(256)) * 8000  # 2,048,000 bytes
    f = tmp_path / "f"
    f.write_bytes(data)
    import os

    fd = os.open(f, os.O_RDONLY)
    try:
        body = Throttled(FileRange(fd, 1000, 1_500_000, str(f)), TokenBucket(10_000_000, burst=1))
        assert len(body) == 1_500_000
        reader = body.reader()
        out = io.BytesIO()
        buf = bytearray(1 << 20)
        t0 = time.monotonic()
        while n := reader.readinto(memoryview(buf)):
            out.write(buf[:n])
        assert 0.13 <= time.monotonic() - t0 <= 0.3  # 1.5 MB at 10 MB/s
        assert out.getvalue() == data[1000:1_501_000]
        reader.seek(0)  # a retry reads it again from the start
        assert reader.read(10) == data[1000:1010]
    finally:
        os.close(fd)


CLOCK: dict[int, float] = {}


def run_windows(ctl: AdaptiveConcurrency, windows: list[tuple[int, float, int]]) -> list[int]:
    """Feed windows of (bytes, latency, throttled) and return the limit after each."""
    now = CLOCK.get(id(ctl), 1000.0)  # one monotonic clock per controller across calls
    ctl._window_start = now
    limits = []
    for nbytes, latency, throttled in windows:
        ctl.on_success(nbytes, latency)
        for i in range(throttled):
            ctl.on_throttled(now + i * 0.001)  # a burst of throttles: one cut
        now += ctl.interval_s
        ctl.maybe_adjust(now)
        limits.append(ctl.limit)
    CLOCK[id(ctl)] = now
    return limits


def test_adaptive_grows_while_throughput_rises_and_cuts_on_throttling() -> None:
    ctl = AdaptiveConcurrency(initial=8, minimum=2, maximum=64)
    limits = run_windows(ctl, [(1_000_000 * (i + 1), 0.01, 0) for i in range(6)])
    assert ctl.ceiling is None
    assert limits == sorted(limits) and limits[-1] == 64  # slow start: doubles while throughput rises
    top = ctl.limit
    assert run_windows(ctl, [(10_000_000, 0.01, 3)]) == [top // 2]  # the end of slow start: halved, once
    assert run_windows(ctl, [(10_000_000, 0.01, 0)]) == [top // 2]  # no gain: hold
    assert ctl.ceiling == top
    # throughput rising again: grow, but stay under the limit that was throttled
    limits = run_windows(ctl, [(20_000_000 * (i + 2), 0.01, 0) for i in range(8)])
    assert max(limits) == top - 1
    now_limit = ctl.limit
    assert run_windows(ctl, [(10_000_000, 0.01, 2)]) == [int(now_limit * 0.8)]  # after slow start: a fifth off


def test_adaptive_backs_off_on_latency_jump_and_respects_bounds() -> None:
    ctl = AdaptiveConcurrency(initial=32, minimum=4, maximum=32)
    run_windows(ctl, [(5_000_000, 0.010, 0), (5_000_000, 0.010, 0)])
    assert ctl.limit == 32  # at the ceiling
    run_windows(ctl, [(5_000_000, 0.050, 0)])  # latency x5, throughput flat
    assert ctl.limit == 25
    for _ in range(20):
        run_windows(ctl, [(1, 0.01, 5)])
    assert ctl.limit == 4  # never below the floor


def test_engine_applies_rps_limit(tmp_path: Path) -> None:
    """60 PUTs at --max-rps 200 with a burst of 5: request k (0-based) starts no earlier than
    (k - 5) / 200 s after the first, and the last one within 0.4 s of the first (55 / 200 = 0.275 s
    is the least). The times are the requests' own, taken in the store: the run's start-up (the
    walk, the threads) is not in them, so a busy machine cannot push a correct limiter over."""
    for i in range(60):
        (tmp_path / f"f{i}").write_bytes(b"x")
    store = MemoryStore()
    store.create_bucket("bkt")
    starts: list[float] = []
    store.fault = lambda op, key: starts.append(time.monotonic()) if op == "PutObject" else None  # type: ignore[func-returns-value]
    report = upload([tmp_path], "s3://bkt/", TransferConfig(max_rps=200, rps_burst=5), store=store,
                    failed_list=tmp_path.parent / "fl")
    assert report.files_done == 60 and len(starts) == 60
    starts.sort()
    late = [k for k in range(60) if starts[k] - starts[0] < (k - 5) / 200 - 0.005]
    assert not late, f"requests {late} started sooner than 200/s allows"
    assert 0.27 <= starts[-1] - starts[0] <= 0.4


def test_engine_adaptive_reacts_to_throttling(tmp_path: Path) -> None:
    """A store that throttles whenever the engine runs more than a few requests at once."""
    for i in range(400):
        (tmp_path / f"f{i}").write_bytes(b"x" * 100)
    from collections import Counter

    attempts: Counter[str] = Counter()
    store = MemoryStore()
    store.create_bucket("bkt")
    events: list[object] = []
    cfg = TransferConfig(adaptive_concurrency=True, concurrency=64, min_concurrency=2, max_concurrency=64,
                         backoff_base_s=0.001, backoff_max_s=0.005, retry_budget=100_000, max_attempts=50)
    from s3pump.errors import ThrottlingError

    def fault(op: str, key: str) -> ThrottlingError | None:
        time.sleep(0.002)  # the run must span a few of the controller's 1 s windows
        attempts[key] += 1
        return ThrottlingError("SlowDown", status=503, code="SlowDown") if attempts[key] == 1 else None

    store.fault = fault
    report = upload([tmp_path], "s3://bkt/", cfg, store=store, failed_list=tmp_path.parent / "fl",
                    subscribers=[events.append])
    cuts = [e for e in events if isinstance(e, ConcurrencyChanged) and e.new < e.old]
    assert cuts and all("throttled" in c.reason for c in cuts)
    assert report.files_done == 400 and report.retries == 400
