"""Issue 27: ``verify`` and ``ls`` run through a Run on any Store (here a MemoryStore, no server):
real outcomes, read with the Store protocol's calls only."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from s3pump.config import TransferConfig
from s3pump.jobs.ls import ls
from s3pump.jobs.verify import verify
from s3pump.store.base import CompletedPart, ObjectAttributes, PutResult
from s3pump.store.memory import MemoryStore
from s3pump.ui.listing import format_entry

MIB = 2**20
CFG = TransferConfig()


def _put(store: MemoryStore, bucket: str, key: str, body: bytes) -> None:
    done = threading.Event()
    store.put_bytes(bucket, key, body, ObjectAttributes(), lambda _r: done.set())
    assert done.wait(5)


def _put_multipart(store: MemoryStore, bucket: str, key: str, body: bytes, part_bytes: int) -> str:
    upload_id = store.create_multipart_upload(bucket, key, ObjectAttributes())
    parts = []
    for n, at in enumerate(range(0, len(body), part_bytes), 1):
        box: list[PutResult] = []
        store.upload_part(bucket, key, upload_id, n, body[at:at + part_bytes], box.append)  # type: ignore[arg-type]
        parts.append(CompletedPart(n, box[0].etag, len(body[at:at + part_bytes])))
    return store.complete_multipart_upload(bucket, key, upload_id, parts).etag


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)


def test_verify_finds_missing_size_mismatch_changed_byte_and_extra(tmp_path: Path) -> None:
    store = MemoryStore()
    store.create_bucket("bkt")
    body = os.urandom(300_000)
    files = {"same.txt": b"same\n", "short.txt": b"local is longer\n", "flip.bin": body, "sub/gone.txt": b"gone\n"}
    _tree(tmp_path / "src", files)
    _put(store, "bkt", "t/same.txt", b"same\n")
    _put(store, "bkt", "t/short.txt", b"local")
    changed = bytearray(body)
    changed[123_457] ^= 0x01
    _put(store, "bkt", "t/flip.bin", bytes(changed))
    _put(store, "bkt", "t/sub/extra.txt", b"only remote")

    for download in (False, True):
        report = verify(tmp_path / "src", "s3://bkt/t/", CFG, store=store, download=download)
        assert report.matched == 1 and not report.ok
        assert [(k, r) for _, k, r in report.missing] == [("t/sub/gone.txt", "no such object")]
        different = {k: r for _, k, r in report.different}
        assert different["t/short.txt"] == "size differs: file 16 bytes, object 5 bytes"
        assert set(different) == {"t/short.txt", "t/flip.bin"}
        assert report.extra == ["t/sub/extra.txt"] and report.unverified == []
    # with --download the bytes themselves are compared: the first one that differs is named
    assert different["t/flip.bin"] == "bytes differ at offset 123457"
    assert ("GetObject", "t/flip.bin") in store.request_log
    store.delete_objects("bkt", ["t/sub/extra.txt", "t/flip.bin", "t/short.txt"])
    _put(store, "bkt", "t/flip.bin", body)
    _put(store, "bkt", "t/short.txt", files["short.txt"])
    _put(store, "bkt", "t/sub/gone.txt", files["sub/gone.txt"])
    report = verify(tmp_path / "src", "s3://bkt/t/", CFG, store=store, download=True)
    assert report.ok and report.matched == 4


def test_verify_recomputes_a_multipart_etag_with_the_part_size_head_object_gives(tmp_path: Path) -> None:
    """9 MiB parts, a size verify does not guess: HeadObject ``partNumber=1`` tells it, so an intact
    object matches and a changed byte is 'different' (not 'unverified')."""
    store = MemoryStore()
    store.create_bucket("bkt")
    body = os.urandom(19 * MIB + 5)
    etag = _put_multipart(store, "bkt", "v/odd.bin", body, 9 * MIB)
    assert etag.endswith("-3")
    _tree(tmp_path / "src", {"odd.bin": body})
    report = verify(tmp_path / "src", "s3://bkt/v/", CFG, store=store)
    assert report.ok and report.matched == 1, report
    changed = bytearray(body)
    changed[18 * MIB] ^= 0x01
    (tmp_path / "src" / "odd.bin").write_bytes(bytes(changed))
    report = verify(tmp_path / "src", "s3://bkt/v/", CFG, store=store)
    assert [(k, r) for _, k, r in report.different] == [
        ("v/odd.bin", f"content differs (multipart ETag recomputed with the object's {9 * MIB}-byte parts)")]
    assert hashlib.md5(body).hexdigest() != etag


def test_ls_lists_buckets_one_level_and_recursively() -> None:
    store = MemoryStore()
    for bucket in ("lake", "logs"):
        store.create_bucket(bucket)
    for key, size in (("d/a.txt", 1), ("d/b.txt", 10), ("d/sub/c.bin", 2048), ("d/sub/deep/e", 3), ("top.txt", 5)):
        _put(store, "lake", key, b"x" * size)

    assert [(e.kind, e.name) for e in ls(None, CFG, store=store)] == [("bucket", "lake"), ("bucket", "logs")]
    level = list(ls("s3://lake/d/", CFG, store=store))
    assert [(e.kind, e.name, e.key, e.size_bytes) for e in level] == [
        ("prefix", "sub/", "d/sub/", 0), ("object", "a.txt", "d/a.txt", 1), ("object", "b.txt", "d/b.txt", 10)]
    assert format_entry(level[0]) == f"{'PRE':>30} sub/"
    assert level[1].etag == hashlib.md5(b"x").hexdigest() and level[1].time is not None
    root = list(ls("s3://lake", CFG, store=store))
    assert [(e.kind, e.name) for e in root] == [("prefix", "d/"), ("object", "top.txt")]
    deep = list(ls("s3://lake/d/", CFG, store=store, recursive=True))
    assert [(e.name, e.size_bytes) for e in deep] == [
        ("d/a.txt", 1), ("d/b.txt", 10), ("d/sub/c.bin", 2048), ("d/sub/deep/e", 3)]
    assert list(ls("s3://lake/nothing/", CFG, store=store)) == []
    assert ("ListObjectsV2", "d/") in store.request_log


def test_s3_object_stream_resumes_a_broken_body_at_the_byte_reached() -> None:
    """S3Store's streamed GetObject (store/s3_reads.py): a body that breaks after 100 bytes is asked
    again from byte 100 (``Range``), only while it is the same object (``If-Match``), the read
    retried by the store's policy; the bytes come out whole."""
    import urllib3.exceptions

    from s3pump.retry import RetryPolicy
    from s3pump.store.s3_reads import _BotoObjectStream

    data = os.urandom(1000)
    calls: list[dict[str, object]] = []
    retries: list[int] = []

    class Body:
        def __init__(self, rest: bytes, break_after: int | None) -> None:
            self.rest, self.break_after = rest, break_after

        def read(self, n: int) -> bytes:
            if self.break_after is not None and self.break_after <= 0:
                raise urllib3.exceptions.ProtocolError("Connection broken: reset by peer")
            n = min(n, self.break_after) if self.break_after is not None else n
            out, self.rest = self.rest[:n], self.rest[n:]
            if self.break_after is not None:
                self.break_after -= len(out)
            return out

        def close(self) -> None:
            return None

    class Client:
        def get_object(self, **kw: object) -> dict[str, object]:
            calls.append(kw)
            start = int(str(kw.get("Range", "bytes=0-"))[6:-1])
            return {"ETag": '"e1"', "ContentLength": len(data) - start,
                    "Body": Body(data[start:], 100 if not start else None)}

    class Host:
        retry = RetryPolicy(max_attempts=3, backoff_base_s=0.0, backoff_max_s=0.0,
                            on_retry=lambda what, attempt, delay, err: retries.append(attempt))
        _boto = Client()

        def _call_once(self, what: str, fn: Callable[..., Any], **kw: Any) -> Any:
            return fn(**kw)

    stream = _BotoObjectStream(Host(), "bkt", "k")  # type: ignore[arg-type]
    assert (stream.size_bytes, stream.etag) == (1000, "e1")
    got = stream.read(600) + stream.read(600)
    assert got == data
    assert calls[1] == {"Bucket": "bkt", "Key": "k", "Range": "bytes=100-", "IfMatch": '"e1"'}
    assert retries == [2]
