"""The walk in parts (what ``--cluster``'s walk tasks run): for any task size, with or without the
breadth-first first step, the parts together hold exactly what the single walk yields."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3pump.events import EntrySkipped
from s3pump.items import UploadItem
from s3pump.sources.pathfilter import PathFilter
from s3pump.sources.walk import WalkDir, walk_items, walk_part
from s3pump.urls import parse_s3_url


def nested_tree(root: Path) -> None:
    """Four levels, a directory of 40 files (sliced by small task sizes), empty directories,
    symlinks (to a file, to a directory, dangling), a FIFO, an unreadable directory."""
    for i in range(3):
        for j in range(3):
            d = root / f"l1-{i}" / f"l2-{j}" / "l3"
            d.mkdir(parents=True)
            (d / f"deep{i}{j}.txt").write_text(f"{i}{j}")
            (d.parent / f"mid{j}.log").write_text("m" * j)
        (root / f"l1-{i}" / "empty").mkdir()
    wide = root / "wide"
    wide.mkdir()
    for k in range(40):
        (wide / f"w{k:02d}.{'txt' if k % 3 else 'tmp'}").write_bytes(b"x" * k)
    (wide / "sub").mkdir()
    (wide / "sub" / "in-wide.txt").write_text("s")
    (root / "top.txt").write_text("t")
    os.symlink(root / "top.txt", root / "link-to-file")
    os.symlink(root / "l1-0", root / "link-to-dir")
    os.symlink(root / "nowhere", root / "l1-1" / "dangling")
    os.mkfifo(root / "l1-2" / "fifo")


def by_parts(start: WalkDir, dest, max_entries: int, split_first: int, path_filter: PathFilter):
    """Drive walk_part as the coordinator does: a stack of frontiers; the first ``split_first``
    calls take a breadth-first step."""
    pending = [start]
    items: list[UploadItem] = []
    skipped: list[tuple[str, str]] = []
    calls = 0
    while pending:
        part = walk_part(pending.pop(), dest, max_entries=max_entries, split=calls < split_first,
                         path_filter=path_filter)
        calls += 1
        assert part.entries < 2 * max_entries  # a part stops at its budget (checked between directories)
        items.extend(part.items)
        skipped.extend(part.skipped)
        pending.extend(reversed(part.frontier))
    return items, skipped, calls


def summary(items: list[UploadItem]) -> set[tuple]:
    return {(i.key, i.source, i.size_bytes, i.mtime_ns, i.attrs.content_type if i.attrs else None,
             type(i.error).__name__ if i.error else None) for i in items}


@pytest.mark.parametrize("max_entries, split_first", [(1, 0), (3, 5), (7, 0), (16, 2), (10_000, 0)])
@pytest.mark.parametrize("rules", [None, [("exclude", "*.tmp"), ("include", "wide/w1*")], [("include", "*.txt")]])
def test_parts_hold_exactly_the_single_walk(tmp_path: Path, max_entries: int, split_first: int,
                                            rules: list | None) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    nested_tree(root)
    locked = root / "l1-2" / "locked"
    locked.mkdir()
    (locked / "secret.txt").write_text("s")
    locked.chmod(0)
    try:
        dest = parse_s3_url("s3://bkt/pre/")
        keep = PathFilter(rules=rules) if rules else PathFilter()
        whole = list(walk_items([str(root)], dest, path_filter=keep, discovered=True, threaded=False))
        single = [x for x in whole if isinstance(x, UploadItem)]
        single_skips = {(x.path, x.kind) for x in whole if isinstance(x, EntrySkipped)}
        items, skipped, calls = by_parts(WalkDir(str(root), ""), dest, max_entries, split_first, keep)
    finally:
        locked.chmod(0o755)
    assert summary(items) == summary(single)
    assert len(items) == len(single)  # no file twice
    assert set(skipped) == single_skips and len(skipped) == len(single_skips)
    assert {k for _, k in skipped} >= {"symlink", "fifo"}
    if max_entries < 40:
        assert calls > 40 // max_entries  # the wide directory went in slices
    if os.geteuid() != 0:
        assert any(i.error is not None and i.source == str(locked) for i in items)


def test_walk_part_refuses_a_zero_budget(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        walk_part(WalkDir(str(tmp_path), ""), parse_s3_url("s3://bkt/"), max_entries=0)
