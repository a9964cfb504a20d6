"""``--cluster`` progress: ShardProgress moves the view's counts while shards run, and the count
settles on the files' own events once a shard's result is in (never counted twice)."""

from __future__ import annotations

from s3pump.events import Discovered, FileDone, ShardProgress
from s3pump.ui.progress import Counts, progress_line


def test_shard_progress_shows_files_in_flight_until_the_result() -> None:
    c = Counts()
    c.update(Discovered(10, 10_000, final=True))
    c.update(ShardProgress(0, 3, 300))
    c.update(ShardProgress(1, 2, 200))
    assert (c.files, c.bytes) == (5, 500)
    assert progress_line("files", c, "upload")[0] == "upload  5/10 files"
    c.update(ShardProgress(0, 4, 400))  # cumulative: replaces shard 0's count
    assert (c.files, c.bytes) == (6, 600)
    c.update(ShardProgress(0, 0, 0))  # shard 0's result is in: its files come as FileDone
    for i in range(5):
        c.update(FileDone(f"/s/{i}", f"k{i}", 100, '"e"', 0.01, 1, 0))
    assert (c.files, c.bytes) == (7, 700)  # 5 done + shard 1's 2 in flight
    c.update(ShardProgress(1, 0, 0))
    assert (c.files, c.bytes) == (5, 500)


def test_counts_in_flight_equal_the_latest_message_of_each_running_shard() -> None:
    """Seeded sequences of messages and settles: ``files``/``bytes`` are always the finished files plus
    the latest counts of the shards still running (kept as running sums, see the next test)."""
    import random

    for seed in range(20):
        rng = random.Random(seed)
        c, latest = Counts(), {}
        for _ in range(300):
            shard = rng.randrange(6)
            files = 0 if rng.random() < 0.2 else rng.randrange(1, 50)
            c.update(ShardProgress(shard, files, files * 7))
            if files:
                latest[shard] = files
            else:
                latest.pop(shard, None)
            assert (c.files, c.bytes) == (sum(latest.values()), 7 * sum(latest.values())), seed


def test_a_view_thread_reads_the_counts_while_shards_come_and_go() -> None:
    """The bar's refresh thread reads ``files``/``bytes`` while the Dask client's thread and the
    coordinator change the shards in flight: reading never iterates over what is being changed
    (it raised "dictionary changed size during iteration" in the view's thread)."""
    import threading

    c = Counts()
    stop = threading.Event()
    errors: list[BaseException] = []

    def view() -> None:
        try:
            while not stop.is_set():
                assert c.files >= 0 and c.bytes >= 0
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=view)
    t.start()
    try:
        for i in range(200_000):
            c.update(ShardProgress(i, 1, 1))
            if i >= 8:
                c.update(ShardProgress(i - 8, 0, 0))
    finally:
        stop.set()
        t.join()
    assert errors == []
    assert (c.files, c.bytes) == (8, 8)
