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
