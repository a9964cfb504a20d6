"""s3pump.stream on the MemoryStore: single PUT vs multipart, checksums, part-size schedule,
expected size, read errors, part failures, spooling, memory bound. Parts are shrunk with a
PartSchedule (the MemoryStore's minimum part size is lowered to match)."""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
from pathlib import Path

import pytest

from s3pump.config import MAX_PART_SIZE_BYTES, MIN_PART_SIZE_BYTES, TransferConfig
from s3pump.errors import (
    FatalStoreError,
    ServerError,
    SourceError,
    SourceTruncatedError,
    SourceUnreadableError,
    StoreError,
    UsageError,
)
from s3pump.jobs.stream import parse_tolerance, stream, stream_limits
from s3pump.sources.stdin import PartSchedule, StreamPartSource
from s3pump.store.body import BufferSlice
from s3pump.store.checksums import full_checksum
from s3pump.store.memory import MemoryStore

KIB = 1024
MIB = 1024 * KIB
TIB = 1024**4
BUCKET = "bkt"


def _store(**kw: object) -> MemoryStore:
    store = MemoryStore(min_part_size_bytes=KIB, **kw)  # type: ignore[arg-type]
    store.create_bucket(BUCKET)
    return store


def _data(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def _assert_nothing_left(store: MemoryStore, key: str = "k") -> None:
    assert store.head_object(BUCKET, key) is None
    assert list(store.list_multipart_uploads(BUCKET)) == []


SMALL = PartSchedule(start_bytes=KIB, flat_parts=10_000)
CONFIG = TransferConfig(concurrency=4, max_attempts=2, backoff_base_s=0.0)


class RaisingReader(io.RawIOBase):
    """Yields ``good`` bytes, then raises EIO: a producer or disk that fails mid-stream."""

    def __init__(self, good: bytes) -> None:
        self._buf = io.BytesIO(good)

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        n = self._buf.readinto(b)
        if n:
            return n
        raise OSError(5, "Input/output error")


def test_small_stream_is_one_put_with_digests() -> None:
    store, data = _store(), _data(700)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL, sha256=True,
                    md5=True)
    obj = store.buckets[BUCKET]["k"]
    assert obj.body == data
    assert obj.metadata == {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
    assert report.parts == 0 and report.bytes == 700 and report.etag == hashlib.md5(data).hexdigest()
    assert ("CreateMultipartUpload", "k") not in store.request_log


def test_exactly_one_part_is_one_put() -> None:
    store, data = _store(), _data(KIB)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL)
    assert store.get_object(BUCKET, "k") == data and report.parts == 0


def test_empty_stream_is_a_zero_byte_object() -> None:
    store = _store()
    report = stream(io.BytesIO(b""), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL, sha256=True)
    obj = store.buckets[BUCKET]["k"]
    assert obj.body == b"" and report.bytes == 0
    assert obj.metadata["sha256"] == hashlib.sha256(b"").hexdigest()


def test_multipart_stream_bytes_and_digests() -> None:
    store, data = _store(), _data(20 * KIB + 123)
    report = stream(io.BufferedReader(io.BytesIO(data)), f"s3://{BUCKET}/k", CONFIG, store=store,
                    schedule=SMALL, sha256=True, md5=True)
    obj = store.buckets[BUCKET]["k"]
    assert obj.body == data
    assert obj.etag.endswith("-21") and report.etag == obj.etag and report.parts == 21
    assert obj.metadata == {"md5": hashlib.md5(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()}
    assert report.part_sizes == [(KIB, 21)]
    assert list(store.list_multipart_uploads(BUCKET)) == []


def test_raw_readable_short_reads_are_joined() -> None:
    r, w = os.pipe()
    data = _data(10 * KIB + 5)

    def produce() -> None:
        with os.fdopen(w, "wb", buffering=0) as f:
            for i in range(0, len(data), 333):
                f.write(data[i:i + 333])

    t = threading.Thread(target=produce)
    t.start()
    store = _store()
    with os.fdopen(r, "rb", buffering=0) as raw:
        stream(raw, f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL)
    t.join()
    assert store.get_object(BUCKET, "k") == data


def test_user_attributes_survive_the_digest_copy() -> None:
    store, data = _store(), _data(5 * KIB)
    cfg = CONFIG.replace(metadata=(("owner", "db-team"),), content_type="application/gzip")
    stream(io.BytesIO(data), f"s3://{BUCKET}/k", cfg, store=store, schedule=SMALL, md5=True)
    obj = store.buckets[BUCKET]["k"]
    assert obj.metadata["owner"] == "db-team" and obj.content_type == "application/gzip"
    assert obj.metadata["md5"] == hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------- part-size schedule
def test_default_schedule_sizes_and_capacity() -> None:
    s = PartSchedule.growing(8 * MIB)
    assert s.part_size(1) == s.part_size(1000) == 8 * MIB
    assert s.part_size(1001) == s.part_size(1100) == 16 * MIB
    assert s.part_size(1101) == 32 * MIB
    assert s.part_size(1900) == 4096 * MIB and s.part_size(1901) == MAX_PART_SIZE_BYTES
    assert s.part_size(10_000) == MAX_PART_SIZE_BYTES
    sizes = [s.part_size(n) for n in range(1, 10_001)]
    assert sizes == sorted(sizes) and min(sizes) >= MIN_PART_SIZE_BYTES and max(sizes) <= MAX_PART_SIZE_BYTES
    assert s.capacity_bytes() == sum(sizes)
    assert s.capacity_bytes() > 10_000 * 8 * MIB  # a fixed 8 MiB part size stops at 78 GiB
    assert s.capacity_bytes() >= 40 * TIB  # 40.3 TiB; 48.8 TiB needs every part at 5 GiB


def test_expected_size_schedule_fits_ten_thousand_parts() -> None:
    s = PartSchedule.for_expected_size(200 * 1024**3, 8 * MIB)
    assert s.part_size(1) == s.part_size(10_000) == 21 * MIB
    assert s.capacity_bytes() >= 200 * 1024**3
    assert PartSchedule.for_expected_size(10_000 * MAX_PART_SIZE_BYTES, 8 * MIB).part_size(1) == MAX_PART_SIZE_BYTES
    with pytest.raises(UsageError):
        PartSchedule.for_expected_size(10_000 * MAX_PART_SIZE_BYTES + 1, 8 * MIB)


def test_stream_grows_parts_past_fixed_capacity() -> None:
    """Scaled down: 1 KiB start, growth after 4 parts, every 2 parts, at most 20 parts. A fixed
    1 KiB part size holds 20 KiB in 20 parts; the growing schedule stores 100 KiB in fewer."""
    schedule = PartSchedule(start_bytes=KIB, flat_parts=4, double_every_parts=2, max_part_bytes=32 * KIB,
                            max_parts=20)
    store, data = _store(), _data(100 * KIB)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=schedule)
    assert store.get_object(BUCKET, "k") == data
    assert report.bytes > 20 * KIB and report.parts <= 20
    sizes = [size for size, _ in report.part_sizes]
    assert sizes[:4] == [KIB, 2 * KIB, 4 * KIB, 8 * KIB] and max(sizes) == 32 * KIB
    assert report.part_sizes[0] == (KIB, 4)


def test_stream_over_schedule_capacity_aborts() -> None:
    schedule = PartSchedule(start_bytes=KIB, flat_parts=10_000, max_parts=5)
    store = _store()
    with pytest.raises(SourceError, match="expected-size"):
        stream(io.BytesIO(_data(6 * KIB)), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=schedule)
    _assert_nothing_left(store)


# ---------------------------------------------------------------- nothing partial
@pytest.mark.parametrize("actual", [10 * KIB - 1, 10 * KIB + 1, 3 * KIB])
def test_expected_size_mismatch_aborts(actual: int) -> None:
    store = _store()
    with pytest.raises(SourceTruncatedError):
        stream(io.BytesIO(_data(actual)), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL,
               expected_size_bytes=10 * KIB)
    _assert_nothing_left(store)


def test_expected_size_mismatch_of_a_small_stream_stores_nothing() -> None:
    store = _store()
    with pytest.raises(SourceTruncatedError):
        stream(io.BytesIO(b"abc"), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL, expected_size_bytes=4)
    _assert_nothing_left(store)


def test_size_tolerance_window() -> None:
    store = _store()
    data = _data(10 * KIB - 100)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL,
                    expected_size_bytes=10 * KIB, size_tolerance_bytes=100)
    assert report.bytes == len(data) and store.get_object(BUCKET, "k") == data
    with pytest.raises(SourceTruncatedError):
        stream(io.BytesIO(_data(10 * KIB + 101)), f"s3://{BUCKET}/k2", CONFIG, store=store, schedule=SMALL,
               expected_size_bytes=10 * KIB, size_tolerance_bytes=100)
    _assert_nothing_left(store, "k2")


def test_read_error_mid_stream_aborts() -> None:
    store = _store()
    reader = io.BufferedReader(RaisingReader(_data(7 * KIB + 10)))
    with pytest.raises(SourceUnreadableError, match="read failed after"):
        stream(reader, f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL)
    _assert_nothing_left(store)
    assert ("AbortMultipartUpload", "k") in store.request_log


def test_read_error_in_first_part_stores_nothing() -> None:
    store = _store()
    with pytest.raises(SourceUnreadableError):
        stream(io.BufferedReader(RaisingReader(b"x" * 10)), f"s3://{BUCKET}/k", CONFIG, store=store,
               schedule=SMALL)
    _assert_nothing_left(store)


def test_part_failures_past_retries_abort() -> None:
    calls = {"n": 0}

    def fault(op: str, key: str) -> FatalStoreError | None:
        if op == "UploadPart":
            calls["n"] += 1
            if calls["n"] == 3:
                return FatalStoreError("s3://bkt/k: AccessDenied", status=403, code="AccessDenied")
        return None

    store = _store(fault=fault)
    with pytest.raises(FatalStoreError):
        stream(io.BytesIO(_data(20 * KIB)), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL)
    _assert_nothing_left(store)


def test_destination_needs_a_key() -> None:
    with pytest.raises(UsageError):
        stream(io.BytesIO(b"x"), f"s3://{BUCKET}/dir/", CONFIG, store=_store())
    with pytest.raises(UsageError):
        stream(io.BytesIO(b"x"), f"s3://{BUCKET}", CONFIG, store=_store())


# ---------------------------------------------------------------- memory bound, spool
def test_limits_split_the_budget() -> None:
    assert stream_limits(2) == (1, 2)
    assert stream_limits(8) == (4, 4)
    assert stream_limits(9) == (4, 5)
    assert stream_limits(16, spooled=True) == (4, 12)
    with pytest.raises(UsageError):
        stream_limits(1)


def test_parts_held_never_exceed_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that answers late: the reader must stop at ``buffers`` parts held."""
    store = _store()
    held_max = {"n": 0}
    source_box: list[StreamPartSource] = []

    def fault(op: str, key: str) -> None:
        if op == "UploadPart" and source_box:
            s = source_box[0]
            held_max["n"] = max(held_max["n"], len(s._held))
            threading.Event().wait(0.002)
        return None

    store.fault = fault
    data = _data(64 * KIB)
    start = StreamPartSource.start

    def start_and_keep(self: StreamPartSource) -> None:  # the job's source, for the fault hook
        source_box.append(self)
        start(self)

    monkeypatch.setattr(StreamPartSource, "start", start_and_keep)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG.replace(concurrency=6), store=store,
                    schedule=SMALL)
    assert store.get_object(BUCKET, "k") == data
    _, buffers = stream_limits(6)
    assert 1 <= report.peak_parts_held <= buffers and held_max["n"] <= buffers


class _BufferLog:
    """Wraps StreamPartSource._take_buffer: every buffer handed out, kept alive so ids stay unique."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.buffers: list[bytearray] = []
        take = StreamPartSource._take_buffer

        def logged(source: StreamPartSource, size: int) -> bytearray:
            buffer = take(source, size)
            self.buffers.append(buffer)
            return buffer

        monkeypatch.setattr(StreamPartSource, "_take_buffer", logged)

    def distinct(self) -> int:
        return len({id(b) for b in self.buffers})


def test_part_buffers_are_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """65 parts through at most ``buffers`` part buffers, and every byte still right (a buffer
    reused before its part was stored would corrupt an earlier part)."""
    log = _BufferLog(monkeypatch)
    store, data = _store(), _data(64 * KIB + 100)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL, sha256=True)
    _, buffers = stream_limits(CONFIG.concurrency)
    assert report.parts == 65 and store.get_object(BUCKET, "k") == data
    assert store.buckets[BUCKET]["k"].metadata["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(log.buffers) == 65 and log.distinct() <= buffers


def test_retried_parts_are_read_again_from_their_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other UploadPart fails once: the retry re-reads the part's (not yet reused) buffer."""
    log = _BufferLog(monkeypatch)
    attempts: dict[int, int] = {}

    def fault(op: str, key: str) -> ServerError | None:
        if op != "UploadPart":
            return None
        n = len(attempts)
        attempts[n] = 1
        return ServerError("s3://bkt/k: InternalError", status=500, code="InternalError") if n % 2 == 0 else None

    store, data = _store(fault=fault), _data(32 * KIB + 17)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG.replace(max_attempts=3), store=store,
                    schedule=SMALL, md5=True)
    assert store.get_object(BUCKET, "k") == data and report.retries >= 16
    assert store.buckets[BUCKET]["k"].metadata["md5"] == hashlib.md5(data).hexdigest()
    assert log.distinct() <= stream_limits(CONFIG.concurrency)[1]


def test_growing_part_size_starts_a_new_buffer_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    log = _BufferLog(monkeypatch)
    growing = PartSchedule(start_bytes=KIB, flat_parts=4, double_every_parts=4)  # 1 KiB x4, 2 KiB x4, 4 KiB...
    store, data = _store(), _data(40 * KIB + 5)
    stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=growing)
    assert store.get_object(BUCKET, "k") == data
    sizes = [len(b) for b in log.buffers]
    assert sizes == sorted(sizes) and {KIB, 2 * KIB, 4 * KIB} <= set(sizes)


def test_readable_without_readinto() -> None:
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self._f = io.BytesIO(data)

        def read(self, size: int = -1, /) -> bytes:
            return self._f.read(min(size, 300))  # short reads, like a raw pipe

    store, data = _store(), _data(9 * KIB + 7)
    stream(ReadOnly(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL)
    assert store.get_object(BUCKET, "k") == data


def test_released_buffer_slice_refuses_reads() -> None:
    buffer = bytearray(b"0123456789")
    part = BufferSlice(buffer, 6)
    reader = part.reader()
    out = bytearray(4)
    assert reader.readinto(memoryview(out)) == 4 and out == b"0123"
    assert reader.read() == b"45" and part.read() == b"012345"
    reader.seek(0)
    part.release()
    with pytest.raises(SourceUnreadableError):
        reader.readinto(memoryview(out))
    with pytest.raises(SourceUnreadableError):
        part.read()


def test_spooled_stream_deletes_its_files(tmp_path: Path) -> None:
    store, data = _store(), _data(9 * KIB + 1)
    spool = tmp_path / "spool"
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL, sha256=True,
                    spool_dir=str(spool))
    assert store.get_object(BUCKET, "k") == data and report.spooled and report.parts == 10
    assert store.buckets[BUCKET]["k"].metadata["sha256"] == hashlib.sha256(data).hexdigest()
    assert list(spool.iterdir()) == []


def test_spooled_small_stream_is_one_put(tmp_path: Path) -> None:
    store, data = _store(), _data(100)
    stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL, spool_dir=str(tmp_path))
    assert store.get_object(BUCKET, "k") == data
    assert list(tmp_path.iterdir()) == []


def test_spooled_failure_deletes_its_files(tmp_path: Path) -> None:
    store = _store()
    with pytest.raises(SourceUnreadableError):
        stream(io.BufferedReader(RaisingReader(_data(5 * KIB + 3))), f"s3://{BUCKET}/k", CONFIG, store=store,
               schedule=SMALL, spool_dir=str(tmp_path))
    _assert_nothing_left(store)
    assert list(tmp_path.iterdir()) == []


def test_parse_tolerance() -> None:
    assert parse_tolerance("10MiB", 100) == 10 * MIB
    assert parse_tolerance("1%", 1000 * MIB) == 10 * MIB
    assert parse_tolerance("0", 5) == 0
    with pytest.raises(UsageError):
        parse_tolerance("1%", None)
    with pytest.raises(UsageError):
        parse_tolerance("x%", 100)


def test_md5_and_sha256_are_options_the_full_object_crc_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default (issue 28): no MD5 is computed (no hashlib.md5 in the stream's source), no md5
    metadata and no metadata copy; the whole stream's CRC32C is sent at completion (the server
    checks it) and stays on the object as its FULL_OBJECT checksum."""
    import s3pump.sources.stdin as stdin

    def no_md5(*a: object, **kw: object) -> object:
        raise AssertionError("the stream computed an MD5")

    import types

    monkeypatch.setattr(stdin, "hashlib", types.SimpleNamespace(md5=no_md5, sha256=hashlib.sha256))
    store, data = _store(), _data(20 * KIB + 123)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL)
    assert store.get_object(BUCKET, "k") == data and report.parts == 21
    assert store.buckets[BUCKET]["k"].metadata == {} and ("CopyObject", "k") not in store.request_log
    assert report.md5 is None and report.sha256 is None and report.checksum_algorithm == "CRC32C"
    assert report.checksum == full_checksum("CRC32C", data)[1] and report.to_json()["md5"] is None
    head = store.head_object(BUCKET, "k", checksum_mode=True)
    assert head is not None and head.checksum_type == "FULL_OBJECT" and head.checksums == {"CRC32C": report.checksum}


@pytest.mark.parametrize("spooled", [False, True])
def test_md5_option_restores_the_md5_metadata(tmp_path: Path, spooled: bool) -> None:
    store, data = _store(), _data(20 * KIB + 123)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL, md5=True,
                    spool_dir=str(tmp_path / "spool") if spooled else None)
    assert store.buckets[BUCKET]["k"].metadata == {"md5": hashlib.md5(data).hexdigest()} and report.parts == 21
    assert report.md5 == hashlib.md5(data).hexdigest() and report.checksum == full_checksum("CRC32C", data)[1]


@pytest.mark.parametrize("algorithm", ["SHA256", "none"])
def test_without_a_full_object_crc_the_md5_is_stored_anyway(algorithm: str) -> None:
    """SHA1/SHA256/none have no FULL_OBJECT form: the MD5 stays the whole stream's record."""
    store, data = _store(), _data(5 * KIB + 3)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG.replace(checksum_algorithm=algorithm),
                    store=store, schedule=SMALL)
    assert report.checksum is None and report.md5 == hashlib.md5(data).hexdigest()
    assert store.buckets[BUCKET]["k"].metadata == {"md5": report.md5}


@pytest.mark.parametrize("spooled", [False, True])
def test_a_wrong_full_object_checksum_is_refused_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spooled: bool
) -> None:
    """A stream whose whole-object CRC does not match what the store assembled (a byte changed
    between reading and storing) is refused at completion: no object, no open upload."""
    monkeypatch.setattr(StreamPartSource, "full_object_checksum",
                        property(lambda self: ("CRC32C", full_checksum("CRC32C", b"not the stream")[1])))
    store, data = _store(), _data(20 * KIB + 123)
    with pytest.raises(StoreError, match="BadDigest"):
        stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL,
               spool_dir=str(tmp_path / "spool") if spooled else None)
    assert "k" not in store.buckets[BUCKET] and list(store.list_multipart_uploads(BUCKET)) == []


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC32", "CRC64NVME"])
@pytest.mark.parametrize("spooled", [False, True])
def test_each_part_carries_the_checksum_of_its_own_bytes_computed_in_the_one_read_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, algorithm: str, spooled: bool
) -> None:
    """The reader computes each part's CRC once, hands it to the store as the part's checksum (so
    awscrt need not read the part again) and combines it into the whole stream's: every part's
    checksum is the CRC of exactly the bytes stored for it, and the combination is the CRC of
    the whole stream."""
    seen: dict[int, tuple[tuple[str, str] | None, bytes]] = {}
    upload_part = MemoryStore.upload_part

    def spy(self: MemoryStore, bucket: str, key: str, upload_id: str, part_number: int, body, on_done):  # type: ignore[no-untyped-def]
        seen[part_number] = (getattr(body, "checksum", None), bytes(body.read()))
        return upload_part(self, bucket, key, upload_id, part_number, body, on_done)

    monkeypatch.setattr(MemoryStore, "upload_part", spy)
    store, data = _store(), _data(20 * KIB + 123, seed=7)
    report = stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG.replace(checksum_algorithm=algorithm),
                    store=store, schedule=SMALL, spool_dir=str(tmp_path / "spool") if spooled else None)
    assert store.get_object(BUCKET, "k") == data and report.parts == 21 == len(seen)
    assert b"".join(seen[n][1] for n in sorted(seen)) == data
    for checksum, part in seen.values():
        assert checksum == full_checksum(algorithm, part)
    assert (report.checksum_algorithm, report.checksum) == full_checksum(algorithm, data)


def test_a_part_whose_given_checksum_is_wrong_is_refused_and_nothing_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A part checksum that does not match the part's bytes (a reader bug, a buffer reused too
    early) is refused by the store (BadDigest, as S3 refuses a wrong x-amz-checksum-crc32c): the
    stream fails with no object and no open upload."""
    from s3pump.store.checksums import FullObjectChecksum

    part = FullObjectChecksum.part
    monkeypatch.setattr(FullObjectChecksum, "part", lambda self, data, crc=0: part(self, data, crc) ^ 1)
    store, data = _store(), _data(20 * KIB + 123)
    with pytest.raises(StoreError, match="BadDigest"):
        stream(io.BytesIO(data), f"s3://{BUCKET}/k", CONFIG, store=store, schedule=SMALL)
    _assert_nothing_left(store)
