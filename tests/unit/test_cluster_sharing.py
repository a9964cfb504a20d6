"""Issue 30: a cluster's global limits follow the work (cluster/sharing.py, TokenBucket.set_rate), and
the tail of the items is cut into shards by bytes over the workers (cut_shards' ``spread``)."""

from __future__ import annotations

import threading
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from s3pump.cluster.coordinator import task_key, task_prefix
from s3pump.cluster.shards import cut_shards
from s3pump.cluster.sharing import IDLE_FRACTION, LimitSharer, shares
from s3pump.config import TransferConfig
from s3pump.engine.limits import EngineLimits, TokenBucket
from s3pump.items import UploadItem

MIB = 1024 * 1024
LIMITS = TransferConfig(max_bandwidth_bps=8_000_000, max_rps=50.0, rps_burst=10)


def _items(sizes: list[int]) -> list[UploadItem]:
    return [UploadItem(key=f"k{i}", size_bytes=s, source=f"/s/{i}", path=f"/s/{i}") for i, s in enumerate(sizes)]


def test_the_busy_workers_share_the_whole_limit_and_the_others_keep_a_sliver() -> None:
    one = shares(LIMITS, ["a", "b"], {"a"})
    assert one["a"] == (8_000_000, 50.0, 10)
    assert one["b"] == (8_000_000 * IDLE_FRACTION, 50.0 * IDLE_FRACTION, 1)
    both = shares(LIMITS, ["a", "b", "c"], {"a", "c"})
    assert both["a"] == both["c"] == (4_000_000, 25.0, 5) and both["b"][0] == 8_000
    capped = shares(LIMITS, ["a", "b"], {"a"}, worker_bwlimit_bps=3_000_000)
    assert capped["a"][0] == 3_000_000  # S3PUMP_WORKER_BWLIMIT caps a worker's share


class _FakeClient:
    """``processing()`` as told; ``run()`` recorded (and applied to a worker's EngineLimits)."""

    def __init__(self) -> None:
        self.busy: dict[str, list[str]] = {}
        self.calls: list[tuple[list[str], dict[str, Any]]] = []
        self.limits = {w: EngineLimits.from_config(LIMITS, share=2) for w in ("a", "b")}

    def processing(self) -> dict[str, list[str]]:
        return self.busy

    def run(self, fn: Any, plugin: str, table: dict[str, Any], *, workers: list[str], on_error: str) -> dict:
        self.calls.append((list(workers), {w: table[w] for w in workers}))
        for w in workers:
            self.limits[w].reshare(*table[w])
        return dict.fromkeys(workers, True)


def test_the_sharer_lowers_before_it_raises_and_sends_only_changes() -> None:
    client = _FakeClient()
    name = "s3pump-upload-0123456789ab"  # the keys the coordinator gives its shards (task_key)
    sharer = LimitSharer(client, name, LIMITS, ["a", "b"], task_prefix=task_prefix(name, "shard"))
    client.busy = {"a": [task_key(name, "shard", 0), task_key(name, "shard", 1)],
                   "b": [task_key(name, "walk", 0)]}  # b: another kind of task
    sharer.step()
    assert [w for w, _ in client.calls] == [["b"], ["a"]]  # b lowered first, then a raised: never above
    bw = client.limits["a"].bandwidth
    rps = client.limits["a"].rps
    assert bw is not None and bw.rate_per_s == 8_000_000 and rps is not None and rps.rate_per_s == 50.0
    sharer.step()
    client.busy = {"a": [], "b": []}  # between shards: the shares stay where the work was
    sharer.step()
    assert len(client.calls) == 2
    client.busy = {"a": [], "b": [task_key(name, "shard", 2)]}
    sharer.step()
    assert [w for w, _ in client.calls[2:]] == [["a"], ["b"]]
    b_bw = client.limits["b"].bandwidth
    assert b_bw is not None and b_bw.rate_per_s == 8_000_000 and sharer.changes == 2


def test_a_debtor_sleeping_in_take_follows_a_new_rate() -> None:
    bucket = TokenBucket(1000, burst=1)
    done = threading.Event()

    def debtor() -> None:
        bucket.take(2001)  # 2 s of debt at 1,000/s
        done.set()

    started = time.monotonic()
    threading.Thread(target=debtor, daemon=True).start()
    time.sleep(0.05)
    bucket.set_rate(100_000, burst=1)
    assert done.wait(2.0)
    assert time.monotonic() - started < 0.6  # repaid at the new rate, not after the 2 s owed at the old one


def test_set_rate_drops_tokens_above_the_new_burst() -> None:
    bucket = TokenBucket(1_000_000, burst=500_000)
    bucket.set_rate(1000, burst=100)
    assert bucket.try_take(100) == 0.0
    assert bucket.try_take(100) > 0.05  # nothing saved beyond the new burst


def test_a_small_tree_is_cut_by_bytes_over_the_workers() -> None:
    shards = list(cut_shards(_items([MIB] * 60), spread=2))
    assert [(len(s.items), s.size_bytes) for s in shards] == [(30, 30 * MIB), (30, 30 * MIB)]
    # a tail too small to spread stays as greedy cuts it, and so does its shard count
    assert [len(s.items) for s in cut_shards(_items([1000] * 210), max_files=25, spread=2)] == [25] * 8 + [10]


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.sampled_from([0, 1, 1000, 3 * MIB, 9 * MIB]), max_size=120),
       max_files=st.integers(1, 40), spread=st.integers(1, 5))
def test_spread_shards_hold_every_item_once_within_the_file_limit(sizes: list[int], max_files: int,
                                                                  spread: int) -> None:
    items = _items(sizes)
    max_bytes = 64 * MIB
    greedy = list(cut_shards(items, max_files=max_files, max_bytes=max_bytes))
    shards = list(cut_shards(items, max_files=max_files, max_bytes=max_bytes, spread=spread))
    assert [s.index for s in shards] == list(range(len(shards)))
    assert [i.key for s in shards for i in s.items] == [i.key for i in items]  # no large file here: order kept
    assert all(s.items and len(s.items) <= max_files for s in shards)
    assert len(greedy) <= len(shards) <= len(greedy) + spread - 1
