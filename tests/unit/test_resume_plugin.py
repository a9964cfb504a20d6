"""Issue 27: the resume journal is a ``Run`` plug-in (``Run(..., resume=ResumeJournal(...))``) that
``Run.transfer`` applies: a file an earlier run journaled as done is skipped only if its object is still
in the bucket with the journaled size and ETag; one deleted or replaced since is sent again; a fresh
journal (``--no-resume``) skips nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3pump.config import TransferConfig
from s3pump.errors import SourceNotFoundError
from s3pump.events import Event, FileDone, FileSkipped, Resuming
from s3pump.items import UploadItem
from s3pump.resume import ResumeJournal
from s3pump.run import Run
from s3pump.sources.walk import walk_items
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore
from s3pump.urls import parse_s3_url

DEST = "s3://bkt/p/"
CONFIG = TransferConfig(concurrency=1, backoff_base_s=0.0)


def _transfer(store: MemoryStore, src: Path, tmp_path: Path, *, fresh: bool = False) -> list[Event]:
    """One run over ``src``'s files plus one that is missing (it fails, so the journal is kept)."""
    events: list[Event] = []
    missing = UploadItem("p/gone.txt", 0, str(src / "gone.txt"), error=SourceNotFoundError("gone.txt: not found"))
    items = [*walk_items([str(src)], parse_s3_url(DEST)), missing]
    with Run("upload", CONFIG, "bkt", store=store, subscribers=[events.append], failed_list=tmp_path / "failed.jsonl",
             resume=ResumeJournal([str(src)], DEST, fresh=fresh)) as run:
        run.transfer(items)
    return events


def test_journaled_files_are_skipped_only_while_their_objects_are_in_the_bucket(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    src = tmp_path / "src"
    src.mkdir()
    files = {name: name.encode() * 40 for name in ("a.txt", "b.txt", "c.txt")}
    for name, body in files.items():
        (src / name).write_bytes(body)
    store = MemoryStore()
    store.create_bucket("bkt")

    first = _transfer(store, src, tmp_path)
    assert {e.key for e in first if isinstance(e, FileDone)} == {"p/a.txt", "p/b.txt", "p/c.txt"}
    assert [j.name for j in (tmp_path / "state" / "journals").glob("upload-*.sqlite")]  # kept: one file failed

    store.delete_objects("bkt", ["p/a.txt"])  # deleted since: sent again
    store.put_bytes("bkt", "p/b.txt", b"x" * len(files["b.txt"]), ObjectAttributes(), lambda _: None)  # replaced
    second = _transfer(store, src, tmp_path)
    assert [e for e in second if isinstance(e, Resuming)] == [Resuming(1, 0)]
    assert {e.key for e in second if isinstance(e, FileSkipped)} == {"p/c.txt"}
    assert {e.key for e in second if isinstance(e, FileDone)} == {"p/a.txt", "p/b.txt"}
    for name, body in files.items():
        assert store.buckets["bkt"][f"p/{name}"].body == body, name

    third = _transfer(store, src, tmp_path, fresh=True)  # --no-resume: the journal restarts, nothing skipped
    assert not [e for e in third if isinstance(e, FileSkipped | Resuming)]
    assert {e.key for e in third if isinstance(e, FileDone)} == {"p/a.txt", "p/b.txt", "p/c.txt"}
