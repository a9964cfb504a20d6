"""Every object is one version of its file (issue 12, items 1 and 2), against the MemoryStore.

Seeded property loops over sequences of runs, kills at random points and replacements of
files by others of the same size and mtime (in place + ``os.utime``, or a new inode renamed
over the old one, as ``cp -p``, ``rsync -t`` and ``tar x`` do), with mtimes of 0 and not.
After every run, every object must equal some version its file had; after a last quiet run,
the file's current bytes; and no multipart upload may be left open.

A *kill* is an exception raised from a subscriber that sees events before the journal does
(the engine is then left as ``kill -9`` leaves it: nothing aborted, the last event never
journaled). A *torn read* is a store that reads a single PUT's file in two halves, as awscrt
reads in chunks, with the file rewritten in between.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3pump.config import TransferConfig
from s3pump.engine.scheduler import Engine
from s3pump.engine.uploads import OpenUploads
from s3pump.errors import SourceChangedError
from s3pump.events import Event, FileDone, FileFailed, MultipartCreated, PartDone
from s3pump.jobs.sync import sync
from s3pump.jobs.upload import upload
from s3pump.journal import journal_path
from s3pump.store.base import PutResult
from s3pump.store.memory import MemoryStore

MIB = 1024 * 1024
BUCKET = "vbucket"
MTIME_2020 = 1_600_000_000_123_456_789


def _config(**kw: object) -> TransferConfig:
    return TransferConfig(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB, concurrency=2,
                          max_parts_in_flight=2, backoff_base_s=0.0).replace(**kw)


class _Kill(BaseException):
    """What kill -9 does to the run: it stops where it is, nothing is aborted or cleaned."""


class _Killer:
    """Raises :class:`_Kill` at the ``n``-th event of type ``kind`` (before the journal sees it)."""

    def __init__(self, kind: type | None, n: int) -> None:
        self.kind, self.n, self.seen = kind, n, 0

    def __call__(self, event: Event) -> None:
        if self.kind is not None and isinstance(event, self.kind):
            self.seen += 1
            if self.seen == self.n:
                raise _Kill


@contextlib.contextmanager
def as_kill9() -> Iterator[None]:
    """While active, a run that ends by :class:`_Kill` does no cleanup on its way out, as a process
    killed with SIGKILL does none: neither the engine's stop (which aborts its open uploads when an
    exception passes through it) nor the run's final sweep of its open uploads happens."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(OpenUploads, "abort_all", lambda self: [])
        m.setattr(Engine, "_shutdown", lambda self: 0)
        yield


def _killed(run) -> None:  # type: ignore[no-untyped-def]
    """Run ``run`` until a :class:`_Kill` (or its end, if the kill point never comes); then let the
    requests it had in flight reach the store (a killed process's requests already sent do)."""
    with contextlib.suppress(_Kill), as_kill9():
        run()
    deadline = time.monotonic() + 10
    while any(t.name.startswith("s3pump-control") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)


def _replace(path: Path, data: bytes, mtime_ns: int, how: str) -> None:
    """Give ``path`` new content of the same size and the same mtime."""
    if how == "inplace":
        with open(path, "r+b") as f:
            f.write(data)
    else:  # a new inode renamed over the old one
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def _assert_versions(store: MemoryStore, prefix: str, versions: dict[str, list[bytes]]) -> None:
    for key, obj in store.buckets[BUCKET].items():
        if key.startswith(prefix):
            name = key[len(prefix):]
            assert obj.body in versions[name], f"{key} matches no version of its file"


@pytest.mark.parametrize("seed", range(12))
def test_resume_after_kills_and_replacements_never_mixes_versions(tmp_path: Path, state: Path, seed: int) -> None:
    """Item 1: kill mid-multipart, replace the file by one of the same size and mtime, rerun."""
    rng = random.Random(seed)
    store = MemoryStore()
    store.create_bucket(BUCKET)
    src = tmp_path / "src"
    src.mkdir()
    mtime = rng.choice([0, MTIME_2020])
    sizes = {"big.bin": 3 * 5 * MIB + rng.randrange(1, 5 * MIB), "small.txt": rng.randrange(1, 4096)}
    versions: dict[str, list[bytes]] = {}
    for name, size in sizes.items():
        data = rng.randbytes(size)
        versions[name] = [data]
        (src / name).write_bytes(data)
        os.utime(src / name, ns=(mtime, mtime))
    dest = f"s3://{BUCKET}/v/"
    for _ in range(rng.randint(2, 4)):
        kind, n = rng.choice([(MultipartCreated, 1), (PartDone, rng.randint(1, 3)), (PartDone, rng.randint(1, 3)),
                              (FileDone, 1)])
        killer = _Killer(kind, n)
        _killed(lambda: upload([src], dest, _config(), store=store, subscribers=[killer]))  # noqa: B023
        _assert_versions(store, "v/", versions)
        for name, size in sizes.items():
            how = rng.choice(["keep", "inplace", "rename"])
            if how != "keep":
                data = rng.randbytes(size)
                versions[name].append(data)
                _replace(src / name, data, mtime, how)
    events: list[Event] = []
    report = upload([src], dest, _config(), store=store, subscribers=[events.append])
    assert report.ok, [e for e in events if isinstance(e, FileFailed)]
    for name in sizes:
        assert store.buckets[BUCKET][f"v/{name}"].body == (src / name).read_bytes(), name
    assert list(store.list_multipart_uploads(BUCKET)) == []


def test_resume_re_sends_a_journaled_part_whose_bytes_changed(tmp_path: Path, state: Path) -> None:
    """Item 1, the clock-independent check: even when the file's identity matches the journal's
    (a filesystem whose ctime did not move), a kept part must hold the file's bytes now."""
    store = MemoryStore()
    store.create_bucket(BUCKET)
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.bin"
    big.write_bytes(os.urandom(3 * 5 * MIB + 10))
    dest = f"s3://{BUCKET}/w/"
    _killed(lambda: upload([src], dest, _config(concurrency=1, max_parts_in_flight=1), store=store,
                           subscribers=[_Killer(PartDone, 3)]))
    with open(big, "r+b") as f:  # part 1 changes in place
        f.write(b"changed!")
    st = big.stat()
    path = journal_path(state, "upload", [str(src)], dest, None)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE uploads SET ctime_ns=?, mtime_ns=?, inode=?, device=?",
                   (st.st_ctime_ns, st.st_mtime_ns, st.st_ino, st.st_dev))
    report = upload([src], dest, _config(concurrency=1, max_parts_in_flight=1), store=store)
    assert report.ok
    assert store.buckets[BUCKET]["w/big.bin"].body == big.read_bytes()
    assert sum(1 for op, k in store.request_log if op == "CreateMultipartUpload") == 1  # resumed, not restarted
    assert list(store.list_multipart_uploads(BUCKET)) == []


class _TornStore(MemoryStore):
    """A MemoryStore that reads a single PUT's file in two halves, as awscrt reads it in chunks,
    and calls ``between(key)`` in between (where a writer rewrites the file)."""

    def __init__(self) -> None:
        super().__init__()
        self.between = lambda key: None

    def put_file(self, bucket, key, path, size_bytes, attrs, on_done):  # type: ignore[no-untyped-def]
        with open(path, "rb") as f:
            head = f.read(size_bytes // 2)
            self.between(key)
            body = head + f.read(size_bytes - len(head))
        etag = hashlib.md5(body).hexdigest()
        self._store(bucket, key, body, etag, attrs)
        on_done(PutResult(etag, self._crc32c_b64(body)))
        return _Finished()


class _Finished:
    def cancel(self) -> None:
        return None


def _torn_tree(rng: random.Random, src: Path, mtime: int) -> dict[str, list[bytes]]:
    src.mkdir()
    versions: dict[str, list[bytes]] = {}
    for i in range(6):
        data = rng.randbytes(rng.randrange(2, 64 * 1024))
        versions[f"f{i}.bin"] = [data]
        (src / f"f{i}.bin").write_bytes(data)
        os.utime(src / f"f{i}.bin", ns=(mtime, mtime))
    return versions


def _rewriter(rng: random.Random, src: Path, versions: dict[str, list[bytes]], mtime: int, prefix: str):  # type: ignore[no-untyped-def]
    def between(key: str) -> None:
        name = key[len(prefix):]
        if name in versions and rng.random() < 0.5:
            data = rng.randbytes(len(versions[name][-1]))
            versions[name].append(data)
            _replace(src / name, data, mtime, rng.choice(["inplace", "rename"]))
    return between


@pytest.mark.parametrize("seed", range(8))
def test_upload_never_stores_a_torn_single_put(tmp_path: Path, state: Path, seed: int) -> None:
    """Item 2: files (mtime 0 or not) rewritten, same size and mtime, while their PUT reads them."""
    rng = random.Random(seed)
    mtime = rng.choice([0, 0, MTIME_2020])
    src = tmp_path / "src"
    versions = _torn_tree(rng, src, mtime)
    store = _TornStore()
    store.create_bucket(BUCKET)
    store.between = _rewriter(rng, src, versions, mtime, "u/")
    events: list[Event] = []
    upload([src], f"s3://{BUCKET}/u/", _config(), store=store, subscribers=[events.append])
    _assert_versions(store, "u/", versions)
    failed = [e for e in events if isinstance(e, FileFailed)]
    assert all(isinstance(e.error, SourceChangedError) for e in failed)
    for e in failed:  # a PUT of a file that changed under it leaves no object
        assert e.key not in store.buckets[BUCKET]
    store.between = lambda key: None
    report = upload([src], f"s3://{BUCKET}/u/", _config(), store=store)
    assert report.ok
    for name in versions:
        assert store.buckets[BUCKET][f"u/{name}"].body == (src / name).read_bytes()


@pytest.mark.parametrize("seed", range(8))
def test_sync_never_stores_a_torn_object_or_an_old_md5(tmp_path: Path, state: Path, seed: int) -> None:
    """Item 2 for sync: the object is one version, and its md5 metadata is that version's MD5."""
    rng = random.Random(seed)
    mtime = rng.choice([0, 0, MTIME_2020])
    src = tmp_path / "src"
    versions = _torn_tree(rng, src, mtime)
    store = _TornStore()
    store.create_bucket(BUCKET)
    store.between = _rewriter(rng, src, versions, mtime, "s/")
    for _ in range(2):
        sync(src, f"s3://{BUCKET}/s/", _config(), mode="checksum", store=store, hash_cache=False)
        _assert_versions(store, "s/", versions)
        for key, obj in store.buckets[BUCKET].items():
            assert obj.metadata["md5"] == hashlib.md5(obj.body).hexdigest(), key
    store.between = lambda key: None
    report = sync(src, f"s3://{BUCKET}/s/", _config(), mode="checksum", store=store, hash_cache=False)
    assert report.ok
    for name in versions:
        obj = store.buckets[BUCKET][f"s/{name}"]
        assert obj.body == (src / name).read_bytes() and obj.metadata["md5"] == hashlib.md5(obj.body).hexdigest()


def test_sync_does_not_store_an_md5_of_content_replaced_after_hashing(tmp_path: Path, state: Path) -> None:
    """Item 2: the file is replaced (same size, mtime 0) between sync hashing it and its PUT."""
    src = tmp_path / "src"
    src.mkdir()
    f = src / "a.bin"
    f.write_bytes(b"A" * 1000)
    os.utime(f, ns=(0, 0))

    def replace_before_put(op: str, key: str) -> None:
        if op == "PutObject" and f.read_bytes() == b"A" * 1000:
            _replace(f, b"B" * 1000, 0, "rename")
        return None

    store = MemoryStore(fault=replace_before_put)
    store.create_bucket(BUCKET)
    sync(src, f"s3://{BUCKET}/m/", _config(), mode="checksum", store=store, hash_cache=False)
    obj = store.buckets[BUCKET].get("m/a.bin")
    assert obj is None or obj.metadata["md5"] == hashlib.md5(obj.body).hexdigest()


class _OpaqueEtagStore(MemoryStore):
    """ETags that are no MD5s (as with a bucket's default SSE-KMS encryption)."""

    def put_file(self, bucket, key, path, size_bytes, attrs, on_done):  # type: ignore[no-untyped-def]
        def opaque(result):  # type: ignore[no-untyped-def]
            if isinstance(result, PutResult):
                result = PutResult(hashlib.md5(b"kms" + result.etag.encode()).hexdigest(), result.checksum)
            on_done(result)
        return super().put_file(bucket, key, path, size_bytes, attrs, opaque)


def test_sync_to_a_bucket_whose_etags_are_not_md5s_uploads_unchanged_files(tmp_path: Path, state: Path) -> None:
    """The ETag = MD5 check of item 2 must not fail files where ETags are no MD5s."""
    rng = random.Random(1)
    versions = _torn_tree(rng, tmp_path / "src", 0)
    store = _OpaqueEtagStore()
    store.create_bucket(BUCKET)
    report = sync(tmp_path / "src", f"s3://{BUCKET}/e/", _config(), store=store, hash_cache=False)
    assert report.ok
    for name, (data,) in versions.items():
        assert store.buckets[BUCKET][f"e/{name}"].body == data
