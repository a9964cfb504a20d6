"""The cluster's pure parts: shard cutting (property-tested), the per-worker config (limits split,
no credentials), addresses, env limits, the missing extra; and the worker runtime's limits living
for the process, not the shard (on the memory store, without a Dask worker)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3pump.cluster.connect import parse_cluster_address, require_distributed
from s3pump.cluster.coordinator import limits_from_env, worker_config
from s3pump.cluster.forecast import Observed, forecast
from s3pump.cluster.shards import Shard, cut_shards
from s3pump.config import TransferConfig
from s3pump.errors import UsageError
from s3pump.items import UploadItem
from s3pump.store.memory import MemoryStore


def _items(sizes: list[int]) -> list[UploadItem]:
    return [UploadItem(key=f"k{i}", size_bytes=s, source=f"/s/{i}", path=f"/s/{i}") for i, s in enumerate(sizes)]


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 120), max_size=60), max_files=st.integers(1, 7), max_bytes=st.integers(1, 100))
def test_shards_hold_every_item_once_in_order_within_limits(sizes: list[int], max_files: int,
                                                            max_bytes: int) -> None:
    items = _items(sizes)
    shards = list(cut_shards(items, max_files=max_files, max_bytes=max_bytes))
    assert [s.index for s in shards] == list(range(len(shards)))
    small = [i.key for s in shards for i in s.items if i.size_bytes < max_bytes]
    assert small == [i.key for i in items if i.size_bytes < max_bytes]  # planning order kept
    assert sorted(int(i.key[1:]) for s in shards for i in s.items) == list(range(len(items)))
    for s in shards:
        assert s.items
        if len(s.items) == 1 and s.items[0].size_bytes >= max_bytes:
            continue  # a large file is a shard of its own
        assert len(s.items) <= max_files
        assert s.size_bytes <= max_bytes


def test_a_large_file_is_its_own_shard_and_small_ones_keep_filling() -> None:
    shards = list(cut_shards(_items([10, 10, 500, 10, 10, 10]), max_files=3, max_bytes=100))
    assert [[i.key for i in s.items] for s in shards] == [["k2"], ["k0", "k1", "k3"], ["k4", "k5"]]


def test_shards_are_lazy() -> None:
    def endless() -> object:
        i = 0
        while True:
            yield UploadItem(key=f"k{i}", size_bytes=1, source="s", path="s")
            i += 1

    first = next(cut_shards(endless(), max_files=5, max_bytes=100))  # type: ignore[arg-type]
    assert isinstance(first, Shard) and len(first.items) == 5


def test_worker_config_splits_the_global_limits_and_drops_credentials() -> None:
    c = TransferConfig(access_key_id="AKIA", secret_access_key="s3cr3t", session_token="tok",
                       max_bandwidth_bps=10_000_000, max_rps=100.0, rps_burst=20, endpoint_url="http://x")
    w = worker_config(c, 4)
    assert (w.access_key_id, w.secret_access_key, w.session_token) == (None, None, None)
    assert w.max_bandwidth_bps == 2_500_000 and w.max_rps == 25.0 and w.rps_burst == 5
    assert w.endpoint_url == "http://x"
    assert worker_config(c, 4, worker_bwlimit_bps=1_000_000).max_bandwidth_bps == 1_000_000
    assert worker_config(TransferConfig(), 3, worker_bwlimit_bps=8_000_000).max_bandwidth_bps == 8_000_000
    assert worker_config(TransferConfig(), 3).max_bandwidth_bps is None


def test_cluster_addresses() -> None:
    assert parse_cluster_address("local:4") == ("local", 4)
    assert parse_cluster_address("tcp://10.0.0.1:8786") == ("scheduler", None)
    for bad in ("local:0", "local:x", "local", " "):
        with pytest.raises(UsageError):
            parse_cluster_address(bad)


def test_limits_from_env() -> None:
    assert limits_from_env({}) == {"shard_files": 2000, "shard_bytes": 4 * 1024**3, "worker_bwlimit_bps": None,
                                   "forecast_after_s": 60}
    got = limits_from_env({"S3PUMP_SHARD_FILES": "50", "S3PUMP_SHARD_SIZE": "1GiB", "S3PUMP_WORKER_BWLIMIT": "8MB",
                           "S3PUMP_CLUSTER_FORECAST_AFTER": "5"})
    assert got == {"shard_files": 50, "shard_bytes": 1024**3, "worker_bwlimit_bps": 8_000_000, "forecast_after_s": 5}
    with pytest.raises(UsageError, match="S3PUMP_SHARD_FILES"):
        limits_from_env({"S3PUMP_SHARD_FILES": "many"})


def test_without_the_extra_cluster_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(UsageError, match=r"pip install 's3pump\[dask\]'") as e:
        require_distributed()
    assert e.value.exit_code == 2


def test_worker_limits_live_for_the_process_not_the_shard(tmp_path: Path) -> None:
    """The bandwidth burst is granted once per worker: three 128 KiB shards at 128 KiB/s (burst
    256 KiB) take about a second on one runtime; fresh limits per shard would take none."""
    pytest.importorskip("distributed")
    from s3pump.cluster.worker import WorkerRuntime

    store = MemoryStore()
    store.create_bucket("b")
    rate = 128 * 1024
    runtime = WorkerRuntime("p", "upload", TransferConfig(max_bandwidth_bps=rate), "b")
    runtime.setup(SimpleNamespace(address="tcp://w:1"))
    runtime._store = store
    limits = runtime.limits
    started = time.monotonic()
    for n in range(3):
        f = tmp_path / f"f{n}"
        f.write_bytes(bytes([n]) * rate)
        result = runtime.run(Shard(n, (UploadItem(key=f"k{n}", size_bytes=rate, source=str(f), path=str(f)),)))
        assert result.files_done == 1 and result.worker == "tcp://w:1"
    elapsed = time.monotonic() - started
    assert runtime.limits is limits
    assert elapsed >= 0.8, elapsed  # 384 KiB - 256 KiB of burst at 128 KiB/s
    assert store.get_object("b", "k2") == bytes([2]) * rate


def test_forecast_names_the_tightest_bound() -> None:
    # 2 workers did 60,000 small files (6 GB) in 60 s; the walk found 600,000 and is done
    f = forecast(Observed(60.0, 2, 60_000, 6 * 10**9, 600_000, 60 * 10**9, True))
    assert f.files_per_s == 1000 and f.bytes_per_s == 1e8
    assert f.files_left == 540_000 and f.bytes_left == 54 * 10**9
    assert f.predicted_s == pytest.approx(540.0) and f.bound in ("worker files/s", "worker bytes/s")
    # 500 M files in one prefix: S3's 3,500 PUT/s is the bound, >= 39.7 h whatever the workers do
    s3 = forecast(Observed(60.0, 100, 6_000_000, 6 * 10**9, 500_000_000, 5 * 10**11, True))
    assert s3.bound == "S3 PUT/s per prefix" and s3.predicted_s == pytest.approx(494_000_000 / 3500)
    # the walk still runs and finds fewer files per second than the workers upload
    walk = forecast(Observed(60.0, 8, 10_000, 10**9, 12_000, 12 * 10**8, False), prefixes=64)
    assert walk.walk_files_per_s == 200 and walk.bound in ("worker files/s", "worker bytes/s", "walk")


def test_adaptive_concurrency_starts_each_worker_at_its_share() -> None:
    """Two workers slow-start from a floor of 2 each: together they can back off to where one process
    can (4); with a floor of 4 each, two workers could never go below 8 requests in flight."""
    from s3pump.engine.limits import EngineLimits

    config = TransferConfig(adaptive_concurrency=True)
    one, two = EngineLimits.from_config(config).adaptive, EngineLimits.from_config(config, share=2).adaptive
    assert one is not None and two is not None
    assert (one.limit, one.minimum) == (16, 4)
    assert (two.limit, two.minimum) == (2, 2) and two.slow_start


class _Future:
    def __init__(self, error: BaseException) -> None:
        self.status = "error"
        self._error = error

    def exception(self) -> BaseException:
        return self._error


def test_a_shard_whose_workers_died_has_its_files_failed(tmp_path: Path) -> None:
    """KilledWorker (the shard's workers died allowed-failures times): every file of the shard is in
    the failed-list with WorkerLostError (exit 1, a rerun retries them); a credentials error stops the run."""
    from s3pump.cluster.coordinator import ClusterOutcome, _settle
    from s3pump.errors import CredentialsError, WorkerLostError
    from s3pump.run import Run

    store = MemoryStore()
    store.create_bucket("b")
    shard = Shard(3, tuple(_items([1, 2, 3])))
    outcome = ClusterOutcome(2)
    with Run("upload", TransferConfig(), "b", store=store, failed_list=tmp_path / "failed.jsonl") as run:
        _settle(run, _Future(RuntimeError("KilledWorker: attempted to run task 3 times")), shard, outcome)
        with pytest.raises(CredentialsError):
            _settle(run, _Future(CredentialsError("no credentials")), shard, outcome)
    report = run.report()
    assert outcome.shards_failed == 1 and report.files_failed == 3
    assert all("shard 3 did not finish" in f.error for f in report.failed)
    assert WorkerLostError.exit_code == 1
    assert len((tmp_path / "failed.jsonl").read_text().splitlines()) == 3


def test_tasks_waiting_for_their_turn_count_as_busy_and_do_not_start_once_cancelled() -> None:
    """A worker of several threads runs shards in turn. After Ctrl-C the coordinator waits until no
    shard is busy, then tears the runtime down: a task still waiting for the lock counts as busy, and
    one cancelled while it waited raises CancelledError instead of starting (or reopening the store)."""
    import threading

    pytest.importorskip("distributed")
    from s3pump.cluster.worker import WorkerRuntime
    from s3pump.errors import CancelledError

    tasks = {"a": SimpleNamespace(state="executing"), "b": SimpleNamespace(state="executing")}
    runtime = WorkerRuntime("p", "upload", TransferConfig(), "b")
    runtime.setup(SimpleNamespace(address="tcp://w:1", state=SimpleNamespace(tasks=tasks)))
    runtime._store = MemoryStore()
    holding, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def first() -> None:
        with runtime.turn("a"):
            holding.set()
            release.wait(5)

    def second() -> None:
        try:
            with runtime.turn("b"):
                outcome.append("started")
        except CancelledError as e:
            outcome.append(e)

    a = threading.Thread(target=first)
    a.start()
    holding.wait(5)
    b = threading.Thread(target=second)
    b.start()
    deadline = time.monotonic() + 5
    while runtime._entered < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runtime.busy and runtime._entered == 2
    tasks["b"].state = "cancelled"  # Ctrl-C: the coordinator cancels every task
    release.set()
    a.join(5)
    b.join(5)
    assert len(outcome) == 1 and isinstance(outcome[0], CancelledError), outcome
    assert not runtime.busy
    runtime.teardown(None)
    with pytest.raises(CancelledError):  # a task after the teardown opens no store again
        runtime.store()
