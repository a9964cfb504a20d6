"""The streaming walk: keys, filters, symlinks, loops."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3pump.errors import UsageError
from s3pump.sources.pathfilter import PathFilter
from s3pump.sources.walk import walk_items
from s3pump.urls import parse_s3_url


def keys(items: list) -> set[str]:
    return {i.key for i in items if i.error is None}


def tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "one.txt").write_text("1")
    (root / "a" / "two.log").write_text("2")
    (root / "three.txt").write_text("3")


def test_keys_are_prefix_plus_relative_posix_path(tmp_path: Path) -> None:
    tree(tmp_path)
    items = list(walk_items([str(tmp_path)], parse_s3_url("s3://bkt/p")))
    assert keys(items) == {"p/a/b/one.txt", "p/a/two.log", "p/three.txt"}
    assert all(i.size_bytes == 1 and i.mtime_ns > 0 for i in items)


def test_filters(tmp_path: Path) -> None:
    tree(tmp_path)
    dest = parse_s3_url("s3://bkt/")
    only_txt = walk_items([str(tmp_path)], dest, path_filter=PathFilter(include=["*.txt"]))
    assert keys(list(only_txt)) == {"a/b/one.txt", "three.txt"}
    aws_idiom = walk_items([str(tmp_path)], dest, path_filter=PathFilter(include=["*.log"], exclude=["*"]))
    assert keys(list(aws_idiom)) == {"a/two.log"}
    no_a = walk_items([str(tmp_path)], dest, path_filter=PathFilter(exclude=["a/*"]))
    assert keys(list(no_a)) == {"three.txt"}


def test_symlinks_skipped_unless_followed_and_loops_reported(tmp_path: Path) -> None:
    tree(tmp_path / "t")
    os.symlink(tmp_path / "t" / "three.txt", tmp_path / "t" / "link.txt")
    os.symlink(tmp_path / "t", tmp_path / "t" / "a" / "loop")
    dest = parse_s3_url("s3://bkt/")
    plain = list(walk_items([str(tmp_path / "t")], dest))
    assert keys(plain) == {"a/b/one.txt", "a/two.log", "three.txt"}
    assert not [i for i in plain if i.error]
    followed = list(walk_items([str(tmp_path / "t")], dest, follow_symlinks=True))
    assert "link.txt" in keys(followed)
    loops = [i for i in followed if i.error is not None]
    assert len(loops) == 1 and "loop" in str(loops[0].error)


def test_walk_is_bounded_and_streams(tmp_path: Path) -> None:
    for i in range(3000):
        (tmp_path / f"f{i}").write_bytes(b"")
    it = walk_items([str(tmp_path)], parse_s3_url("s3://bkt/"), queue_size=256)
    first = next(it)
    assert first.key.startswith("f")
    assert sum(1 for _ in it) == 2999


def test_filters_in_order_last_match_wins(tmp_path: Path) -> None:
    """The aws cli's rule from the Python API: ("include"|"exclude", glob) pairs in order."""
    tree(tmp_path)
    dest = parse_s3_url("s3://bkt/")

    def taken(*rules: tuple[str, str]) -> set[str]:
        return keys(list(walk_items([str(tmp_path)], dest, path_filter=PathFilter(rules=rules))))

    assert taken(("exclude", "*"), ("include", "*.txt")) == {"a/b/one.txt", "three.txt"}
    assert taken(("include", "*.txt"), ("exclude", "a/*")) == {"three.txt"}  # the later exclude wins
    assert taken(("exclude", "a/*"), ("include", "*.txt")) == {"a/b/one.txt", "three.txt"}
    assert taken(("include", "*.txt"), ("exclude", "*")) == set()
    with pytest.raises(UsageError):
        PathFilter(rules=[("keep", "*")])
