"""Issue 24: a killed sync's or stream's multipart uploads, recorded in its own journal, are aborted by
the sweep of dead runs (the next run, ``cleanup``), and never those of a live run (MemoryStore)."""

from __future__ import annotations

from pathlib import Path

from s3pump.events import FileDone, MultipartCreated, MultipartCreating
from s3pump.intents import IntentLog, sweep_dead_runs
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore

BUCKET = "ibucket"


def _store() -> MemoryStore:
    s = MemoryStore()
    s.create_bucket(BUCKET)
    return s


def _open_ids(store: MemoryStore) -> set[str]:
    return {u.upload_id for u in store.list_multipart_uploads(BUCKET)}


def test_a_dead_runs_uploads_and_unrecorded_creates_are_aborted_a_live_runs_kept(tmp_path: Path) -> None:
    store = _store()
    journals = tmp_path / "journals"
    # a run killed after recording one upload, and killed between sending a Create and learning its ID
    dead = IntentLog(tmp_path, "sync", ["src"], f"s3://{BUCKET}/p/", None, BUCKET)
    dead(MultipartCreating("p/a.bin"))
    recorded = store.create_multipart_upload(BUCKET, "p/a.bin", ObjectAttributes())
    dead(MultipartCreated("p/a.bin", recorded, 5 << 20))
    dead(MultipartCreating("p/b.bin"))
    unknown = store.create_multipart_upload(BUCKET, "p/b.bin", ObjectAttributes())  # its answer never came
    # a live run of the same command, its upload of the same key recorded
    live = IntentLog(tmp_path, "sync", ["src"], f"s3://{BUCKET}/p/", None, BUCKET)
    live(MultipartCreating("p/b.bin"))
    live_id = store.create_multipart_upload(BUCKET, "p/b.bin", ObjectAttributes())
    live(MultipartCreated("p/b.bin", live_id, 5 << 20))
    assert sweep_dead_runs(journals, store, None, BUCKET) == []  # both journals held: nothing is a dead run's
    dead.close()  # the kill: its lock is released, its journal stays
    aborted = sweep_dead_runs(journals, store, None, BUCKET)
    assert {u.upload_id for u in aborted} == {recorded, unknown}
    assert _open_ids(store) == {live_id}
    assert not dead.path.exists()  # a dead run's journal with nothing left is deleted
    live(FileDone("src/b.bin", "p/b.bin", 6 << 20, "etag", 0.1, 1, 2))
    store.abort_multipart_upload(BUCKET, "p/b.bin", live_id)  # (stands for its completion)
    live.finish(store)
    assert not live.path.exists()  # ended with nothing open: deleted
    assert list(journals.glob("*.sqlite*")) == []


def test_the_sweep_of_cleanup_keeps_keys_outside_its_prefix(tmp_path: Path) -> None:
    store = _store()
    dead = IntentLog(tmp_path, "stream", [], f"s3://{BUCKET}/x/k", None, BUCKET)
    for key in ("x/k", "y/k"):
        dead(MultipartCreating(key))
        dead(MultipartCreated(key, store.create_multipart_upload(BUCKET, key, ObjectAttributes()), 5 << 20))
    dead.close()
    assert [u.key for u in sweep_dead_runs(tmp_path / "journals", store, None, BUCKET, "x/")] == ["x/k"]
    assert [u.key for u in store.list_multipart_uploads(BUCKET)] == ["y/k"]
    assert dead.path.exists()  # y/k is still to abort
    assert [u.key for u in sweep_dead_runs(tmp_path / "journals", store, None, BUCKET)] == ["y/k"]
    assert not dead.path.exists()


def test_a_run_without_multipart_writes_no_journal(tmp_path: Path) -> None:
    log = IntentLog(tmp_path, "sync", ["src"], f"s3://{BUCKET}/p/", None, BUCKET)
    log(FileDone("src/a", "p/a", 1, "e", 0.1, 1))
    log.finish(_store())
    assert not (tmp_path / "journals").exists()
