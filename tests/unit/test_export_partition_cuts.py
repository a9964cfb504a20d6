"""``export --cluster``'s cuts at partition boundaries (``export/partition_cuts.py``), without a cluster:
where partitions are runs in cursor order each cut holds one partition and at most ``batch_rows`` rows;
where they interleave the cuts are one process's batches; when the rule applies."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from s3pump.config import TransferConfig
from s3pump.errors import UsageError
from s3pump.export.job import ExportJob
from s3pump.export.partition import PartitionSpec, parse_partition
from s3pump.export.partition_cuts import PartitionCutter, partition_cuts_wanted
from s3pump.run import Run
from s3pump.sources.readers import open_table
from s3pump.store.memory import MemoryStore
from s3pump.urls import parse_s3_url

DAY_S = 86_400
#: rows per day, in cursor order: day 0 holds 7 rows, day 1 4, day 2 12, day 3 4
DAYS = [7, 4, 12, 4]


def make_db(path: Path) -> list[int]:
    """Table t: ts (Unix seconds, unique, increasing), entity cycling over 3 values; returns the ts values."""
    ts = [d * DAY_S + 60 * i for d, n in enumerate(DAYS) for i in range(n)]
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (rid INTEGER PRIMARY KEY, ts INTEGER NOT NULL, entity TEXT NOT NULL)")
    conn.executemany("INSERT INTO t (ts, entity) VALUES (?, ?)", [(t, f"e{i % 3}") for i, t in enumerate(ts)])
    conn.commit()
    conn.close()
    return ts


@contextmanager
def planner_of(db: Path, cursor: str, specs: list[PartitionSpec], batch_rows: int) -> Iterator[ExportJob]:
    store = MemoryStore()
    store.create_bucket("bkt")
    source = open_table(str(db), "t", cursor)
    try:
        with Run("export", TransferConfig(max_attempts=1), "bkt", store=store) as run:
            x = ExportJob(source, parse_s3_url("s3://bkt/p"), run, specs, "parquet", None, False, False, None,
                          batch_rows, None, threading.Event())
            x.begin(False)
            yield x
            x.close()
    finally:
        source.close()


def rows_of(ts: list[int], cuts: list[list[Any]]) -> list[list[int]]:
    return [[t for t in ts if (cut[0] is None or t > cut[0]) and t <= cut[2]] for cut in cuts]


@pytest.mark.parametrize("cursor", ["ts", "rid"])
def test_monotone_partitions_are_cut_at_their_boundaries(tmp_path: Path, cursor: str) -> None:
    db = tmp_path / "t.sqlite"
    ts = make_db(db)
    specs = [parse_partition("time:ts:day:epoch-s")]
    with planner_of(db, cursor, specs, 5) as x:
        cuts = x.planner.plan_cuts(PartitionCutter(x.planner, specs))
    if cursor == "rid":  # the cursor is the row number: map cuts to ts values
        cuts = [[None if c[0] is None else ts[c[0] - 1], ts[c[1] - 1], ts[c[2] - 1]] for c in cuts]
    groups = rows_of(ts, cuts)
    assert [t for g in groups for t in g] == ts  # every row in one cut, in order
    assert [len(g) for g in groups] == [5, 2, 4, 5, 5, 2, 4]  # at most batch_rows each
    assert all(c[1] == g[0] for c, g in zip(cuts, groups, strict=True))  # first: the cut's first row
    objects = {(i, t // DAY_S) for i, g in enumerate(groups) for t in g}  # (cut, day): one object each
    per_day = [sum(1 for _i, d in objects if d == day) for day in range(len(DAYS))]
    assert per_day == [-(-n // 5) for n in DAYS]  # ceil(rows / batch_rows) objects a day: 7 in all
    one_process = {(i // 5, t // DAY_S) for i, t in enumerate(ts)}  # batches of 5 rows wherever they fall
    assert len(objects) == 7 < len(one_process) == 9


def test_interleaved_partitions_keep_one_process_batches(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db)
    specs = [parse_partition("column:entity")]
    with planner_of(db, "rid", specs, 5) as x:
        cuts = x.planner.plan_cuts(PartitionCutter(x.planner, specs))
    assert cuts == [[None, 1, 5], [5, 6, 10], [10, 11, 15], [15, 16, 20], [20, 21, 25], [25, 26, 27]]


def test_when_partition_cuts_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    day = [parse_partition("time:ts:day")]
    assert partition_cuts_wanted(day, "ts", False)  # the cursor is the partition column
    assert not partition_cuts_wanted(day, "id", False)  # another column: one process's batches ...
    assert not partition_cuts_wanted(day, "ts", True)  # one object per row anyway
    assert not partition_cuts_wanted([], "ts", False)
    assert partition_cuts_wanted(day, "id", False, True)  # ... unless asked for
    monkeypatch.setenv("S3PUMP_EXPORT_PARTITION_CUTS", "1")
    assert partition_cuts_wanted(day, "id", False)
    monkeypatch.setenv("S3PUMP_EXPORT_PARTITION_CUTS", "0")
    assert not partition_cuts_wanted(day, "ts", False)
    monkeypatch.setenv("S3PUMP_EXPORT_PARTITION_CUTS", "yes")
    with pytest.raises(UsageError, match="S3PUMP_EXPORT_PARTITION_CUTS='yes'"):
        partition_cuts_wanted(day, "ts", False)
