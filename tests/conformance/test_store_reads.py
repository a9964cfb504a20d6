"""Issue 27: the Store calls ``ls`` and ``verify`` read with (ListBuckets, a delimiter listing,
HeadObject with a part number and checksums, a streamed GetObject), on every store of the
conformance suite (MemoryStore, SeaweedFS, moto)."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator

import pytest
from awscrt.checksums import crc32c

from s3pump.errors import StoreError
from s3pump.store.base import CommonPrefix, CompletedPart, ObjectAttributes, ObjectInfo, Store
from s3pump.store.memory import MemoryStore
from s3pump.store.s3 import S3Store
from tests.conformance.test_store import MIB, STORES, lacks, wait


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[tuple[Store, str]]:
    """A fresh bucket on each store (as test_store.py's fixture)."""
    bucket = f"c-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        s = S3Store(request.getfixturevalue("s3env" if request.param == "s3" else "moto_env").config())
    s.create_bucket(bucket)
    yield s, bucket
    s.close()


def _put(s: Store, b: str, key: str, body: bytes) -> str:
    return wait(lambda cb: s.put_bytes(b, key, body, ObjectAttributes(), cb)).etag


def test_list_buckets_holds_the_bucket(store: tuple[Store, str]) -> None:
    s, b = store
    buckets = {x.name: x for x in s.list_buckets()}
    assert b in buckets
    created = buckets[b].created
    assert created is None or created > 1_600_000_000


def test_list_level_gives_prefixes_and_objects_of_one_level(store: tuple[Store, str]) -> None:
    s, b = store
    for key in ("lv/a.txt", "lv/b c+é.txt", "lv/d1/x", "lv/d1/y/z", "lv/d 2/x", "lvx/other", "top"):
        _put(s, b, key, key.encode())
    entries = list(s.list_level(b, "lv/"))
    prefixes = sorted(e.prefix for e in entries if isinstance(e, CommonPrefix))
    objects = {e.key: e for e in entries if isinstance(e, ObjectInfo)}
    assert prefixes == ["lv/d 2/", "lv/d1/"]
    assert sorted(objects) == ["lv/a.txt", "lv/b c+é.txt"]
    assert objects["lv/a.txt"].size_bytes == len(b"lv/a.txt")
    assert objects["lv/a.txt"].etag == hashlib.md5(b"lv/a.txt").hexdigest()
    assert objects["lv/a.txt"].last_modified > 1_600_000_000
    # a prefix that is not a "directory": the keys and prefixes that start with it
    top = list(s.list_level(b, "lv"))
    assert sorted(e.prefix for e in top if isinstance(e, CommonPrefix)) == ["lv/", "lvx/"]
    assert not [e for e in top if isinstance(e, ObjectInfo)]
    root = list(s.list_level(b, ""))
    assert sorted(e.prefix for e in root if isinstance(e, CommonPrefix)) == ["lv/", "lvx/"]
    assert [e.key for e in root if isinstance(e, ObjectInfo)] == ["top"]
    assert list(s.list_level(b, "nothing/")) == []


def test_head_object_part_number_gives_the_part_and_the_count(store: tuple[Store, str]) -> None:
    s, b = store
    data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1000)]
    upload_id = s.create_multipart_upload(b, "hp/mp", ObjectAttributes())
    parts = []
    for n, d in enumerate(data, 1):
        r = wait(lambda cb, n=n, d=d: s.upload_part(b, "hp/mp", upload_id, n, d, cb))
        parts.append(CompletedPart(n, r.etag, len(d), r.checksum))
    s.complete_multipart_upload(b, "hp/mp", upload_id, parts)
    whole = s.head_object(b, "hp/mp")
    assert whole is not None and whole.size_bytes == 10 * MIB + 1000 and whole.parts_count is None
    first = s.head_object(b, "hp/mp", part_number=1)
    assert first is not None and first.size_bytes == 5 * MIB and first.parts_count == 3
    assert first.etag == whole.etag
    last = s.head_object(b, "hp/mp", part_number=3)
    assert last is not None and last.size_bytes == 1000 and last.parts_count == 3
    _put(s, b, "hp/single", b"x" * 100)
    single = s.head_object(b, "hp/single", part_number=1)  # part 1 of a single PUT: the whole object
    assert single is not None and single.size_bytes == 100 and single.parts_count in (None, 1)
    assert s.head_object(b, "hp/none", part_number=1) is None


def test_head_object_checksum_mode_shows_the_crc32c_sent(store: tuple[Store, str],
                                                          request: pytest.FixtureRequest) -> None:
    """A PUT sent with a CRC32C (S3Store's default; MemoryStore keeps one): HeadObject with checksum
    mode shows it, a full-object one; without checksum mode the answer holds none."""
    s, b = store
    body = os.urandom(3000)
    _put(s, b, "ck/obj", body)
    info = s.head_object(b, "ck/obj", checksum_mode=True)
    assert info is not None and info.size_bytes == 3000
    want = base64.b64encode(crc32c(body).to_bytes(4, "big")).decode()
    lacks(request, "moto", "moto 5.2 keeps no x-amz-checksum-crc32c sent as a header (botocore's HeadObject "
          "with ChecksumMode shows none either)")
    assert info.checksums.get("CRC32C") == want, info
    assert info.checksum_type in (None, "FULL_OBJECT")
    plain = s.head_object(b, "ck/obj")
    assert plain is not None and plain.checksums == {}


def test_get_object_stream_reads_the_body_in_pieces(store: tuple[Store, str]) -> None:
    s, b = store
    body = os.urandom(3 * MIB + 7)
    etag = _put(s, b, "gs/obj", body)
    stream = s.get_object_stream(b, "gs/obj")
    try:
        assert stream.size_bytes == len(body) and stream.etag == etag
        got = [stream.read(MIB) for _ in range(4)]
        assert [len(c) for c in got] == [MIB, MIB, MIB, 7]
        assert b"".join(got) == body
        assert stream.read(MIB) == b""
    finally:
        stream.close()
    _put(s, b, "gs/empty", b"")
    empty = s.get_object_stream(b, "gs/empty")
    assert empty.size_bytes == 0 and empty.read(10) == b""
    empty.close()
    with pytest.raises(StoreError) as e:
        s.get_object_stream(b, "gs/none")
    assert e.value.status == 404
