"""``export --cluster``'s planning, without a cluster: cuts planned from the cursor column equal the batches a
single-process export reads; a checkpoint's ``done`` cuts are not exported again; what a worker is sent."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from s3pump.config import TransferConfig
from s3pump.errors import UsageError
from s3pump.jobs.export import export_table
from s3pump.sources.readers import open_table
from s3pump.sources.table import encode_cursor
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore
from s3pump.store.waiting import put_and_wait

CONFIG = TransferConfig(max_attempts=1, backoff_base_s=0.0)


def make_db(path: Path, keys: list[Any], declared: str = "INTEGER") -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE t (rid INTEGER PRIMARY KEY, k {declared} NOT NULL, v TEXT)")
    conn.executemany("INSERT INTO t (k, v) VALUES (?, ?)", [(k, f"v{i}") for i, k in enumerate(keys)])
    conn.commit()
    conn.close()


def batches_read(db: Path | str, column: str, batch_rows: int) -> list[tuple[Any, Any, Any]]:
    """The cuts a single-process export makes: ``read_after`` batch by batch."""
    src = open_table(str(db), "t", column)
    out, after = [], None
    try:
        while (b := src.read_after(after, batch_rows)) is not None:
            out.append((after, b.first, b.last))
            after = b.last
            if b.count < batch_rows:
                break
    finally:
        src.close()
    return out


def batches_planned(db: Path | str, column: str, batch_rows: int) -> list[tuple[Any, Any, Any]]:
    src = open_table(str(db), "t", column)
    out, after = [], None
    try:
        while (cut := src.plan_cut(after, batch_rows)) is not None:
            out.append((after, *cut))
            after = cut[1]
    finally:
        src.close()
    return out


@pytest.mark.parametrize("seed", range(12))
def test_planned_cuts_equal_the_batches_a_single_process_reads(tmp_path: Path, seed: int) -> None:
    """Gaps, runs of equal values (a non-unique cursor), text cursors, tables ending on a batch edge."""
    rng = random.Random(seed)
    n = rng.choice([0, 1, 7, 40, 100, 257])
    if seed % 3 == 2:
        keys: list[Any] = [f"k{rng.randrange(60):03d}" for _ in range(n)]
        declared = "TEXT"
    else:
        keys = [rng.randrange(0, 80) * rng.choice([1, 1, 3]) for _ in range(n)]
        declared = "INTEGER"
    db = tmp_path / "t.sqlite"
    make_db(db, keys, declared)
    for batch_rows in (1, 2, 5, 10, 20, max(1, n)):
        assert batches_planned(db, "k", batch_rows) == batches_read(db, "k", batch_rows), (seed, batch_rows)
    assert batches_planned(db, "rid", 10) == batches_read(db, "rid", 10)
    url = f"sqlite+pysqlite:///{db}"  # the SQLAlchemy reader
    for batch_rows in (1, 3, 10):
        assert batches_planned(url, "k", batch_rows) == batches_read(db, "k", batch_rows), (seed, batch_rows)


def test_single_process_rerun_skips_the_cuts_a_cluster_marked_done(tmp_path: Path) -> None:
    """A checkpoint as a killed ``export --cluster`` leaves it: every cut recorded, two of them done out of
    order. A single-process rerun exports only the others (to the keys of their cuts) and ends at the last."""
    db = tmp_path / "t.sqlite"
    make_db(db, list(range(1, 51)))
    store = MemoryStore()
    store.create_bucket("bkt")
    first = export_table(str(db), "t", "s3://bkt/p", CONFIG, store=store, batch_rows=10, cursor_column="k")
    assert first.rows_exported == 50
    data = {o.key for o in store.list_objects("bkt", "p/t/")}
    assert len(data) == 5
    cuts = [[encode_cursor(a), encode_cursor(f), encode_cursor(la)] for a, f, la in batches_planned(db, "k", 10)]
    key = "p/_s3pump/state/t.json"
    cp = json.loads(store.get_object("bkt", key))
    cp.update(cursor=None, batches=cuts, done=[cuts[1], cuts[3]], rows_exported=0, objects_written=0)
    put_and_wait(store, "bkt", key, json.dumps(cp).encode(), ObjectAttributes(), timeout_s=CONFIG.request_timeout_s)
    for k in data:
        store.delete_objects("bkt", [k])

    again = export_table(str(db), "t", "s3://bkt/p", CONFIG, store=store, batch_rows=10, cursor_column="k")

    assert again.rows_exported == 30 and again.objects_written == 3
    left = {o.key for o in store.list_objects("bkt", "p/t/")}
    assert left == {"p/t/part-1-10.parquet", "p/t/part-21-30.parquet", "p/t/part-41-50.parquet"}
    cp = json.loads(store.get_object("bkt", key))
    assert cp["cursor"] == 50 and cp["batches"] == [] and cp["done"] == []


def test_what_a_worker_is_sent_to_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from s3pump.jobs.export_cluster import group_cuts, worker_db

    monkeypatch.chdir(tmp_path)
    assert worker_db("shop.sqlite") == str(tmp_path / "shop.sqlite")
    assert worker_db("sqlite:///shop.sqlite") == f"sqlite:///{tmp_path / 'shop.sqlite'}"
    assert worker_db("postgresql://u@db/shop") == "postgresql://u@db/shop"
    with pytest.raises(UsageError, match=r"postgresql://u:\*\*\*@db/shop holds a password") as e:
        worker_db("postgresql://u:hunter2@db/shop")
    assert "hunter2" not in str(e.value)
    for url in ("postgresql://u@db/shop?password=hunter2", "mysql+pymysql://u@db/shop?sslmode=x&passwd=hunter2",
                "postgresql://u@db/shop?PWD=hunter2"):  # a password in the query travels the same way
        with pytest.raises(UsageError, match="holds a password") as e:
            worker_db(url)
        assert "hunter2" not in str(e.value) and "***" in str(e.value), str(e.value)
    # read as SQLAlchemy reads it: an escaped @ in a query parameter is not a user part
    assert worker_db("postgresql://db:5432/shop?application_name=a%40b") == "postgresql://db:5432/shop?application_name=a%40b"
    cuts = [[i, i + 1, i + 10] for i in range(0, 70, 10)]
    assert [len(g) for g in group_cuts(cuts, 10, 30)] == [3, 3, 1]
    assert [len(g) for g in group_cuts(cuts, 100, 30)] == [1] * 7
    assert [c for g in group_cuts(cuts, 10, 25) for c in g] == cuts


def test_cluster_refuses_replay(tmp_path: Path) -> None:
    db = tmp_path / "t.sqlite"
    make_db(db, [1, 2, 3])
    # --dedup (test_export_cluster.py) and --follow (test_export_cluster_follow.py) run on the cluster
    with pytest.raises(UsageError, match="--cluster with --replay-dlq"):
        export_table(str(db), "t", "s3://bkt/p", CONFIG, cluster="local:1", replay_dlq=True)


class _Future:
    """What ``drive`` hands ``settle``: a finished range's result, or its error."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self.status = "error" if error is not None else "finished"
        self._result, self._error = result, error

    def result(self) -> Any:
        return self._result

    def exception(self) -> BaseException | None:
        return self._error


def test_the_coordinator_moves_the_checkpoint_only_past_cuts_done_in_order(tmp_path: Path) -> None:
    """Ranges finishing out of order: a later range's cuts wait in ``done``; the cursor moves once the ranges
    before it are done; a range whose workers died leaves its cuts (and every cut after it) recorded."""
    from s3pump.cluster.coordinator import ClusterOutcome
    from s3pump.cluster.results import ShardResult
    from s3pump.events import BatchExported, FileDone
    from s3pump.export.job import ExportJob
    from s3pump.jobs.export_cluster import ExportRange, RangeJob, RangeResult, RangeSettler
    from s3pump.run import Run
    from s3pump.urls import parse_s3_url

    db = tmp_path / "t.sqlite"
    make_db(db, list(range(1, 81)))
    store = MemoryStore()
    store.create_bucket("bkt")
    seen: list[Any] = []
    source = open_table(str(db), "t", "k")
    with Run("export", CONFIG, "bkt", store=store, subscribers=[seen.append]) as run:
        x = ExportJob(source, parse_s3_url("s3://bkt/p"), run, [], "parquet", None, False, False, None, 20, None,
                      threading.Event())
        x.begin(False)
        cuts = x.planner.plan_cuts()
        assert cuts == [[None, 1, 20], [20, 21, 40], [40, 41, 60], [60, 61, 80]]
        x.state.save(x.checkpoint)
        job = RangeJob(str(db), "t", "k", "s3://bkt/p", (), "parquet", None, False, 20, 300.0)
        ranges = [ExportRange(i, job, (cut,)) for i, cut in enumerate(cuts)]
        settle, outcome = RangeSettler(x), ClusterOutcome(2)

        def finished(i: int) -> _Future:
            key = f"p/t/part-{cuts[i][1]}-{cuts[i][2]}.parquet"
            done = FileDone(f"t rows k {cuts[i][1]}..{cuts[i][2]}", key, 100, "etag", 0.01, 1)
            counters = {"rows_read": 20, "rows_exported": 20, "rows_failed": 0, "rows_unchanged": 0,
                        "objects_written": 1, "objects_failed": 0, "objects_skipped": 0, "bytes_written": 100,
                        "batches": 1}
            return _Future(RangeResult(ShardResult(i, "w", (done,), 0.1, 1, 100), counters, ()))

        def saved() -> dict[str, Any]:
            return json.loads(store.get_object("bkt", "p/_s3pump/state/t.json"))

        settle(run, finished(1), ranges[1], outcome)
        assert saved()["cursor"] is None and saved()["done"] == [cuts[1]] and len(saved()["batches"]) == 4
        settle(run, finished(0), ranges[0], outcome)
        assert saved()["cursor"] == 40 and saved()["done"] == [] and saved()["batches"] == cuts[2:]
        settle(run, _Future(error=RuntimeError("worker lost")), ranges[2], outcome)
        settle(run, finished(3), ranges[3], outcome)
        cp = saved()
        assert cp["cursor"] == 40 and cp["batches"] == cuts[2:] and cp["done"] == [cuts[3]]
        assert cp["rows_exported"] == 60 and cp["objects_written"] == 3
    source.close()
    assert x.counters.rows_exported == 60 and x.counters.objects_failed == 1
    assert outcome.shards_done == 3 and outcome.shards_failed == 1
    assert [e.checkpoint for e in seen if isinstance(e, BatchExported)] == [None, 40, 40]
    assert sum(e.rows for e in seen if isinstance(e, BatchExported)) == 60
    assert sum(isinstance(e, FileDone) for e in seen) == 3  # replayed on the coordinator's bus
    failed = [e for e in seen if type(e).__name__ == "FileFailed"]
    assert len(failed) == 1 and "range 2 did not finish (RuntimeError: worker lost)" in str(failed[0].error)


def test_a_stop_while_planning_records_no_cut_from_a_query_it_cut_short(tmp_path: Path) -> None:
    """Ctrl-C while a planning query waits for another writer's lock: that query answers "no rows"
    (``_execute`` on stop), so ``plan_cut`` would return a cut to the table's end (or to None). It is
    not recorded: the plan holds the cuts made before the stop, and the table is not taken as whole."""
    from s3pump.export.job import ExportJob
    from s3pump.run import Run
    from s3pump.urls import parse_s3_url

    db = tmp_path / "t.sqlite"
    make_db(db, list(range(1, 81)))
    store = MemoryStore()
    store.create_bucket("bkt")
    source = open_table(str(db), "t", "k")
    nth = source._cursor_nth  # type: ignore[attr-defined]
    calls = [0]

    def stopped_on_the_fourth_query(after: Any, n: int) -> Any:
        calls[0] += 1
        if calls[0] == 4:  # the second query of the second cut: interrupted
            x.stop.set()
            return None
        return nth(after, n)

    source._cursor_nth = stopped_on_the_fourth_query  # type: ignore[attr-defined]
    with Run("export", CONFIG, "bkt", store=store) as run:
        x = ExportJob(source, parse_s3_url("s3://bkt/p"), run, [], "parquet", None, False, False, None, 20, None,
                      threading.Event())
        x.begin(False)
        assert x.planner.plan_cuts() == [[None, 1, 20]]
        assert x.checkpoint.batches == [[None, 1, 20]] and not x.whole_table
    source.close()
