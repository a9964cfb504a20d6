"""The rule that splits a large file's parts over the cluster's workers, and how its parts are cut
(:mod:`s3pump.cluster.parts`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from s3pump.cluster.parts import PartRange, SplitFiles, part_ranges
from s3pump.cluster.shards import split_bytes_from_env
from s3pump.config import TransferConfig
from s3pump.errors import SourceUnreadableError
from s3pump.items import ResumeRecord, UploadItem

MIB = 1024 * 1024


def test_part_ranges_are_consecutive_about_equal_and_at_most_one_per_part() -> None:
    assert part_ranges(8, 4) == [(1, 2), (3, 4), (5, 6), (7, 8)]
    assert part_ranges(10, 3) == [(1, 4), (5, 7), (8, 10)]
    assert part_ranges(3, 8) == [(1, 1), (2, 2), (3, 3)]
    assert part_ranges(10_000, 7)[-1][1] == 10_000 and len(part_ranges(10_000, 7)) == 7


def test_which_files_are_split() -> None:
    config = TransferConfig(multipart_threshold_bytes=8 * MIB, part_size_bytes=8 * MIB)
    splits = SplitFiles(SimpleNamespace(config=config), split_bytes=64 * MIB, shard_bytes=32 * MIB,  # type: ignore[arg-type]
                        slots=2, settle_shard=print)

    def item(size: int, **kw: Any) -> UploadItem:
        return UploadItem(key="k", size_bytes=size, source="/f", path="/f", mtime_ns=1, **kw)

    assert splits.splits(item(64 * MIB))
    assert not splits.splits(item(64 * MIB - 1))  # under the split size
    assert not splits.splits(item(64 * MIB, resume=ResumeRecord("u", 8 * MIB)))  # resumed: a shard
    assert not splits.splits(UploadItem(key="k", size_bytes=64 * MIB, source="/f", error=SourceUnreadableError("x")))
    one_part = SplitFiles(SimpleNamespace(config=config.replace(part_size_bytes=64 * MIB)),  # type: ignore[arg-type]
                          split_bytes=64 * MIB, shard_bytes=32 * MIB, slots=2, settle_shard=print)
    assert not one_part.splits(item(64 * MIB))  # one part: nothing to spread
    assert list(splits.divert([item(MIB), item(100 * MIB), item(2 * MIB)])) == [item(MIB), item(2 * MIB)]


def test_split_size_from_the_environment() -> None:
    assert split_bytes_from_env(4 * 1024**3, {}) == 8 * 1024**3
    assert split_bytes_from_env(4 * 1024**3, {"S3PUMP_SPLIT_SIZE": "1GiB"}) == 1024**3


def test_a_range_knows_its_bytes() -> None:
    item = UploadItem(key="k", size_bytes=20 * MIB + 5, source="/f", path="/f")
    assert PartRange(0, item, "u", 5 * MIB, 1, 2).size_bytes == 10 * MIB
    assert PartRange(1, item, "u", 5 * MIB, 3, 5).size_bytes == 10 * MIB + 5
