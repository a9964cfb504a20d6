"""Issue 28 on the MemoryStore: a streamed object's only record is its FULL_OBJECT CRC (no md5
metadata, a multipart ETag no candidate part size explains); ``sync --checksum`` and ``verify``
compare a local file with it, and the hash cache keeps the file's CRC (an older cache is migrated)."""

from __future__ import annotations

import io
import os
import random
import sqlite3
from pathlib import Path

import pytest

from s3pump import TransferConfig, sync
from s3pump.etags import FileDigest, file_digest
from s3pump.events import Event, FileSkipped, UploadPlanned
from s3pump.hashcache import HashCache
from s3pump.jobs.stream import stream
from s3pump.jobs.verify import verify
from s3pump.plan.syncplan import RemoteRecord, checksum_verdict
from s3pump.sources.stdin import PartSchedule
from s3pump.store.base import ObjectInfo
from s3pump.store.checksums import full_checksum
from s3pump.store.memory import MemoryStore

KIB = 1024
DATA = random.Random(28).randbytes(20 * KIB + 123)  # 21 parts of 1 KiB: no candidate part size
CFG = TransferConfig(concurrency=4, part_size_bytes=5 * 1024 * KIB, multipart_threshold_bytes=5 * 1024 * KIB)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def streamed(tmp_path: Path) -> tuple[MemoryStore, Path]:
    """A stream's object (no --md5) at s3://bkt/p/f, and the same bytes in ``src/f``."""
    store = MemoryStore(min_part_size_bytes=KIB)
    store.create_bucket("bkt")
    report = stream(io.BytesIO(DATA), "s3://bkt/p/f", CFG, store=store,
                    schedule=PartSchedule(start_bytes=KIB, flat_parts=10_000))
    obj = store.buckets["bkt"]["p/f"]
    assert report.parts == 21 and obj.metadata == {} and obj.etag.endswith("-21")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(DATA)
    return store, src


def _events(store: MemoryStore, src: Path) -> tuple[object, list[Event]]:
    seen: list[Event] = []
    report = sync(src, "s3://bkt/p", CFG, store=store, mode="checksum", subscribers=[seen.append])
    return report, seen


def _change_one_byte(path: Path, offset: int) -> bytes:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size and mtime
    return bytes(data)


def test_sync_checksum_skips_an_unchanged_file_by_the_objects_crc_and_uploads_a_changed_one(
    streamed: tuple[MemoryStore, Path],
) -> None:
    store, src = streamed
    report, events = _events(store, src)
    assert report.planned_uploads == 0 and report.fallback_uploads == 0  # before: a fallback upload
    [skipped] = [e for e in events if isinstance(e, FileSkipped)]
    assert skipped.reason == "full-object CRC32C equals the file's"
    again, _ = _events(store, src)  # the file's CRC is in the hash cache now: not read again
    assert again.planned_uploads == 0 and again.files_hashed == 0 and again.hash_cache_hits == 1

    changed = _change_one_byte(src / "f", 17 * KIB + 3)
    report, events = _events(store, src)
    [planned] = [e for e in events if isinstance(e, UploadPlanned)]
    assert planned.reason == "content differs (full-object CRC32C)" and not planned.fallback
    assert report.files_done == 1 and store.get_object("bkt", "p/f") == changed


def test_verify_compares_the_objects_crc(streamed: tuple[MemoryStore, Path]) -> None:
    store, src = streamed
    report = verify(src, "s3://bkt/p/", CFG, store=store)
    assert report.matched == 1 and not (report.different or report.unverified)
    _change_one_byte(src / "f", 5)
    report = verify(src, "s3://bkt/p/", CFG, store=store)
    assert report.different == [(str(src / "f"), "p/f", "content differs (full-object CRC32C)")]


def test_a_composite_checksum_is_not_taken_for_the_whole_files() -> None:
    """``<base64>-N`` is a checksum of the parts' checksums: never compared with the file's CRC."""
    crc = full_checksum("CRC32C", b"abc")[1]
    digest = FileDigest(3, 0, 0, 0, "", crcs={"CRC32C": crc})
    remote = RemoteRecord(b"k", 3, '"0123456789abcdef0123456789abcdef-2"', 0.0)
    composite = ObjectInfo("k", 3, remote.etag, 0.0, {}, None, {"CRC32C": f"{crc}-2"}, "COMPOSITE")
    verdict = checksum_verdict(digest, remote, [], lambda: composite)
    assert not verdict.same and verdict.fallback
    full = ObjectInfo("k", 3, remote.etag, 0.0, {}, None, {"CRC32C": crc}, "FULL_OBJECT")
    assert checksum_verdict(digest, remote, [], lambda: full).same


def test_hash_cache_keeps_crcs_and_migrates_an_older_cache(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    old = sqlite3.connect(path)  # the schema before issue 28, with one entry
    old.execute("CREATE TABLE digests (path TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, mtime_ns INTEGER "
                "NOT NULL, ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, md5 TEXT NOT NULL, multipart TEXT "
                "NOT NULL) WITHOUT ROWID")
    f, g = tmp_path / "f", tmp_path / "g"
    f.write_bytes(b"one")
    g.write_bytes(b"two")
    st = f.stat()
    old.execute("INSERT INTO digests VALUES (?, ?, ?, ?, ?, ?, ?)",
                (str(f), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, "ab" * 16, ""))
    old.commit()
    old.close()
    cache = HashCache(path)
    assert cache.enabled, cache.error
    assert cache.get(str(f), st) == FileDigest(3, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, "ab" * 16)
    d = file_digest(str(g), [], whole=False, crcs=["CRC32C", "CRC64NVME"])
    assert d.crcs == {"CRC32C": full_checksum("CRC32C", b"two")[1], "CRC64NVME": full_checksum("CRC64NVME", b"two")[1]}
    cache.put(str(g), d)
    cache.close()
    again = HashCache(path)
    st = g.stat()
    assert again.get_many({str(g): (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)})[str(g)].crcs == d.crcs
    again.close()
