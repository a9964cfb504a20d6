"""The sync job against MemoryStore: what is uploaded, skipped, deleted, and why."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3pump import SyncReport, TransferConfig, sync
from s3pump.engine.multipart import multipart_etag
from s3pump.errors import NoSuchBucketError, SourceNotFoundError, UsageError
from s3pump.events import Event, FileSkipped, FilesUnchanged, ObjectDeleted, UploadPlanned
from s3pump.jobs.upload import upload
from s3pump.store.base import ObjectAttributes, ObjectInfo
from s3pump.store.memory import MemoryStore, StoredObject

MIB = 1024 * 1024
CFG = TransferConfig(checksum_algorithm="none", part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.create_bucket("bkt")
    return s


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"a/b.txt": b"bee", "a-c/d.bin": b"d" * 100, "a.d": b"dot", "z/y/x.py": b"print(1)\n", "top": b"t"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, e: Event) -> None:
        self.events.append(e)

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]


def run(src: Path, store: MemoryStore, dest: str = "s3://bkt/pre", **kw: object) -> tuple[SyncReport, Recorder]:
    rec = Recorder()
    report = sync(src, dest, CFG, store=store, subscribers=[rec], **kw)  # type: ignore[arg-type]
    return report, rec


def objects(store: MemoryStore) -> dict[str, StoredObject]:
    return store.buckets["bkt"]


def age(path: Path, seconds: float = 3600) -> None:
    """Set mtime in the past (as if the file were older than its object)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_first_sync_uploads_all_with_md5_metadata_second_uploads_nothing(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    report, _ = run(src, store)
    assert report.ok and report.files_done == len(files) and report.planned_uploads == len(files)
    for rel, data in files.items():
        obj = objects(store)[f"pre/{rel}"]
        assert obj.body == data
        assert obj.metadata["md5"] == hashlib.md5(data).hexdigest()
    for mode in ("default", "size-only", "checksum"):
        again, rec = run(src, store, mode=mode)
        assert again.files_done == 0 and again.planned_uploads == 0, mode
        assert again.files_skipped == len(files) and len(rec.of(FileSkipped)) == len(files)


@pytest.mark.parametrize("mode", ["default", "size-only", "checksum"])
def test_unchanged_files_counted_rather_than_listed_give_the_same_report(
        tmp_path: Path, store: MemoryStore, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: ``list_unchanged=False`` (the CLI without --json) hands out FilesUnchanged counts, a
    few files at a time here, and the report counts what one FileSkipped each would have."""
    import s3pump.plan.syncplanner as planner

    monkeypatch.setattr(planner, "_UNCHANGED_PER_EVENT", 2)
    src = tmp_path / "src"
    files = make_tree(src)
    changed = src / "top"
    run(src, store)
    changed.write_bytes(b"T2")  # one file changed: uploaded, not counted
    listed, listed_rec = run(src, store, mode=mode)
    changed.write_bytes(b"T3!")
    counted, rec = run(src, store, mode=mode, list_unchanged=False)
    assert rec.of(FileSkipped) == [] and [e.files for e in rec.of(FilesUnchanged)] == [2, 2]
    assert sum(e.size_bytes for e in rec.of(FilesUnchanged)) == sum(len(d) for r, d in files.items() if r != "top")
    assert counted.files_skipped == listed.files_skipped == len(listed_rec.of(FileSkipped)) == len(files) - 1
    assert counted.bytes_skipped == listed.bytes_skipped
    assert counted.files_done == listed.files_done == 1 and objects(store)["pre/top"].body == b"T3!"


def test_same_size_same_mtime_change_is_found_by_checksum_only(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    make_tree(src)
    run(src, store)
    f = src / "a" / "b.txt"
    st0 = f.stat()
    f.write_bytes(b"BEE")  # same size
    os.utime(f, ns=(st0.st_atime_ns, st0.st_mtime_ns))  # mtime restored
    assert run(src, store)[0].planned_uploads == 0  # default mode can't see it (like aws s3 sync)
    assert run(src, store, mode="size-only")[0].planned_uploads == 0
    report, rec = run(src, store, mode="checksum")
    assert report.files_done == 1 and objects(store)["pre/a/b.txt"].body == b"BEE"
    [planned] = rec.of(UploadPlanned)
    assert planned.key == "pre/a/b.txt" and "differs" in planned.reason and not planned.fallback
    assert run(src, store, mode="checksum")[0].planned_uploads == 0


def test_default_mode_uploads_size_change_and_newer_file(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    make_tree(src)
    for p in src.rglob("*"):
        if p.is_file():
            age(p)
    run(src, store)
    (src / "top").write_bytes(b"tt")  # size differs
    (src / "a.d").write_bytes(b"DOT")  # same size, newer mtime
    report, rec = run(src, store)
    reasons = {e.key: e.reason for e in rec.of(UploadPlanned)}
    assert set(reasons) == {"pre/top", "pre/a.d"} and report.files_done == 2
    assert reasons["pre/top"].startswith("size differs") and "newer" in reasons["pre/a.d"]


def test_delete_and_dry_run(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    make_tree(src)
    run(src, store)
    store.put_bytes("bkt", "pre2/keep", b"other prefix", ObjectAttributes(), lambda r: None)
    (src / "a.d").unlink()
    (src / "z" / "y" / "x.py").unlink()
    (src / "new.txt").write_bytes(b"new")
    before = {k: o.body for k, o in objects(store).items()}
    report, rec = run(src, store, delete=True, dry_run=True)
    assert {k: o.body for k, o in objects(store).items()} == before  # nothing changed
    assert report.dry_run and report.planned_uploads == 1 and report.planned_deletes == 2
    assert {e.key for e in rec.of(ObjectDeleted)} == {"pre/a.d", "pre/z/y/x.py"}
    assert all(e.dry_run for e in rec.of(ObjectDeleted))
    without_delete, _ = run(src, store)
    assert without_delete.remote_only_kept == 2 and "pre/a.d" in objects(store)
    report, rec = run(src, store, delete=True)
    assert report.ok and report.objects_deleted == 2 and report.files_done == 0
    assert set(objects(store)) == {"pre/a/b.txt", "pre/a-c/d.bin", "pre/new.txt", "pre/top", "pre2/keep"}


def test_filters_apply_to_both_sides(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    make_tree(src)
    run(src, store)
    (src / "z" / "y" / "x.py").unlink()
    (src / "a.d").unlink()
    report, _ = run(src, store, delete=True, exclude=["z/*"])
    assert report.objects_deleted == 1
    assert "pre/z/y/x.py" in objects(store) and "pre/a.d" not in objects(store)


def test_unreadable_directory_withholds_deletes_under_it(
    tmp_path: Path, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    make_tree(src)
    run(src, store)
    import s3pump.sources.walk as walk_mod

    real = os.scandir
    bad = str(src / "z")

    def scandir(path):  # the walk lists a directory by its descriptor
        named = os.readlink(f"/proc/self/fd/{path}") if isinstance(path, int) else str(path)
        if named == bad:
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(walk_mod.os, "scandir", scandir)
    (src / "top").unlink()
    report, _ = run(src, store, delete=True)
    assert report.files_failed == 1 and not report.ok  # the directory is reported
    assert report.deletes_withheld == 1 and report.objects_deleted == 1
    assert "pre/z/y/x.py" in objects(store) and "pre/top" not in objects(store)


class ShuffledListing(MemoryStore):
    """Lists directory-first like SeaweedFS (not S3's byte order)."""

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        infos = list(super().list_objects(bucket, prefix))
        return iter(sorted(infos, key=lambda o: o.key.split("/")))


def test_remote_listing_order_does_not_matter(tmp_path: Path) -> None:
    store = ShuffledListing()
    store.create_bucket("bkt")
    src = tmp_path / "src"
    files = make_tree(src)
    assert run(src, store)[0].files_done == len(files)
    report, _ = run(src, store, delete=True, mode="checksum", sort_items_in_memory=2)
    assert report.planned_uploads == 0 and report.planned_deletes == 0 and report.sort_runs_spilled > 0


def test_many_files_with_spilling_sort(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    for i in range(300):
        d = src / f"d{i % 7}" / ("x-" if i % 2 else "x") / f"f{i}"
        d.parent.mkdir(parents=True, exist_ok=True)
        d.write_bytes(str(i).encode())
    assert run(src, store, sort_items_in_memory=13)[0].files_done == 300
    (src / "d0" / "x" / "f0").unlink()
    report, _ = run(src, store, sort_items_in_memory=13, delete=True)
    assert report.files_skipped == 299 and report.objects_deleted == 1 and report.sort_runs_spilled >= 40


def test_warm_checksum_pass_reads_no_file(tmp_path: Path, store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    files = make_tree(src)
    run(src, store)  # hashes everything it uploads (for the md5 metadata) and caches it
    import s3pump.plan.syncexamine as job

    def no_reads(*a: object, **k: object) -> None:
        raise AssertionError("a file was read again")

    monkeypatch.setattr(job, "file_digest", no_reads)
    threads: list[str] = []
    examine_batch = job.Examiner.examine_batch

    def recording(self: job.Examiner, batch: list, cached: object = None) -> object:
        threads.append(threading.current_thread().name)
        return examine_batch(self, batch, cached)  # type: ignore[arg-type]

    monkeypatch.setattr(job.Examiner, "examine_batch", recording)
    report, _ = run(src, store, mode="checksum")
    assert report.files_hashed == 0 and report.hash_cache_hits == len(files) and report.planned_uploads == 0
    # issue 15: what the cache decides is decided in the planner's thread, not handed to the hash pool
    assert threads and not any(t.startswith("s3pump-hash") for t in threads), threads


def test_multipart_etags_recomputed_inferred_or_fallback(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(11 * MIB)
    (src / "big").write_bytes(data)
    # uploaded by `s3pump upload` (5 MiB parts here, no md5 metadata)
    assert upload([str(src / "big")], "s3://bkt/pre/big", CFG, store=store).files_done == 1
    assert objects(store)["pre/big"].etag.endswith("-3") and "md5" not in objects(store)["pre/big"].metadata
    report, rec = run(src, store, mode="checksum", hash_cache=False)
    assert report.planned_uploads == 0 and report.files_skipped == 1
    assert "multipart ETag matches" in rec.of(FileSkipped)[0].reason

    def put_with_parts(part: int) -> None:
        etag = multipart_etag([hashlib.md5(data[i:i + part]).digest() for i in range(0, len(data), part)])
        objects(store)["pre/big"] = StoredObject(data, etag, time.time())

    put_with_parts(6 * MIB)  # an uncommon size: inferred from N=2 and the size
    assert run(src, store, mode="checksum", hash_cache=False)[0].planned_uploads == 0
    put_with_parts(7 * MIB)  # N=2 but 7 MiB is no candidate: uploaded, and the event says why
    report, rec = run(src, store, mode="checksum")
    [planned] = rec.of(UploadPlanned)
    assert planned.fallback and "matches no part size" in planned.reason and report.fallback_uploads == 1
    assert report.files_done == 1 and objects(store)["pre/big"].metadata["md5"] == hashlib.md5(data).hexdigest()
    assert run(src, store, mode="checksum")[0].planned_uploads == 0


def test_errors(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    make_tree(src)
    with pytest.raises(NoSuchBucketError):
        sync(src, "s3://nope/pre", CFG, store=store)
    with pytest.raises(SourceNotFoundError):
        sync(src / "missing", "s3://bkt/pre", CFG, store=store)
    with pytest.raises(UsageError):
        sync(src, "s3://bkt/pre", CFG, store=store, mode="fast")  # type: ignore[arg-type]
    assert not objects(store)


def test_multipart_compare_reads_each_file_once(
    tmp_path: Path, store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "synced").write_bytes(os.urandom(11 * MIB))
    (src / "uploaded").write_bytes(os.urandom(11 * MIB))
    assert run(src, store, exclude=["uploaded"])[0].files_done == 1  # sync: md5 metadata
    assert upload([str(src / "uploaded")], "s3://bkt/pre/uploaded", CFG, store=store).files_done == 1
    import s3pump.plan.syncexamine as job

    calls: list[tuple[str, bool, tuple[int, ...]]] = []
    real = job.file_digest

    def spy(path: str, part_sizes: list[int] = [], *, whole: bool = True, **kwargs: object):  # noqa: B006
        calls.append((os.path.basename(path), whole, tuple(part_sizes)))
        return real(path, part_sizes, whole=whole, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(job, "file_digest", spy)
    report, _ = run(src, store, mode="checksum", hash_cache=False)
    assert report.planned_uploads == 0 and report.bytes_hashed == 22 * MIB
    assert len(calls) == 2 and ("synced", True, ()) in calls  # md5 metadata: the MD5 only
    [(_, whole, part_sizes)] = [c for c in calls if c[0] == "uploaded"]
    assert not whole and 5 * MIB in part_sizes  # no metadata: the candidate multipart ETags only


def test_the_hash_cache_is_closed_when_the_cluster_setup_fails(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad ``S3PUMP_CLUSTER_WALK`` (or a scheduler not reached) ends sync before its run starts:
    the hash cache opened just before is closed all the same (an embedding program keeps no handle)."""
    pytest.importorskip("distributed")
    from s3pump import hashcache

    closed: list[bool] = []
    real_close = hashcache.HashCache.close
    monkeypatch.setattr(hashcache.HashCache, "close", lambda self: (closed.append(True), real_close(self))[1])
    monkeypatch.setenv("S3PUMP_CLUSTER_WALK", "everywhere")
    (tmp_path / "src").mkdir()
    store = MemoryStore()
    store.create_bucket("bkt")
    with pytest.raises(UsageError, match="S3PUMP_CLUSTER_WALK"):
        sync(tmp_path / "src", "s3://bkt/p/", TransferConfig(), store=store, cluster="tcp://127.0.0.1:1")
    assert closed == [True]
