"""Resume journal, source changes and cleanup against the MemoryStore (fast, deterministic).

* a cancelled run keeps its multipart upload and journaled parts; the rerun skips the finished
  files, sends only the missing parts of the same upload ID, and deletes the journal;
* ``resume=False`` aborts the journaled upload and starts over;
* a file that grows, shrinks or is rewritten during its upload fails, and no object is left
  (neither a multipart object nor a single PUT's);
* ``cleanup`` aborts uploads older than the cut-off and keeps newer ones.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from s3pump.config import TransferConfig
from s3pump.errors import CancelledError, SourceChangedError
from s3pump.events import Event, FileDone, FileFailed, FileSkipped, PartDone
from s3pump.fileid import FileIdentity
from s3pump.jobs.cleanup import cleanup
from s3pump.jobs.upload import upload
from s3pump.journal import Journal, journal_path
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore

MIB = 1024 * 1024
BUCKET = "jbucket"


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.create_bucket(BUCKET)
    return s


def _config() -> TransferConfig:
    return TransferConfig(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB, concurrency=1,
                          max_parts_in_flight=1, backoff_base_s=0.0)


def _tree(root: Path) -> dict[str, bytes]:
    root.mkdir()
    files = {f"small{i}.txt": os.urandom(100 + i) for i in range(5)}
    files["big.bin"] = os.urandom(4 * 5 * MIB + 123)  # 5 parts
    for name, body in files.items():
        (root / name).write_bytes(body)
    return files


def _ops(store: MemoryStore, op: str, key: str | None = None) -> int:
    return sum(1 for o, k in store.request_log if o == op and (key is None or k == key))


class _CancelAfterParts:
    """Raises KeyboardInterrupt (as Ctrl-C does) once ``n`` parts are done."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, PartDone):
            self.parts += 1
            if self.parts == self.n:
                raise KeyboardInterrupt


def test_cancel_keeps_upload_and_rerun_sends_only_missing_parts(tmp_path: Path, state: Path,
                                                                store: MemoryStore) -> None:
    files = _tree(tmp_path / "src")
    dest = f"s3://{BUCKET}/r/"
    # Ctrl-C lands while part 3's PartDone is delivered: the journal (a later subscriber) never
    # sees it, so the rerun must send part 3 again, and only parts 3-5
    with pytest.raises(CancelledError, match="kept"):
        upload([tmp_path / "src"], dest, _config(), store=store, subscribers=[_CancelAfterParts(3)])
    assert "r/big.bin" not in store.buckets[BUCKET]
    open_uploads = list(store.list_multipart_uploads(BUCKET))
    assert len(open_uploads) == 1  # kept for resume, not aborted
    upload_id = open_uploads[0].upload_id
    jpath = journal_path(state, "upload", [str(tmp_path / "src")], dest, None)
    j = Journal(jpath, checksum_algorithm=_config().checksum_algorithm)
    record = j.resume_record("r/big.bin", FileIdentity.of_path(str(tmp_path / "src/big.bin")))
    j.close()
    assert record is not None and not hasattr(record, "key")
    assert sorted(record.parts) == [1, 2] and record.upload_id == upload_id  # type: ignore[union-attr]
    done_before = {k for o, k in store.request_log if o == "PutObject"}

    store.request_log.clear()
    events: list[Event] = []
    report = upload([tmp_path / "src"], dest, _config(), store=store, subscribers=[events.append])
    assert report.ok
    skipped = {e.key for e in events if isinstance(e, FileSkipped)}
    assert skipped == done_before  # finished files were not sent again
    assert _ops(store, "UploadPart", "r/big.bin") == 3  # parts 3, 4, 5 only
    assert _ops(store, "CreateMultipartUpload") == 0  # the same upload was continued
    for name, body in files.items():
        assert store.buckets[BUCKET][f"r/{name}"].body == body
    assert list(store.list_multipart_uploads(BUCKET)) == []
    assert not jpath.exists()  # cleaned when done


def test_no_resume_aborts_journaled_upload_and_starts_over(tmp_path: Path, state: Path,
                                                           store: MemoryStore) -> None:
    _tree(tmp_path / "src")
    dest = f"s3://{BUCKET}/n/"
    with pytest.raises(CancelledError):
        upload([tmp_path / "src"], dest, _config(), store=store, subscribers=[_CancelAfterParts(2)])
    (stale,) = list(store.list_multipart_uploads(BUCKET))
    store.request_log.clear()
    report = upload([tmp_path / "src"], dest, _config(), store=store, resume=False)
    assert report.ok and report.files_done == 6
    assert ("AbortMultipartUpload", "n/big.bin") in store.request_log
    assert _ops(store, "UploadPart", "n/big.bin") == 5
    assert stale.upload_id not in {u.upload_id for u in store.list_multipart_uploads(BUCKET)}
    assert list(store.list_multipart_uploads(BUCKET)) == []


def test_changed_file_is_not_resumed(tmp_path: Path, state: Path, store: MemoryStore) -> None:
    files = _tree(tmp_path / "src")
    dest = f"s3://{BUCKET}/c/"
    with pytest.raises(CancelledError):
        upload([tmp_path / "src"], dest, _config(), store=store, subscribers=[_CancelAfterParts(2)])
    new = os.urandom(len(files["big.bin"]))
    (tmp_path / "src/big.bin").write_bytes(new)  # same size, new content and mtime
    report = upload([tmp_path / "src"], dest, _config(), store=store)
    assert report.ok
    assert store.buckets[BUCKET]["c/big.bin"].body == new
    assert list(store.list_multipart_uploads(BUCKET)) == []


class _ChangeAfterFirstPart:
    def __init__(self, path: Path, how: str) -> None:
        self.path = path
        self.how = how
        self.done = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, PartDone) and not self.done:
            self.done = True
            if self.how == "grow":
                with open(self.path, "ab") as f:
                    f.write(b"more")
            elif self.how == "shrink":
                os.truncate(self.path, 7 * MIB)
            else:  # rewrite in place, same size
                with open(self.path, "r+b") as f:
                    f.write(b"X" * 10)
                st = self.path.stat()
                os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize("how", ["grow", "shrink", "rewrite"])
def test_file_changed_during_multipart_fails_and_leaves_nothing(tmp_path: Path, state: Path,
                                                                store: MemoryStore, how: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.bin"
    big.write_bytes(os.urandom(3 * 5 * MIB))
    (src / "ok.txt").write_bytes(b"fine")
    events: list[Event] = []
    report = upload([src], f"s3://{BUCKET}/g/", _config(), store=store,
                    subscribers=[_ChangeAfterFirstPart(big, how), events.append])
    assert not report.ok
    (failed,) = [e for e in events if isinstance(e, FileFailed)]
    assert failed.key == "g/big.bin" and isinstance(failed.error, SourceChangedError), failed.error
    assert "g/big.bin" not in store.buckets[BUCKET]  # no truncated or mixed object
    assert store.buckets[BUCKET]["g/ok.txt"].body == b"fine"  # the other file is unaffected
    assert list(store.list_multipart_uploads(BUCKET)) == []


def test_file_changed_during_single_put_leaves_no_object(tmp_path: Path, state: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    f = src / "small.txt"
    f.write_bytes(b"version 1")

    def rewrite_during_put(op: str, key: str) -> None:
        if op == "PutObject":  # the file changes while its PUT is in flight
            st = f.stat()
            os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        return None

    store = MemoryStore(fault=rewrite_during_put)
    store.create_bucket(BUCKET)
    events: list[Event] = []
    report = upload([src], f"s3://{BUCKET}/p/", _config(), store=store, subscribers=[events.append])
    assert not report.ok
    (failed,) = [e for e in events if isinstance(e, FileFailed)]
    assert isinstance(failed.error, SourceChangedError)
    deadline = time.monotonic() + 5  # the delete is a control-plane call the engine waits for
    while "p/small.txt" in store.buckets[BUCKET] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "p/small.txt" not in store.buckets[BUCKET]
    assert not any(isinstance(e, FileDone) for e in events)


def test_cleanup_aborts_old_uploads_only(store: MemoryStore, state: Path) -> None:
    old = store.create_multipart_upload(BUCKET, "x/old", ObjectAttributes())
    store.uploads[BUCKET][old].initiated -= 2 * 86400
    new = store.create_multipart_upload(BUCKET, "x/new", ObjectAttributes())
    other = store.create_multipart_upload(BUCKET, "y/old", ObjectAttributes())
    store.uploads[BUCKET][other].initiated -= 2 * 86400
    dry = cleanup(f"s3://{BUCKET}/x/", 86400, store=store, dry_run=True)
    assert [u for _, u in dry.aborted] == [old] and len(list(store.list_multipart_uploads(BUCKET))) == 3
    report = cleanup(f"s3://{BUCKET}/x/", 86400, store=store)
    assert [u for _, u in report.aborted] == [old] and [u for _, u in report.kept] == [new]
    assert {u.upload_id for u in store.list_multipart_uploads(BUCKET)} == {new, other}


def test_journal_records_without_secrets_and_is_keyed_by_command(tmp_path: Path) -> None:
    a = journal_path(tmp_path, "upload", ["src"], "s3://b/p/", "http://h:1")
    assert a == journal_path(tmp_path, "upload", [os.path.abspath("src")], "s3://b/p/", "http://h:1")
    assert a != journal_path(tmp_path, "upload", ["src"], "s3://b/q/", "http://h:1")
    j = Journal(a)
    ident = FileIdentity(10, 5, 7, 9, 1)
    j.expect("k", ident)
    j(FileDone("src/k", "k", 10, hashlib.md5(b"x").hexdigest(), 0.1, 1))
    assert j.is_done("k", ident) and not j.is_done("k", FileIdentity(11, 5, 7, 9, 1))
    assert not j.is_done("k", FileIdentity(10, 6, 7, 9, 1))
    assert not j.is_done("k", FileIdentity(10, 5, 8, 9, 1)) and not j.is_done("k", FileIdentity(10, 5, 7, 10, 1))
    j.close()
    assert Journal(a).is_done("k", ident)  # persisted
