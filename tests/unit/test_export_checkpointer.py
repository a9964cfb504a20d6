"""Issue 25: the export's checkpoint and dead-letter writes never run on the engine's thread (a library
call's engine runs on the caller's, here MainThread), and one that fails still ends the export with its error."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from s3pump.config import TransferConfig
from s3pump.errors import StoreError
from s3pump.jobs.export import export_table
from s3pump.store.memory import MemoryStore

CONFIG = TransferConfig(max_attempts=1, backoff_base_s=0.0)


def make_db(path: Path, rows: int) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, kind TEXT, amount REAL)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"k{i % 3}", i / 4) for i in range(1, rows + 1)])
    conn.commit()
    conn.close()
    return path


class Recording(MemoryStore):
    """Records the thread of every PutObject of the export's own state (checkpoint, dead-letter entries)."""

    def __init__(self) -> None:
        super().__init__()
        self.state_puts: list[tuple[str, str]] = []
        self.create_bucket("bkt")

    def put_bytes(self, bucket: str, key: str, body: Any, attrs: Any, on_done: Any) -> Any:
        if "/_s3pump/" in key or "/_dlq/" in key:
            self.state_puts.append((key, threading.current_thread().name))
        return super().put_bytes(bucket, key, body, attrs, on_done)


def test_checkpoint_and_dead_letter_writes_run_on_the_state_thread(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", 1_000)
    s = Recording()

    def fault(op: str, key: str) -> StoreError | None:  # one batch's object fails: a dead-letter entry
        return StoreError("boom", status=500) if op == "PutObject" and "part-301-400" in key else None

    s.fault = fault
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, partition_by=["column:kind"], store=s)
    assert rep.rows_exported == 900 and rep.objects_failed == 3 and len(rep.dlq_entries) == 1
    keys = {k for k, _t in s.state_puts}
    assert "p/_s3pump/state/t.json" in keys and any("/_dlq/" in k for k in keys)
    assert len(s.state_puts) >= 11  # each new cut, and the checkpoint moving
    threads = {t for _k, t in s.state_puts}
    assert threads and all(t.startswith("s3pump-export-state") for t in threads), threads
    cp = json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)
    assert cp["cursor"] == 1_000 and cp["batches"] == []


def test_a_checkpoint_write_that_fails_ends_the_export_with_its_error(tmp_path: Path) -> None:
    """The 4th checkpoint write fails: the export stops with that StoreError (the transfer stops at its
    next object), and the checkpoint stored names no cut past what was written before it."""
    db = make_db(tmp_path / "d.db", 2_000)
    s = Recording()
    writes = [0]

    def fault(op: str, key: str) -> StoreError | None:
        if op == "PutObject" and key.endswith("_s3pump/state/t.json"):
            writes[0] += 1
            if writes[0] >= 4:
                return StoreError("checkpoint refused", status=403, code="AccessDenied")
        return None

    s.fault = fault
    with pytest.raises(StoreError, match="checkpoint refused"):
        export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, store=s)
    cp = json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)
    data = sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/"))
    cut_keys = {f"p/t/part-{c[1]}-{c[2]}.parquet" for c in cp["batches"]}
    stored_past = [k for k in data if int(k.split("-")[1]) > (cp["cursor"] or 0) and k not in cut_keys]
    assert stored_past == []  # every object past the cursor belongs to a cut the checkpoint holds
    assert len(data) < 20  # it stopped: not every batch was written
