"""An outage of an endpoint that answered before costs time, not files (within the tolerance)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from s3pump import TransferConfig, upload
from s3pump.errors import NetworkError
from s3pump.retry import RetryPolicy
from s3pump.store.memory import MemoryStore

#: A small budget: without outage handling, a 1.5 s outage fails files.
CFG = TransferConfig(concurrency=16, retry_budget=50, backoff_base_s=0.05, backoff_max_s=0.2)


class _Outage:
    """Every request fails with "connection refused" for ``duration_s`` once ``after`` PUTs succeeded."""

    def __init__(self, after: int, duration_s: float) -> None:
        self.after, self.duration_s = after, duration_s
        self.puts = 0
        self.started: float | None = None
        self.refused = 0
        self._lock = threading.Lock()

    def __call__(self, op: str, key: str) -> NetworkError | None:
        with self._lock:
            now = time.monotonic()
            if self.started is None and self.puts >= self.after:
                self.started = now
            if self.started is not None and now - self.started < self.duration_s:
                self.refused += 1
                return NetworkError(f"{key}: connection refused (the server is down)")
            if op == "PutObject":
                self.puts += 1
            return None


def _tree(root: Path, n: int) -> None:
    root.mkdir()
    for i in range(n):
        (root / f"f{i:03d}").write_bytes(b"%d" % i)


@pytest.mark.parametrize("duration_s", [0.5, 1.5])
def test_an_outage_within_the_tolerance_loses_no_file(tmp_path: Path, duration_s: float) -> None:
    _tree(tmp_path / "src", 300)
    store = MemoryStore()
    store.create_bucket("bkt")
    outage = _Outage(after=40, duration_s=duration_s)
    store.fault = outage
    t0 = time.monotonic()
    report = upload([tmp_path / "src"], "s3://bkt/", CFG.replace(outage_tolerance_s=30.0), store=store,
                    failed_list=tmp_path / "failed.jsonl")
    assert outage.refused > 50  # the outage happened, and was retried through
    assert report.files_failed == 0 and report.files_done == 300 and len(store.buckets["bkt"]) == 300
    assert time.monotonic() - t0 < duration_s + 10
    assert not (tmp_path / "failed.jsonl").exists()


def test_an_outage_past_the_tolerance_fails_and_lists_files(tmp_path: Path) -> None:
    _tree(tmp_path / "src", 300)
    store = MemoryStore()
    store.create_bucket("bkt")
    store.fault = _Outage(after=40, duration_s=60.0)
    t0 = time.monotonic()
    report = upload([tmp_path / "src"], "s3://bkt/", CFG.replace(outage_tolerance_s=1.0), store=store,
                    failed_list=tmp_path / "failed.jsonl")
    assert report.files_failed > 0 and report.files_done + report.files_failed == 300
    assert len((tmp_path / "failed.jsonl").read_text().splitlines()) == report.files_failed
    assert time.monotonic() - t0 < 20


def test_an_endpoint_that_never_answered_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    policy = RetryPolicy(max_attempts=3, outage_tolerance_s=60.0, budget=10)
    error = NetworkError("connection refused")
    assert policy.decide(error, 1) is not None and policy.decide(error, 3) is None  # ordinary rules
    assert policy.budget.tokens == 5  # and the budget pays
    policy.succeeded()
    # after a success: one request unlucky; ordinary attempts, no budget
    assert policy.decide(error, 2) is not None and policy.decide(error, 3) is None
    assert policy.budget.tokens == 6  # (the success refunded one)
    # a third failure in a row, nothing succeeding: the endpoint is down; attempts are not spent
    assert policy.decide(error, 3) is not None and policy.decide(error, 20) is not None
    assert policy.decide(error, 3 + 50) is None  # but not forever
    clock[0] += 60.0  # past the tolerance: the ordinary rules again
    assert policy.decide(error, 3) is None
