"""No multipart upload is left open with no record, and no run aborts another's (issue 12,
items 6, 7, 13 and 15), against the MemoryStore.

* an abort that fails during an outage stays recorded; the ``--from-list`` rerun aborts it;
* ``--no-resume`` after a kill between CreateMultipartUpload and the journal finds the upload;
* ``s3://b/p`` and ``s3://b/p/`` share one journal (the rerun resumes);
* a second Ctrl-C while sync stops still aborts its open upload;
* a second run of the same command refuses (exit 2); a finishing run leaves another's uploads;
* a rerun with another ``--checksum-algorithm`` starts a new upload;
* a server without ListParts makes the resume a fresh upload, not a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3pump import errors
from s3pump.config import TransferConfig
from s3pump.errors import CancelledError, FatalStoreError, NetworkError, ServerError
from s3pump.events import Event, MultipartCreated, PartDone
from s3pump.jobs.sync import sync
from s3pump.jobs.upload import upload
from s3pump.journal import Journal, journal_path
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore
from tests.faults.test_versions import as_kill9

MIB = 1024 * 1024
BUCKET = "obucket"


def _config(**kw: object) -> TransferConfig:
    return TransferConfig(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB, concurrency=1,
                          max_parts_in_flight=1, backoff_base_s=0.0, backoff_max_s=0.0,
                          max_attempts=2).replace(**kw)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "src"
    d.mkdir()
    (d / "big.bin").write_bytes(os.urandom(3 * 5 * MIB + 7))
    (d / "small.txt").write_bytes(b"small")
    return d


class _Kill(BaseException):
    """kill -9: the run stops where it is; nothing is aborted."""


def _kill_at(kind: type, n: int = 1):  # type: ignore[no-untyped-def]
    seen = [0]

    def sub(event: Event) -> None:
        if isinstance(event, kind):
            seen[0] += 1
            if seen[0] == n:
                raise _Kill

    return sub


@contextlib.contextmanager
def _two_minutes_ago() -> Iterator[None]:
    """While active, the wall clock reads two minutes ago (a run killed a while back: its uploads'
    Initiated and its journal entries both carry that time)."""
    real = time.time
    time.time = lambda: real() - 120.0
    try:
        yield
    finally:
        time.time = real


def _assert_uploaded(store: MemoryStore, src: Path, prefix: str) -> None:
    for name in ("big.bin", "small.txt"):
        assert store.buckets[BUCKET][f"{prefix}{name}"].body == (src / name).read_bytes()
    assert list(store.list_multipart_uploads(BUCKET)) == []


def _ops(store: MemoryStore, op: str) -> int:
    return sum(1 for o, _ in store.request_log if o == op)


# ---------------------------------------------------------------------------------------- item 6
class _OutageStore(MemoryStore):
    """A MemoryStore whose every request, AbortMultipartUpload included, fails while ``down``."""

    def __init__(self) -> None:
        super().__init__(fault=lambda op, key: NetworkError(f"{key}: connection refused") if self.down else None)
        self.down = False

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        if self.down:
            raise NetworkError(f"s3://{bucket}/{key}: connection refused")
        super().abort_multipart_upload(bucket, key, upload_id)


def test_abort_failed_in_an_outage_is_retried_by_the_from_list_rerun(src: Path, state: Path) -> None:
    store = _OutageStore()
    store.create_bucket(BUCKET)

    def outage_after_first_part(event: Event) -> None:
        if isinstance(event, PartDone):
            store.down = True

    # an outage longer than the run waits out (outage_tolerance_s), a while ago
    with _two_minutes_ago():
        report = upload([src], f"s3://{BUCKET}/o/", _config(outage_tolerance_s=0.0), store=store,
                        subscribers=[outage_after_first_part])
    assert not report.ok and report.failed_list_path
    assert len(list(store.uploads[BUCKET])) == 1  # the abort failed: the upload is still there
    store.down = False
    again = upload([], f"s3://{BUCKET}/o/", _config(), store=store, from_list=report.failed_list_path)
    assert again.ok
    _assert_uploaded(store, src, "o/")


def test_no_resume_after_a_kill_before_the_journal_knew_the_upload(src: Path, state: Path) -> None:
    store = MemoryStore()
    store.create_bucket(BUCKET)
    with _two_minutes_ago(), as_kill9(), pytest.raises(_Kill):  # Create returned; the journal never saw the upload ID
        upload([src], f"s3://{BUCKET}/n/", _config(), store=store, subscribers=[_kill_at(MultipartCreated)])
    assert len(store.uploads[BUCKET]) == 1
    report = upload([src], f"s3://{BUCKET}/n/", _config(), store=store, resume=False)
    assert report.ok
    _assert_uploaded(store, src, "n/")


def test_destination_with_and_without_slash_share_one_journal(src: Path, state: Path) -> None:
    store = MemoryStore()
    store.create_bucket(BUCKET)
    with _two_minutes_ago(), as_kill9(), pytest.raises(_Kill):
        upload([src], f"s3://{BUCKET}/p", _config(), store=store, subscribers=[_kill_at(PartDone, 2)])
    store.request_log.clear()
    report = upload([src], f"s3://{BUCKET}/p/", _config(), store=store)
    assert report.ok
    assert _ops(store, "CreateMultipartUpload") == 0  # the same upload was resumed
    _assert_uploaded(store, src, "p/")


class _HangingStore(MemoryStore):
    """Part 2 of any upload never answers (a stalled connection). The user presses Ctrl-C once
    it is sent, and again when the run, stopping, cancels it (which does not help)."""

    def upload_part(self, bucket, key, upload_id, part_number, body, on_done):  # type: ignore[no-untyped-def]
        if part_number >= 2:
            self.request_log.append(("UploadPart", key))
            os.kill(os.getpid(), signal.SIGINT)
            return _NeverDone()
        return super().upload_part(bucket, key, upload_id, part_number, body, on_done)


class _NeverDone:
    def cancel(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)


def test_second_ctrl_c_while_sync_stops_still_aborts_its_upload(src: Path, state: Path) -> None:
    store = _HangingStore()
    store.create_bucket(BUCKET)
    # Python's own SIGINT handler, as in the CLI's process (a pytest-xdist worker ignores SIGINT)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        t0 = time.monotonic()
        with pytest.raises(CancelledError):
            sync(src, f"s3://{BUCKET}/c/", _config(), store=store, hash_cache=False, handle_signals=True)
        assert time.monotonic() - t0 < 8  # it did not wait the 10 s for the stalled part
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the Run put it back
    finally:
        signal.signal(signal.SIGINT, outer)
    assert list(store.list_multipart_uploads(BUCKET)) == []
    assert ("AbortMultipartUpload", "c/big.bin") in store.request_log


# ---------------------------------------------------------------------------------------- item 7
def test_a_second_run_of_the_same_command_refuses_with_exit_2(src: Path, state: Path) -> None:
    store = MemoryStore()
    store.create_bucket(BUCKET)
    dest = f"s3://{BUCKET}/l/"
    held = Journal(journal_path(state, "upload", [str(src)], dest, None))  # a live run of the same command
    try:
        with pytest.raises(errors.JournalBusyError) as e:
            upload([src], dest, _config(), store=store)
        assert e.value.exit_code == 2 and "\n" not in str(e.value) and str(os.getpid()) in str(e.value)
        assert "l/big.bin" not in store.buckets[BUCKET] and not store.uploads.get(BUCKET)
    finally:
        held.close()
    assert upload([src], dest, _config(), store=store).ok  # once it is gone, the command runs


def test_a_finishing_run_does_not_abort_another_runs_upload(src: Path, state: Path) -> None:
    store = MemoryStore()
    store.create_bucket(BUCKET)
    # another live run (another command: the single file to the same key) has an upload in flight
    other = store.create_multipart_upload(BUCKET, "f/big.bin", ObjectAttributes())
    report = upload([src], f"s3://{BUCKET}/f/", _config(), store=store)
    assert report.ok
    assert [u.upload_id for u in store.list_multipart_uploads(BUCKET)] == [other]
    store.abort_multipart_upload(BUCKET, "f/big.bin", other)  # the other run's own business


# --------------------------------------------------------------------------------------- item 13
def test_rerun_with_another_checksum_algorithm_starts_a_new_upload(src: Path, state: Path) -> None:
    store = MemoryStore()
    store.create_bucket(BUCKET)
    with as_kill9(), pytest.raises(_Kill):
        upload([src], f"s3://{BUCKET}/k/", _config(checksum_algorithm="CRC32C"), store=store,
               subscribers=[_kill_at(PartDone, 2)])
    (old,) = list(store.list_multipart_uploads(BUCKET))
    store.request_log.clear()
    report = upload([src], f"s3://{BUCKET}/k/", _config(checksum_algorithm="SHA256"), store=store)
    assert report.ok
    assert _ops(store, "CreateMultipartUpload") == 1 and _ops(store, "UploadPart") == 4  # all 4 parts anew
    assert ("AbortMultipartUpload", "k/big.bin") in store.request_log
    assert old.upload_id not in store.uploads[BUCKET]
    _assert_uploaded(store, src, "k/")


# --------------------------------------------------------------------------------------- item 15
class _NoListParts(MemoryStore):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def list_parts(self, bucket: str, key: str, upload_id: str):  # type: ignore[no-untyped-def]
        self.request_log.append(("ListParts", key))
        raise self.error


@pytest.mark.parametrize("error", [
    FatalStoreError("s3://b/k: MethodNotAllowed", status=405, code="MethodNotAllowed"),
    ServerError("s3://b/k: NotImplemented", status=501, code="NotImplemented"),
], ids=["405", "501"])
def test_resume_on_a_server_without_listparts_uploads_the_file_afresh(src: Path, state: Path,
                                                                     error: Exception) -> None:
    store = _NoListParts(error)
    store.create_bucket(BUCKET)
    with as_kill9(), pytest.raises(_Kill):
        upload([src], f"s3://{BUCKET}/q/", _config(), store=store, subscribers=[_kill_at(PartDone, 2)])
    store.request_log.clear()
    report = upload([src], f"s3://{BUCKET}/q/", _config(), store=store)
    assert report.ok
    assert ("ListParts", "q/big.bin") in store.request_log and _ops(store, "CreateMultipartUpload") == 1
    _assert_uploaded(store, src, "q/")
