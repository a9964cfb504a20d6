"""The engine against the in-memory store: exact results, retries, failures, aborts, cancellation."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import pytest

from s3pump import TransferConfig, upload
from s3pump.engine.multipart import multipart_etag
from s3pump.engine.scheduler import Engine
from s3pump.errors import (
    AccessDeniedError,
    CancelledError,
    NetworkError,
    S3PumpError,
    SourceChangedError,
    StoreError,
    ThrottlingError,
)
from s3pump.events import EventBus, FileDone, FileFailed, MultipartAborted
from s3pump.items import UploadItem
from s3pump.jobs.generate import generate
from s3pump.store.memory import MemoryStore

MIB = 2**20
CFG = TransferConfig(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB, concurrency=8,
                     backoff_base_s=0.001, backoff_max_s=0.01)


def make_tree(root: Path) -> dict[str, bytes]:
    generate(root / "small", count=40, size_min_bytes=0, size_max_bytes=64 * 1024, seed=1)
    generate(root / "big", count=2, size_bytes=12 * MIB + 123, seed=2)
    (root / "deep" / "er").mkdir(parents=True)
    (root / "deep" / "er" / "x.txt").write_bytes(b"hello")
    (root / "empty.bin").write_bytes(b"")
    files = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            files[p.relative_to(root).as_posix()] = p.read_bytes()
    return files


def expected_etag(data: bytes, part_size: int = 5 * MIB) -> str:
    if len(data) <= part_size:
        return hashlib.md5(data).hexdigest()
    return multipart_etag([hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)])


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.create_bucket("bkt")
    return s


def test_uploads_every_file_exactly(tmp_path: Path, store: MemoryStore) -> None:
    files = make_tree(tmp_path / "src")
    report = upload([tmp_path / "src"], "s3://bkt/pre", CFG, store=store, failed_list=tmp_path / "f.jsonl")
    assert report.ok and report.files_done == len(files)
    assert report.bytes_done == sum(len(b) for b in files.values())
    objects = store.buckets["bkt"]
    assert set(objects) == {f"pre/{k}" for k in files}
    for rel, data in files.items():
        obj = objects[f"pre/{rel}"]
        assert obj.body == data
        assert obj.etag == expected_etag(data)
    assert not store.uploads.get("bkt")  # no multipart upload left open
    assert objects["pre/deep/er/x.txt"].content_type == "text/plain"


def test_retryable_errors_are_retried_until_success(tmp_path: Path, store: MemoryStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # every request is throttled twice: the storm's rate cut (engine/throttle.py, tested in test_limits and
    # the fault proxy's storm tests) would pace this run for over a minute; here only the retries count
    monkeypatch.setattr("s3pump.engine.throttle.STORM_THROTTLES", 10**9)
    files = make_tree(tmp_path / "src")
    seen: Counter[tuple[str, str]] = Counter()

    def fault(op: str, key: str) -> StoreError | None:
        seen[(op, key)] += 1
        if op in ("PutObject", "UploadPart") and seen[(op, key)] <= 2:
            return ThrottlingError(f"{key}: SlowDown", status=503, code="SlowDown")
        return None

    store.fault = fault
    report = upload([tmp_path / "src"], "s3://bkt/", CFG, store=store, failed_list=tmp_path / "f.jsonl")
    assert report.ok and report.files_done == len(files)
    assert report.retries >= 2 * (len(files) - 2)
    for rel, data in files.items():
        assert store.buckets["bkt"][rel].body == data


def test_dead_server_fails_files_within_retry_budget(tmp_path: Path, store: MemoryStore) -> None:
    files = make_tree(tmp_path / "src")
    store.fault = lambda op, key: NetworkError(f"{key}: connection refused")
    cfg = CFG.replace(retry_budget=50)
    failed = tmp_path / "failed.jsonl"
    report = upload([tmp_path / "src"], "s3://bkt/", cfg, store=store, failed_list=failed)
    assert report.files_failed == len(files) and report.files_done == 0
    assert report.retries <= 10  # 50 tokens / 5 per retry: no retry storm
    lines = failed.read_text().splitlines()
    assert len(lines) == len(files)
    assert not store.uploads.get("bkt")
    # the server comes back: --from-list uploads exactly the failed files
    store.fault = None
    rerun = upload([], "s3://bkt/", cfg, store=store, from_list=failed, failed_list=tmp_path / "f2.jsonl")
    assert rerun.ok and rerun.files_done == len(files)
    assert {k: o.body for k, o in store.buckets["bkt"].items()} == files


def test_fatal_error_fails_only_that_file(tmp_path: Path, store: MemoryStore) -> None:
    files = make_tree(tmp_path / "src")
    store.fault = lambda op, key: (AccessDeniedError(f"{key}: AccessDenied", status=403)
                                   if key == "deep/er/x.txt" else None)
    report = upload([tmp_path / "src"], "s3://bkt/", CFG, store=store, failed_list=tmp_path / "f.jsonl")
    assert report.files_failed == 1 and report.retries == 0
    assert report.failed[0].key == "deep/er/x.txt" and report.failed[0].error_type == "AccessDeniedError"
    assert set(store.buckets["bkt"]) == set(files) - {"deep/er/x.txt"}


def test_part_failure_aborts_the_multipart_upload(tmp_path: Path, store: MemoryStore) -> None:
    make_tree(tmp_path / "src")
    store.fault = lambda op, key: (AccessDeniedError(f"{key}: AccessDenied", status=403)
                                   if op == "UploadPart" and key == "big/file0.bin" else None)
    events: list[object] = []
    report = upload([tmp_path / "src"], "s3://bkt/", CFG, store=store, failed_list=tmp_path / "f.jsonl",
                    subscribers=[events.append])
    assert report.files_failed == 1
    assert "big/file0.bin" not in store.buckets["bkt"] and "big/file1.bin" in store.buckets["bkt"]
    assert any(isinstance(e, MultipartAborted) and e.key == "big/file0.bin" for e in events)
    assert not store.uploads.get("bkt")
    assert ("AbortMultipartUpload", "big/file0.bin") in store.request_log


def test_complete_failure_aborts(tmp_path: Path, store: MemoryStore) -> None:
    make_tree(tmp_path / "src")
    store.fault = lambda op, key: (AccessDeniedError(f"{key}: AccessDenied", status=403)
                                   if op == "CompleteMultipartUpload" else None)
    report = upload([tmp_path / "src"], "s3://bkt/", CFG, store=store, failed_list=tmp_path / "f.jsonl")
    assert report.files_failed == 2
    assert not store.uploads.get("bkt")
    assert not any(k.startswith("big/") for k in store.buckets["bkt"])


def test_file_changed_during_multipart_is_not_completed(tmp_path: Path, store: MemoryStore) -> None:
    big = tmp_path / "src" / "big.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(11 * MIB))

    def fault(op: str, key: str) -> StoreError | None:
        if op == "UploadPart":
            with open(big, "ab") as f:  # the file grows while it is being uploaded
                f.write(b"more")
        return None

    store.fault = fault
    report = upload([tmp_path / "src"], "s3://bkt/", CFG, store=store, failed_list=tmp_path / "f.jsonl")
    assert report.files_failed == 1 and report.failed[0].error_type == "SourceChangedError"
    assert "big.bin" not in store.buckets["bkt"]
    assert not store.uploads.get("bkt")


def test_cancel_aborts_open_multipart_uploads(tmp_path: Path, store: MemoryStore) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * MIB))
    engine_box: list[Engine] = []

    def fault(op: str, key: str) -> StoreError | None:
        if op == "UploadPart":
            engine_box[0].cancel()
        return None

    store.fault = fault
    events: list[object] = []
    engine = Engine(store, "bkt", CFG.replace(max_parts_in_flight=1), EventBus(events.append))
    engine_box.append(engine)
    st = big.stat()
    item = UploadItem("big.bin", st.st_size, str(big), path=str(big), mtime_ns=st.st_mtime_ns)
    with pytest.raises(CancelledError):
        engine.run([item])
    assert not store.uploads.get("bkt")
    assert "big.bin" not in store.buckets["bkt"]
    assert any(isinstance(e, MultipartAborted) for e in events)


def test_missing_path_and_bad_key_fail_alone(tmp_path: Path, store: MemoryStore) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_bytes(b"ok")
    bad_name = os.fsencode(src) + b"/bad\xff.txt"
    with open(bad_name, "wb") as f:
        f.write(b"x")
    events: list[object] = []
    report = upload([src, tmp_path / "missing"], "s3://bkt/p/", CFG, store=store,
                    failed_list=tmp_path / "f.jsonl", subscribers=[events.append])
    assert set(store.buckets["bkt"]) == {"p/ok.txt"}
    failures = {type(e.error).__name__: str(e.error) for e in events if isinstance(e, FileFailed)}
    assert set(failures) == {"SourceNotFoundError", "InvalidKeyError"}
    assert "missing" in failures["SourceNotFoundError"]
    assert "UTF-8" in failures["InvalidKeyError"]
    assert report.files_done == 1 and report.files_failed == 2


def test_single_file_to_exact_key_and_prefix(tmp_path: Path, store: MemoryStore) -> None:
    f = tmp_path / "a.txt"
    f.write_bytes(b"A")
    upload([f], "s3://bkt/exact/name.txt", CFG, store=store, failed_list=tmp_path / "x")
    upload([f], "s3://bkt/dir/", CFG, store=store, failed_list=tmp_path / "x")
    assert {"exact/name.txt", "dir/a.txt"} <= set(store.buckets["bkt"])


def test_engine_reports_each_item_once(tmp_path: Path, store: MemoryStore) -> None:
    """Every item ends in exactly one FileDone or FileFailed, under mixed faults."""
    files = make_tree(tmp_path / "src")
    n = Counter[str]()

    def fault(op: str, key: str) -> StoreError | None:
        n[key] += 1
        if n[key] % 3 == 1:
            return ThrottlingError("slow", status=503, code="SlowDown")
        if key.endswith("7.bin"):
            return AccessDeniedError("no", status=403)
        return None

    store.fault = fault
    events: list[object] = []
    upload([tmp_path / "src"], "s3://bkt/", CFG, store=store, failed_list=tmp_path / "f", subscribers=[events.append])
    outcomes = Counter(e.key for e in events if isinstance(e, FileDone | FileFailed))
    assert set(outcomes) == set(files) and set(outcomes.values()) == {1}


def test_errors_carry_exit_codes() -> None:
    assert S3PumpError().exit_code == 1
    assert CancelledError().exit_code == 130
    assert SourceChangedError("x").retryable is False
    assert ThrottlingError("x").retryable is True
