"""Issue 12, item 9: each run's failed-list is its own file, and no run truncates an existing one."""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

import pytest

from s3pump import TransferConfig, upload
from s3pump.store.memory import MemoryStore

CFG = TransferConfig(concurrency=4, backoff_base_s=0.001, backoff_max_s=0.01)


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.create_bucket("bkt")
    return s


def _records(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_two_runs_failing_in_the_same_second_keep_both_lists(tmp_path: Path, store: MemoryStore,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The default path's clock has one-second resolution: freeze it, so both runs fail "in the same
    second", and check each run's list holds its own failure."""
    import s3pump.run as run_mod

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    frozen = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if not n.startswith("_")})
    frozen.strftime = lambda fmt, t=None: "20260101T000000Z"
    monkeypatch.setattr(run_mod, "time", frozen)
    first = upload([tmp_path / "missing-1"], "s3://bkt/p/", CFG, store=store)
    second = upload([tmp_path / "missing-2"], "s3://bkt/p/", CFG, store=store)
    assert first.failed_list_path and second.failed_list_path
    assert first.failed_list_path != second.failed_list_path
    assert [r["source"] for r in _records(first.failed_list_path)] == [str(tmp_path / "missing-1")]
    assert [r["source"] for r in _records(second.failed_list_path)] == [str(tmp_path / "missing-2")]
    assert len(list((tmp_path / "state" / "failed").iterdir())) == 2


def test_an_existing_failed_list_is_never_truncated(tmp_path: Path, store: MemoryStore,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``--failed-list F`` where F exists (an earlier run's list, or the ``--from-list`` file itself):
    F keeps its lines, the new list goes beside it, and the report names the new file."""
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    listed = tmp_path / "failed.jsonl"
    first = upload([tmp_path / "missing-1"], "s3://bkt/p/", CFG, store=store, failed_list=listed)
    assert first.failed_list_path == str(listed)
    before = listed.read_bytes()
    # a retry loop that reads and writes the same file: its entries must all be read and kept
    second = upload([], "s3://bkt/p/", CFG, store=store, from_list=listed, failed_list=listed)
    assert listed.read_bytes() == before
    assert second.files_failed == 1
    assert second.failed_list_path and Path(second.failed_list_path).parent == tmp_path
    assert second.failed_list_path != str(listed)
    assert [r["source"] for r in _records(second.failed_list_path)] == [str(tmp_path / "missing-1")]
