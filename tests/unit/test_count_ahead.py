"""Issue 26: the total appears long before the walk gets there. A count of names and sizes only runs
ahead of the upload (sources/countahead.py): it finds what the walk finds (filters, symlinks, loops),
never leaves the named tree, and its final total reaches the progress view while most files are
still to do; the walk's own lagging totals never overwrite it, its final one stands."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from s3pump.config import TransferConfig
from s3pump.events import Discovered, FileDone, FileSkipped
from s3pump.jobs.upload import upload
from s3pump.sources.countahead import count_tree, counted_ahead
from s3pump.sources.pathfilter import PathFilter
from s3pump.sources.walk import WalkTotals, walk_items
from s3pump.store.memory import MemoryStore
from s3pump.urls import parse_s3_url


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "t"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "one.txt").write_bytes(b"1" * 100)
    (root / "a" / "two.log").write_bytes(b"2" * 2000)
    (root / "three.txt").write_bytes(b"3" * 30)
    (root / "skip.tmp").write_bytes(b"4" * 7)
    outside = tmp_path / "outside"  # links lead here: a count that leaves the tree finds 1 MB more
    outside.mkdir()
    (outside / "big.bin").write_bytes(b"x" * 1_000_000)
    os.symlink(outside, root / "a" / "out")
    os.symlink(outside / "big.bin", root / "big-link.bin")
    os.symlink(root, root / "a" / "loop")  # followed: a loop, counted once
    os.mkfifo(root / "pipe")
    return root


@pytest.mark.parametrize("follow", [False, True])
@pytest.mark.parametrize("rules", [None, [("exclude", "*.tmp")], [("exclude", "*"), ("include", "a/*")]])
def test_the_count_finds_what_the_walk_finds(tmp_path: Path, follow: bool, rules: list | None) -> None:
    root = _tree(tmp_path)
    keep = PathFilter(rules=rules) if rules else None
    totals = WalkTotals()
    for _ in walk_items([str(root)], parse_s3_url("s3://bkt/"), follow_symlinks=follow, path_filter=keep,
                        totals=totals, threaded=False):
        pass
    counted = count_tree([str(root)], follow_symlinks=follow, path_filter=keep)
    assert counted == (totals.files, totals.bytes)
    if not follow:
        assert counted[1] < 1_000_000  # the links to outside the tree were not followed
    if rules is None:
        assert counted[0] == (6 if follow else 4)


def test_a_file_root_counts_and_a_missing_root_does_not(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert count_tree([str(tmp_path / "f"), str(tmp_path / "missing")]) == (1, 3)


def test_totals_come_ahead_of_a_held_back_walk(tmp_path: Path) -> None:
    for i in range(3000):
        (tmp_path / f"d{i % 30}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 30}" / f"f{i}").write_bytes(b"x" * (i % 7))
    emitted: list[Discovered] = []
    walk = walk_items([str(tmp_path)], parse_s3_url("s3://bkt/"), queue_size=256, discovered=True)
    it = counted_ahead(walk, [str(tmp_path)], emitted.append)
    next(it)  # the upload has taken one item; the walk is held back by its queue
    deadline = time.monotonic() + 5.0
    while not (emitted and emitted[-1].final) and time.monotonic() < deadline:
        time.sleep(0.01)
    want = (3000, sum(i % 7 for i in range(3000)))
    assert emitted and emitted[-1].final and (emitted[-1].files, emitted[-1].bytes) == want, emitted[-3:]
    passed = [obj for obj in it if isinstance(obj, Discovered)]
    assert [(d.files, d.bytes, d.final) for d in passed] == [(*want, True)]  # the walk's lagging totals dropped


def _flat_tree(src: Path, files: int, fill: bytes) -> Path:
    """``files`` files of 100 bytes of ``fill`` directly in ``src``: ``f000`` …"""
    src.mkdir()
    for i in range(files):
        (src / f"f{i:03d}").write_bytes(fill * 100)
    return src


def _store() -> MemoryStore:
    store = MemoryStore()
    store.create_bucket("bkt")
    return store


def test_an_upload_shows_its_total_while_most_files_are_to_do(tmp_path: Path) -> None:
    src = _flat_tree(tmp_path / "src", 400, b"y")
    store = _store()
    store.fault = lambda op, key: time.sleep(0.003)  # type: ignore[func-returns-value]  # a slow server
    done_when_total_known: list[int] = []
    done = [0]
    lock = threading.Lock()

    def watch(event: object) -> None:
        with lock:
            if isinstance(event, (FileDone, FileSkipped)):
                done[0] += 1
            elif isinstance(event, Discovered) and event.final and not done_when_total_known:
                assert (event.files, event.bytes) == (400, 40_000)
                done_when_total_known.append(done[0])

    config = TransferConfig(concurrency=4, walk_queue_size=10_000)
    report = upload([src], "s3://bkt/p/", config, store=store, subscribers=[watch], failed_list=tmp_path / "fl")
    assert report.files_done == 400
    assert done_when_total_known and done_when_total_known[0] < 100, done_when_total_known


def test_a_sync_says_its_total_after_the_walk_and_ends_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from s3pump import sync
    from s3pump.ui.progress import Counts

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    src = _flat_tree(tmp_path / "src", 600, b"a")
    store = _store()
    config = TransferConfig(checksum_algorithm="none", concurrency=4)
    sync(src, "s3://bkt/p/", config, store=store)  # all 600 in the bucket
    for i in range(0, 600, 2):  # half of them changed, same size: --checksum compares and uploads them
        (src / f"f{i:03d}").write_bytes(b"b" * 100)
    store.fault = lambda op, key: time.sleep(0.005)  # type: ignore[func-returns-value]  # a slow server
    counts = Counts()
    sent_when_total_known: list[int] = []

    def watch(event: object) -> None:
        counts.update(event)  # type: ignore[arg-type]
        if isinstance(event, Discovered) and event.final and not sent_when_total_known:
            assert (event.files, event.bytes) == (600, 60_000)
            sent_when_total_known.append(counts.objects)

    report = sync(src, "s3://bkt/p/", config, store=store, subscribers=[watch], mode="checksum")
    assert report.files_done == 300
    assert sent_when_total_known == [0]  # said before the first upload
    assert (counts.files, counts.done_bytes) == (600, 60_000)
    assert counts.shown_totals == (600, 60_000)  # the end reads 600/600 files, 58.6 KiB/58.6 KiB


def test_an_eta_while_the_count_goes_on_is_a_lower_bound_marked_plus() -> None:
    from s3pump.ui.progress import Counts, progress_line

    c = Counts()
    c.started -= 10.0  # 10 s into the run
    c.update(Discovered(200_000, 200_000 * 4096))  # the count is under way
    c.update(FileDone("/d/a", "p/a", 10 * 2**20, "etag", 0.01, 1))  # 10 MiB in 10 s: 1 MiB/s
    head, tail = progress_line("files", c, "upload")
    assert "1/200,000+ files" in head
    assert re.search(r"ETA 0:12:5\d\+$", tail), tail  # (781.25 MiB - 10 MiB) at 1 MiB/s: 771 s, at least
    c.update(Discovered(200_000, 200_000 * 4096, final=True))
    tail = progress_line("files", c, "upload")[1]
    assert re.search(r"ETA 0:12:5\d$", tail), tail


def test_the_files_total_comes_first_then_the_sizes(tmp_path: Path) -> None:
    from s3pump.sources.countahead import CountAhead
    from s3pump.ui.progress import Counts, progress_line

    for i in range(2000):
        (tmp_path / f"d{i % 20}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 20}" / f"f{i}").write_bytes(b"x" * 10)
    emitted: list[Discovered] = []
    counter = CountAhead([str(tmp_path)], emitted.append, interval_s=0.0).start()
    counter._thread.join(10)
    assert counter.finished
    names_done = [e for e in emitted if e.files_final and not e.final]
    assert names_done and names_done[0].files == 2000 and names_done[0].bytes == 0, emitted[:3]
    assert emitted.index(names_done[0]) < len(emitted) - 1 and emitted[-1] == Discovered(2000, 20_000, final=True)
    c = Counts()
    c.update(names_done[0])
    head, tail = progress_line("files", c, "upload")
    assert head.endswith("0/2,000 files") and "+" in tail, (head, tail)  # the files known, the bytes still counted
