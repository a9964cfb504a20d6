"""The journal commits finished files in batches; every other record commits at once, with the batch before it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from s3pump import journal as journal_mod
from s3pump.events import FileDone, MultipartCreating, Tick
from s3pump.fileid import FileIdentity
from s3pump.journal import DONE_BATCH, Journal


def _committed(path: Path) -> tuple[int, int]:
    """(done files, creating intents) as another process sees them."""
    with sqlite3.connect(str(path)) as db:
        return (db.execute("SELECT count(*) FROM files WHERE status='done'").fetchone()[0],
                db.execute("SELECT count(*) FROM creating").fetchone()[0])


def _done(j: Journal, i: int) -> None:
    j.expect(f"k{i}", FileIdentity(1, i, i, i, 1))
    j(FileDone(f"src/k{i}", f"k{i}", 1, "etag", 0.01, 1))


def test_done_records_commit_by_batch_and_before_an_intent(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    try:
        for i in range(10):
            _done(j, i)
        assert _committed(path) == (0, 0)
        j(MultipartCreating("big"))  # must be durable before CreateMultipartUpload is sent: the batch goes first
        assert _committed(path) == (10, 1)
        _done(j, 9999)
        assert j.is_done("k9999", FileIdentity(1, 9999, 9999, 9999, 1))  # this run sees its own pending records
        for i in range(10, 10 + DONE_BATCH):
            _done(j, i)
        assert _committed(path)[0] == 11 + DONE_BATCH  # a full batch commits by itself
    finally:
        j.close()


def test_a_batch_commits_after_its_time_and_on_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    now = [1000.0]
    monkeypatch.setattr(journal_mod.time, "monotonic", lambda: now[0])
    _done(j, 0)
    j(Tick(1, 1, 0, 0))
    assert _committed(path) == (0, 0)
    now[0] += journal_mod.DONE_BATCH_S
    j(Tick(1, 1, 0, 0))  # an idle run's tick commits an old batch
    assert _committed(path) == (1, 0)
    _done(j, 1)
    j.close()
    assert _committed(path) == (2, 0)
    again = Journal(path)
    assert again.is_done("k1", FileIdentity(1, 1, 1, 1, 1))
    again.close()


def test_a_cluster_shards_files_commit_when_its_result_is_in(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``--cluster``: the coordinator runs no engine, so no Tick; a shard's replayed files commit on
    its ShardSettled, not with the next shard's first file (a kill in between would resend them)."""
    from s3pump.events import ShardProgress, ShardSettled

    path = tmp_path / "j.sqlite"
    j = Journal(path)
    monkeypatch.setattr(journal_mod.time, "monotonic", lambda: 1000.0)  # no time passes
    try:
        for i in range(5):
            _done(j, i)
        j(ShardProgress(3, 9, 9))  # progress (the Dask client's thread) writes nothing
        assert _committed(path) == (0, 0)
        j(ShardSettled(3))
        assert _committed(path) == (5, 0)
    finally:
        j.close()
