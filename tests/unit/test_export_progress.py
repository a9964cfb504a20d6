"""Issue 26: an export's progress has a total of rows and an ETA. At its start it counts the rows past
its checkpoint's cursor (``SELECT count(*)``) and says so (``RowsFound``) before its first batch; a rerun
counts only the rows added since; the line reads ``done/total rows`` and an ETA by the rows' rate."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from s3pump.config import TransferConfig
from s3pump.events import BatchExported, Event
from s3pump.jobs.export import export_table
from s3pump.store.memory import MemoryStore
from s3pump.ui.progress import Counts, PlainProgress, progress_line

CONFIG = TransferConfig(max_attempts=1, backoff_base_s=0.0)


def _db(path: Path, ids: range) -> str:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, note TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in ids])
    conn.commit()
    conn.close()
    return str(path)


def _export(db: str, store: MemoryStore) -> tuple[Counts, list[str]]:
    counts = Counts()
    lines: list[str] = []  # the live line's text after each batch

    def watch(event: Event) -> None:
        if isinstance(event, BatchExported):
            assert counts.total_rows is not None, "the total must come before the first batch"
        counts.update(event)
        if isinstance(event, BatchExported):
            head, tail = progress_line("export", counts, "export")
            lines.append(f"{head}  {tail}")

    export_table(db, "t", "s3://bkt/p", CONFIG, batch_rows=100, store=store, subscribers=[watch])
    return counts, lines


def test_an_export_counts_its_rows_first_and_a_rerun_only_the_new_ones(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    store = MemoryStore()
    store.create_bucket("bkt")
    db = _db(tmp_path / "db.sqlite", range(1, 1001))
    counts, lines = _export(db, store)
    assert counts.total_rows == 1000 and counts.rows == 1000
    assert lines[0].startswith("export  100/1,000 rows") and re.search(r"ETA \d+:\d\d:\d\d", lines[0]), lines[0]
    assert lines[-1].startswith("export  1,000/1,000 rows"), lines[-1]
    _db(tmp_path / "db.sqlite", range(1001, 1251))
    counts, lines = _export(db, store)
    assert counts.total_rows == 250 and lines[-1].startswith("export  250/250 rows"), lines


def test_the_plain_line_has_the_total_too() -> None:
    import io

    from s3pump.events import RowsFound

    out = io.StringIO()
    view = PlainProgress("export", interval_s=3600, stream=out)
    view(RowsFound(5000))
    view(BatchExported(1200, 1200))
    view.print_line()
    assert out.getvalue().startswith("s3pump: 1200/5000 rows, 0 objects"), out.getvalue()
    assert re.search(r"ETA \d+:\d\d:\d\d, checkpoint 1200", out.getvalue()), out.getvalue()


def test_every_reader_counts_the_rows_past_a_cursor(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    from s3pump.sources.readers import open_table

    db = _db(tmp_path / "db.sqlite", range(1, 501))
    for source in (open_table(db, "t"), open_table(f"sqlite+pysqlite:///{db}", "t")):
        try:
            assert (source.count_after(None), source.count_after(120), source.count_after(500)) == (500, 380, 0)
        finally:
            source.close()
