"""A tree that changes under the walk, in process: after a given directory's listing, an entry is
replaced by a symbolic link to a directory outside the tree (``_list_dir`` wrapped, so the swap
happens at an exact point). The walk never enters the link, and a file whose path now leads
outside the tree (an ancestor swapped after the file was listed) is refused when it is opened."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s3pump.engine.multipart import FilePartSource
from s3pump.errors import SourceChangedError, WorkerMismatchError
from s3pump.fileid import FileIdentity, open_version
from s3pump.items import UploadItem
from s3pump.sources import walk as walk_module
from s3pump.sources.dirfd import TreeChangedOSError, open_beneath
from s3pump.sources.walk import WalkDir, walk_items, walk_part
from s3pump.urls import parse_s3_url

MARKER = b"OUTSIDE-MARKER"
DEST = parse_s3_url("s3://bkt/p/")


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    src, outside = tmp_path / "src", tmp_path / "outside"
    (src / "y" / "w").mkdir(parents=True)
    (src / "z").mkdir()
    (src / "a.txt").write_bytes(b"a")
    (src / "y" / "w" / "w1.txt").write_bytes(b"inside w1")
    (src / "z" / "z1.txt").write_bytes(b"inside z1")
    (outside / "w").mkdir(parents=True)
    (outside / "w" / "w1.txt").write_bytes(MARKER)
    (outside / "z1.txt").write_bytes(MARKER)
    (outside / "secret.txt").write_bytes(MARKER)
    return src, outside


def swap(path: Path, target: Path) -> None:
    path.rename(path.parent / f"{path.name}.old")
    os.symlink(target, path)


def swap_after(monkeypatch: pytest.MonkeyPatch, nth: int, action: Callable[[], None]) -> None:
    """Run ``action`` right after the walk's ``nth`` directory listing (1: the root's)."""
    real = walk_module._list_dir
    calls = [0]

    def listing(fd: Any) -> Any:
        entries = real(fd)
        calls[0] += 1
        if calls[0] == nth:
            action()
        return entries

    monkeypatch.setattr(walk_module, "_list_dir", listing)


def walk_all(src: Path, how: str) -> list[UploadItem]:
    if how == "walk_items":
        return [i for i in walk_items([str(src)], DEST, threaded=False) if isinstance(i, UploadItem)]
    items: list[UploadItem] = []
    pending = [WalkDir(str(src), "", inode=os.stat(src).st_ino)]
    while pending:
        part = walk_part(pending.pop(), DEST, max_entries=3)  # the root's 3 entries: y and z in other parts
        items.extend(part.items)
        pending.extend(reversed(part.frontier))
    return items


def read_ok(item: UploadItem) -> bytes:
    """What the engine would read for ``item`` (raises SourceChangedError if it refuses the file)."""
    assert item.path is not None
    fd = open_version(item.path, item.identity, follow=False)
    try:
        return os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", ["walk_items", "walk_part"])
def test_directory_swapped_after_its_parent_was_listed_is_not_entered(
        trees: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    src, outside = trees
    swap_after(monkeypatch, 1, lambda: swap(src / "z", outside))
    items = walk_all(src, how)
    failed = {i.key: str(i.error) for i in items if i.error is not None}
    assert list(failed) == ["p/z/"] and "replaced by a symbolic link" in failed["p/z/"], failed
    assert sorted(i.key for i in items if i.error is None) == ["p/a.txt", "p/y/w/w1.txt"]
    assert all(MARKER not in read_ok(i) for i in items if i.error is None)


@pytest.mark.parametrize("how", ["walk_items", "walk_part"])
@pytest.mark.parametrize("nth", [2, 3])  # after y's listing (w queued), after w's (w1.txt listed)
def test_ancestor_swapped_after_the_walk_passed_it_leads_nowhere_outside(
        trees: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, how: str, nth: int) -> None:
    """``y`` is replaced by a link to ``outside`` (which has ``w/w1.txt``) once the walk is below it:
    the walk goes on in the directory it opened (the real ``w``), and the file's path, which now
    leads outside, is refused when opened (not the inode listed), for a single PUT and for parts."""
    src, outside = trees
    swap_after(monkeypatch, nth, lambda: swap(src / "y", outside))
    items = walk_all(src, how)
    w1 = next(i for i in items if i.key == "p/y/w/w1.txt")
    assert w1.error is None and w1.size_bytes == len(b"inside w1")
    with pytest.raises(SourceChangedError, match="replaced by another file since the walk"):
        read_ok(w1)
    assert w1.path is not None
    with pytest.raises(SourceChangedError, match="replaced by another file since the walk"):
        FilePartSource(w1.path, w1.size_bytes, w1.mtime_ns, 5 << 20, identity=w1.identity)


def test_file_swapped_for_a_link_is_refused_and_followed_only_when_asked(trees: tuple[Path, Path]) -> None:
    src, outside = trees
    a = src / "a.txt"
    listed = FileIdentity.of(os.lstat(a))
    swap(a, outside / "secret.txt")
    with pytest.raises(SourceChangedError, match="replaced by a symbolic link since the walk"):
        open_version(str(a), listed, follow=False)
    with pytest.raises(SourceChangedError, match="replaced by another file"):
        open_version(str(a), listed, follow=True)  # followed, but not the file listed
    fd = open_version(str(a), FileIdentity.of_path(str(a)), follow=True)  # --follow-symlinks: the target
    try:
        assert os.pread(fd, 100, 0) == MARKER
    finally:
        os.close(fd)


def test_a_fifo_in_a_files_place_is_refused_without_blocking(trees: tuple[Path, Path]) -> None:
    src, _ = trees
    a = src / "a.txt"
    listed = FileIdentity.of(os.lstat(a))
    a.unlink()
    os.mkfifo(a)
    with pytest.raises(SourceChangedError, match="replaced by another file"):
        open_version(str(a), listed, follow=False)


def test_open_beneath_does_not_follow_a_swapped_ancestor(trees: tuple[Path, Path]) -> None:
    """Sync hashes its files by this open: a link anywhere on the path is refused, unless followed."""
    src, outside = trees
    fd = open_beneath(str(src), "y/w/w1.txt", follow=False)
    os.close(fd)
    swap(src / "y", outside)
    with pytest.raises(TreeChangedOSError, match="symbolic link"):
        open_beneath(str(src), "y/w/w1.txt", follow=False)
    fd = open_beneath(str(src), "y/w/w1.txt", follow=True)
    try:
        assert os.pread(fd, 100, 0) == MARKER
    finally:
        os.close(fd)


def test_a_part_starting_below_a_swapped_ancestor_is_refused(trees: tuple[Path, Path]) -> None:
    """A walk task starts at a directory by its path: an ancestor swapped for a link makes the path
    lead to another directory, whose inode is not the one the parent's listing recorded."""
    src, outside = trees
    inode = os.lstat(src / "y" / "w").st_ino
    swap(src / "y", outside)
    with pytest.raises(WorkerMismatchError, match="replaced while the walk was under way"):
        walk_part(WalkDir(str(src / "y" / "w"), "y/w/", inode=inode), DEST, max_entries=10)
