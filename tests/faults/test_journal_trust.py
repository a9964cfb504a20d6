"""Issue 24: a rerun never trusts its journal's "done in an earlier run" over the bucket (MemoryStore).

The files an earlier run journaled as done are skipped only if their objects are still there with the
journaled size and ETag: checked by one listing merged with the journal (one HeadObject for a single
done file), not by a request per file. A bucket that cannot be listed means uploading them again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3pump.config import TransferConfig
from s3pump.errors import AccessDeniedError, CancelledError
from s3pump.events import Event, FileDone, FileSkipped
from s3pump.jobs.upload import upload
from s3pump.store.base import ObjectAttributes, ObjectInfo
from s3pump.store.memory import MemoryStore

BUCKET = "tbucket"


class _CountingStore(MemoryStore):
    """Counts listings and HEADs; ``refuse_listing`` answers ListObjectsV2 with AccessDenied."""

    def __init__(self, refuse_listing: bool = False) -> None:
        super().__init__()
        self.refuse_listing = refuse_listing
        self.listings = 0
        self.heads = 0

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        self.listings += 1
        if self.refuse_listing:
            raise AccessDeniedError(f"s3://{bucket}/{prefix}: AccessDenied", status=403, code="AccessDenied")
        return super().list_objects(bucket, prefix)

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        self.heads += 1
        return super().head_object(bucket, key)


def _config() -> TransferConfig:
    return TransferConfig(concurrency=1, backoff_base_s=0.0)


class _CancelAfterFiles:
    def __init__(self, n: int) -> None:
        self.n = n
        self.done = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDone):
            self.done += 1
            if self.done == self.n:
                raise KeyboardInterrupt


def _tree(root: Path, count: int) -> dict[str, bytes]:
    files = {f"{'d/' if i % 2 else ''}f{i:02d}.txt": os.urandom(50 + i) for i in range(count)}
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return files


def _put(store: MemoryStore, key: str, body: bytes) -> None:
    store.put_bytes(BUCKET, key, body, ObjectAttributes(), lambda _: None)


@pytest.mark.parametrize("refuse_listing", [False, True], ids=["listed", "listing-refused"])
def test_rerun_uploads_done_files_whose_objects_were_deleted_or_replaced(
        tmp_path: Path, state: Path, refuse_listing: bool) -> None:
    store = _CountingStore(refuse_listing)
    store.create_bucket(BUCKET)
    files = _tree(tmp_path / "src", 12)
    dest = f"s3://{BUCKET}/p/"
    with pytest.raises(CancelledError):
        upload([tmp_path / "src"], dest, _config(), store=store, subscribers=[_CancelAfterFiles(8)])
    [journal] = (state / "journals").glob("upload-*.sqlite")
    with contextlib.closing(sqlite3.connect(str(journal))) as db:
        done = sorted(k for (k,) in db.execute("SELECT key FROM files WHERE status='done'"))
    assert len(done) >= 6 and set(done) <= set(store.buckets[BUCKET])
    deleted, replaced = done[0], done[3]
    store.delete_objects(BUCKET, [deleted])
    _put(store, replaced, b"x" * len(files[replaced[2:]]))  # the same size, other bytes (another ETag)
    store.listings = store.heads = 0
    events: list[Event] = []
    report = upload([tmp_path / "src"], dest, _config(), store=store, subscribers=[events.append])
    assert report.ok
    for name, body in files.items():
        assert store.buckets[BUCKET][f"p/{name}"].body == body, name
    skipped = {e.key for e in events if isinstance(e, FileSkipped)}
    assert skipped == (set() if refuse_listing else set(done) - {deleted, replaced})
    assert report.files_done == len(files) - len(skipped)
    assert store.listings == 1 and store.heads == 0  # one listing, not a HEAD per file


def test_single_done_file_is_checked_by_one_head(tmp_path: Path, state: Path) -> None:
    """A journal with one done file (a single-key destination kept by a failure): one HeadObject."""
    store = _CountingStore()
    store.create_bucket(BUCKET)
    (tmp_path / "one.bin").write_bytes(b"one" * 100)
    missing = tmp_path / "missing.bin"  # fails: the journal is kept, with one done file
    dest = f"s3://{BUCKET}/s/"
    first = upload([tmp_path / "one.bin", missing], dest, _config(), store=store)
    assert first.files_done == 1 and first.files_failed == 1
    store.delete_objects(BUCKET, ["s/one.bin"])
    store.listings = store.heads = 0
    again = upload([tmp_path / "one.bin", missing], dest, _config(), store=store)
    assert again.files_done == 1 and again.files_skipped == 0
    assert store.buckets[BUCKET]["s/one.bin"].body == b"one" * 100
    assert store.heads == 1 and store.listings == 0
    store.heads = 0
    third = upload([tmp_path / "one.bin", missing], dest, _config(), store=store)  # now it is there: skipped
    assert third.files_done == 0 and third.files_skipped == 1 and store.heads == 1
