"""Sync planning pieces: external sort, merge-join, decisions, multipart ETags, checksum verdicts, hash cache."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3pump.engine.multipart import multipart_etag
from s3pump.errors import FatalStoreError
from s3pump.etags import candidate_part_sizes, file_digest, parse_etag
from s3pump.hashcache import HashCache
from s3pump.plan.extsort import ExternalSorter, Spool
from s3pump.plan.syncplan import (
    LocalRecord,
    RemoteRecord,
    checksum_verdict,
    decide,
    local_is_newer,
    merge_join,
    mtime_verdict,
    plan,
    recorded_mtime_ns,
)
from s3pump.store.base import ObjectInfo

MIB = 1024 * 1024


# ---------------------------------------------------------------- external sort
@given(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=300), st.integers(1, 50))
@settings(max_examples=60, deadline=None)
def test_external_sort_equals_sorted_by_utf8_bytes(keys: list[str], threshold: int) -> None:
    sorter = ExternalSorter(threshold)
    for i, k in enumerate(keys):
        sorter.add((k.encode("utf-8", "surrogatepass"), i))
    out = list(sorter.sorted())
    assert [r[0] for r in out] == sorted(k.encode("utf-8", "surrogatepass") for k in keys)
    assert sorter.runs == 0  # closed after iteration


def test_external_sort_spills_and_cleans_up(tmp_path: Path) -> None:
    sorter = ExternalSorter(1000, tmp_dir=str(tmp_path))
    keys = [f"d{random.randrange(10**9):09d}/f".encode() for _ in range(10_500)]
    for k in keys:
        sorter.add((k, 1))
    assert sorter.runs == 10
    it = sorter.sorted()
    assert [r[0] for r in it] == sorted(keys)
    assert list(tmp_path.iterdir()) == []  # TemporaryFile: unlinked at creation


def test_spool_keeps_order_across_spills() -> None:
    spool = Spool(max_items_in_memory=7)
    for i in range(50):
        spool.append(f"k{i}")
    assert list(spool) == [f"k{i}" for i in range(50)] and len(spool) == 50
    spool.close()


def test_s3_key_order_is_not_directory_order() -> None:
    # '-' (0x2d) < '/' (0x2f): "a-c" sorts before "a/b" although the walk visits dir "a" first
    sorter = ExternalSorter(1)
    for k in ["a/b", "a-c", "a.d", "a/0"]:
        sorter.add((k.encode(), 0, 0))
    assert [r[0] for r in sorter.sorted()] == [b"a-c", b"a.d", b"a/0", b"a/b"]


# ---------------------------------------------------------------- merge-join and decisions
@given(st.sets(st.integers(0, 60)), st.sets(st.integers(0, 60)))
def test_merge_join_pairs_every_key_once(local_ids: set[int], remote_ids: set[int]) -> None:
    local = [LocalRecord(f"k{i:03d}".encode(), i, 0) for i in sorted(local_ids)]
    remote = [RemoteRecord(f"k{i:03d}".encode(), i, "e", 0.0) for i in sorted(remote_ids)]
    pairs = list(merge_join(local, remote))
    keys = [(lr or rr)[0] for lr, rr in pairs]  # type: ignore[index]
    assert keys == sorted({f"k{i:03d}".encode() for i in local_ids | remote_ids})
    for lr, rr in pairs:
        k = int((lr or rr)[0][1:])  # type: ignore[index]
        assert (lr is not None) == (k in local_ids) and (rr is not None) == (k in remote_ids)


def test_merge_join_refuses_unsorted_input() -> None:
    with pytest.raises(ValueError, match="not sorted"):
        list(merge_join([LocalRecord(b"b", 1, 0), LocalRecord(b"a", 1, 0)], []))


def test_decide_default_size_only_checksum() -> None:
    loc = LocalRecord(b"k", 10, 2_000_000_000_000_000_000)
    same_old = RemoteRecord(b"k", 10, "e", 1_000_000_000.0)
    assert decide(loc, None, "default", False).kind == "upload"
    assert decide(None, same_old, "default", False).kind == "keep"
    assert decide(None, same_old, "default", True).kind == "delete"
    assert decide(loc, RemoteRecord(b"k", 11, "e", 3e9), "default", False).reason.startswith("size differs")
    # the aws cli's rule is the server-modtime mode's (default before issue 26)
    assert decide(loc, same_old, "server-modtime", False).kind == "upload"  # local newer
    assert decide(loc, RemoteRecord(b"k", 10, "e", 3e9), "server-modtime", False).kind == "skip"  # object newer
    assert decide(loc, RemoteRecord(b"k", 11, "e", 3e9), "server-modtime", False).reason.startswith("size differs")
    # the default (rclone's rule): the same size is compared with the object's recorded mtime
    assert decide(loc, same_old, "default", False).kind == "compare"
    assert decide(loc, RemoteRecord(b"k", 10, "e", 3e9), "default", False).kind == "compare"
    assert decide(loc, same_old, "size-only", False).kind == "skip"
    assert decide(loc, same_old, "checksum", False).kind == "compare"
    assert decide(loc, RemoteRecord(b"k", 9, "e", 0.0), "checksum", False).kind == "upload"


def test_newer_compares_like_awscli_in_microseconds() -> None:
    assert not local_is_newer(100_000_000_000, 100.0)  # equal: same
    assert local_is_newer(100_000_001_000, 100.0)  # 1 us later
    assert not local_is_newer(100_000_000_400, 100.0)  # sub-microsecond: awscli can't see it
    assert not local_is_newer(99_900_000_000, 100.0)


def test_plan_in_key_order() -> None:
    local = [LocalRecord(b"p/a", 1, 0), LocalRecord(b"p/c", 2, 0)]
    remote = [RemoteRecord(b"p/b", 1, "e", 0.0), RemoteRecord(b"p/c", 2, "e", 9e9)]
    assert [(a.kind, a.key) for a in plan(local, remote, "server-modtime", delete=True)] == [
        ("upload", "p/a"), ("delete", "p/b"), ("skip", "p/c")]
    assert [(a.kind, a.key) for a in plan(local, remote, "default", delete=True)] == [
        ("upload", "p/a"), ("delete", "p/b"), ("compare", "p/c")]


def test_mtime_verdict_is_rclones_rule_with_the_aws_rule_as_fallback() -> None:
    """Issue 26: the recorded mtime (rclone's format) decides to the nanosecond; LastModified only
    without one."""
    ns = 1_600_000_000_123_456_789
    info = ObjectInfo("k", 10, "e", 1.0, {"mtime": "1600000000.123456789"})
    assert recorded_mtime_ns("1600000000.123456789") == ns and recorded_mtime_ns("1600000000") == 1_600_000_000 * 10**9
    assert recorded_mtime_ns("1600000000.5") == 1_600_000_000_500_000_000
    assert recorded_mtime_ns("2024-01-01T00:00:00Z") is None and recorded_mtime_ns(None) is None
    assert mtime_verdict(ns, info, 9e9).same  # LastModified later or earlier: the recorded mtime decides
    assert mtime_verdict(ns, info, 1.0).same
    changed = mtime_verdict(ns - 1, info, 9e9)
    assert not changed.same and "older" in changed.reason
    assert "newer" in mtime_verdict(ns + 1000, info, 9e9).reason
    plain = ObjectInfo("k", 10, "e", 1_600_000_000.0, {})
    assert not mtime_verdict(ns, plain, 1_600_000_000.0).same  # no recorded mtime: the aws rule
    assert mtime_verdict(ns, plain, 1_700_000_000.0).same
    assert not mtime_verdict(ns, None, 0.0).same


# ---------------------------------------------------------------- ETags
def test_parse_etag() -> None:
    h = "0" * 31 + "a"
    assert parse_etag(h) == (h, None)
    assert parse_etag(f'"{h}-12"') == (h, 12)
    assert parse_etag("not-an-md5") is None


def test_candidate_part_sizes_cover_the_common_tools() -> None:
    size = 120 * MIB + 5
    assert 8 * MIB in candidate_part_sizes(size, 16, 8 * MIB)  # aws s3 cp / s3pump, 8 MiB
    assert 50 * MIB in candidate_part_sizes(size, 3, 8 * MIB)  # s5cmd, 50 MiB
    assert 16 * MIB in candidate_part_sizes(size, 8, 8 * MIB)
    assert candidate_part_sizes(size, 1, 8 * MIB) == [size]
    for n, sizes in ((16, candidate_part_sizes(size, 16, 8 * MIB)), (7, candidate_part_sizes(size, 7, 8 * MIB))):
        assert sizes and all(-(-size // p) == n for p in sizes)
    # awscli doubles 8 MiB until 10,000 parts suffice: 100 GiB -> 16 MiB parts, 6400 parts
    big = 100 * 1024 * MIB
    assert 16 * MIB in candidate_part_sizes(big, 6400, 8 * MIB)


def _multipart_of(data: bytes, part: int) -> str:
    return multipart_etag([hashlib.md5(data[i:i + part]).digest() for i in range(0, len(data), part)])


def test_file_digest_md5_and_multipart_in_one_pass(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 12345)
    f = tmp_path / "f"
    f.write_bytes(data)
    d = file_digest(str(f), [MIB, 2 * MIB, 1_000_000], buffer_bytes=300_000)
    assert d.md5 == hashlib.md5(data).hexdigest() and d.size_bytes == len(data)
    for p in (MIB, 2 * MIB, 1_000_000):
        assert d.multipart_etag_for(p) == _multipart_of(data, p)
    assert d.multipart_etag_for(8 * MIB) == _multipart_of(data, 8 * MIB)  # one part: md5 of the md5
    assert d.inode == f.stat().st_ino


# ---------------------------------------------------------------- checksum verdicts
def _digest(tmp_path: Path, data: bytes, parts: list[int] | tuple[int, ...] = ()):
    f = tmp_path / "x"
    f.write_bytes(data)
    return file_digest(str(f), list(parts))


def _info(md5: str | None = None, sse: str | None = None) -> ObjectInfo:
    return ObjectInfo("k", 0, "e", 0.0, {"md5": md5} if md5 else {}, sse)


def test_verdict_single_part(tmp_path: Path) -> None:
    d = _digest(tmp_path, b"hello")
    md5 = hashlib.md5(b"hello").hexdigest()

    def no_head() -> ObjectInfo:
        raise AssertionError("no HeadObject needed")

    assert checksum_verdict(d, RemoteRecord(b"k", 5, md5, 0.0), [], no_head).same
    v = checksum_verdict(d, RemoteRecord(b"k", 5, "f" * 32, 0.0), [], lambda: _info())
    assert not v.same and not v.fallback and "differs" in v.reason


def test_verdict_multipart_recomputed_or_metadata_or_fallback(tmp_path: Path) -> None:
    data = os.urandom(12 * MIB)
    d = _digest(tmp_path, data, [5 * MIB, 8 * MIB])
    real = _multipart_of(data, 8 * MIB)
    assert checksum_verdict(d, RemoteRecord(b"k", len(data), real, 0.0), [5 * MIB, 8 * MIB], lambda: None).same
    other = "a" * 32 + "-2"
    assert checksum_verdict(d, RemoteRecord(b"k", len(data), other, 0.0), [8 * MIB], lambda: _info(d.md5)).same
    v = checksum_verdict(d, RemoteRecord(b"k", len(data), other, 0.0), [8 * MIB], lambda: _info())
    assert not v.same and v.fallback and "matches no part size" in v.reason
    v = checksum_verdict(d, RemoteRecord(b"k", len(data), other, 0.0), [8 * MIB], lambda: _info("b" * 32))
    assert not v.same and not v.fallback


def test_verdict_sse_kms_and_sse_c(tmp_path: Path) -> None:
    d = _digest(tmp_path, b"secret")
    kms_etag = "c" * 32  # not the MD5 of the plaintext
    assert checksum_verdict(d, RemoteRecord(b"k", 6, kms_etag, 0.0), [], lambda: _info(d.md5, "aws:kms")).same
    v = checksum_verdict(d, RemoteRecord(b"k", 6, kms_etag, 0.0), [], lambda: _info(None, "aws:kms"))
    assert not v.same and v.fallback and "aws:kms" in v.reason

    def refused() -> ObjectInfo:
        raise FatalStoreError("s3://b/k: HTTP 400", status=400)

    v = checksum_verdict(d, RemoteRecord(b"k", 6, kms_etag, 0.0), [], refused)
    assert not v.same and v.fallback and "SSE-C" in v.reason


# ---------------------------------------------------------------- hash cache
def test_hash_cache_hit_only_while_identity_unchanged(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"one")
    cache = HashCache(tmp_path / "c.sqlite")
    d = file_digest(str(f), [])
    cache.put(str(f), d)
    cache.flush()
    assert cache.get(str(f), f.stat()) == d
    st0 = f.stat()
    f.write_bytes(b"two")  # same size, then the old mtime restored: only ctime tells
    os.utime(f, ns=(st0.st_atime_ns, st0.st_mtime_ns))
    st1 = f.stat()
    assert (st1.st_size, st1.st_mtime_ns, st1.st_ino) == (st0.st_size, st0.st_mtime_ns, st0.st_ino)
    assert cache.get(str(f), st1) is None
    cache.close()
    again = HashCache(tmp_path / "c.sqlite")  # persisted
    assert again.get(str(f), st0) == d
    again.close()


def test_hash_cache_off_when_unusable(tmp_path: Path) -> None:
    bad = tmp_path / "c.sqlite"
    bad.write_bytes(b"not a database" * 100)
    cache = HashCache(bad)
    assert not cache.enabled and cache.error
    cache.put("x", file_digest(str(bad), []))
    cache.close()


def test_fast_listing_parser_decodes_url_keys_and_times() -> None:
    from s3pump.store.listing import parse_list_page

    raw = (b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
           b"<EncodingType>url</EncodingType><IsTruncated>false</IsTruncated>"
           b"<Contents><Key>p/sp+ace/%C3%A9+a%2Bb%26c.txt</Key><LastModified>2024-01-02T03:04:05.000Z</LastModified>"
           b"<ETag>&quot;0123456789abcdef0123456789abcdef-3&quot;</ETag><Size>42</Size></Contents>"
           b"</ListBucketResult>")
    [info], truncated, token = parse_list_page(raw)
    assert not truncated and token is None
    assert info.key == "p/sp ace/\u00e9 a+b&c.txt" and info.size_bytes == 42
    assert info.etag == "0123456789abcdef0123456789abcdef-3" and info.last_modified == 1704164645.0
