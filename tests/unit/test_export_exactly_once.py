"""export stores every source row exactly once (issue 12 items 3, 4, 12), keeps decimals exact and checks
time partitions (issue 13). MemoryStore, no server.

The property tests run seeded sequences of appends, updates, deletes, complete runs, ``--from-start`` runs
and runs killed after a random number of PUTs (a ``BaseException`` raised inside the store, before or after
the object lands: the job gets no chance to clean up, as with SIGKILL), with ``--batch-rows`` changing
between runs. After a final complete run the objects under the table's prefix must hold each source row
exactly once, as it is now.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from s3pump.config import TransferConfig
from s3pump.errors import NetworkError, UsageError
from s3pump.export.partition import parse_partition
from s3pump.export.protogen import proto_schema, read_delimited
from s3pump.export.rows import to_array
from s3pump.jobs.export import export_table
from s3pump.sources.readers import open_table
from s3pump.sources.table import arrow_type_for
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore
from s3pump.store.waiting import put_and_wait

CONFIG = TransferConfig(max_attempts=1, backoff_base_s=0.0)
CHINOOK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "Chinook_Sqlite.sqlite"
if not CHINOOK.exists():
    CHINOOK = Path("/work/shared/data/Chinook_Sqlite.sqlite")


class Killed(BaseException):
    """The process died here (not an Exception: nothing in s3pump catches it)."""


class KillingStore(MemoryStore):
    """Dies at the ``kill_at``-th PutObject (data, checkpoint or hashes), before or after the object lands."""

    def __init__(self) -> None:
        super().__init__()
        self.create_bucket("bkt")
        self.kill_at: int | None = None
        self.after_store = False
        self.puts = 0

    def put_bytes(self, bucket: str, key: str, body: Any, attrs: ObjectAttributes, on_done: Any) -> Any:
        self.puts += 1
        if self.kill_at is not None and self.puts >= self.kill_at:
            self.kill_at = None
            if self.after_store:  # stored, but the job never hears of it
                super().put_bytes(bucket, key, body, attrs, lambda result: None)
            # the request settles without success (the engine's cleanup need not wait for it), then death
            on_done(NetworkError(f"s3://{bucket}/{key}: killed"))
            raise Killed
        return super().put_bytes(bucket, key, body, attrs, on_done)


def create(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, ts DATETIME, kind TEXT, v INTEGER)")
    conn.commit()
    conn.close()


def source_rows(db: Path) -> dict[int, tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    rows = {r[0]: (r[2], r[3]) for r in conn.execute("SELECT id, ts, kind, v FROM t")}
    conn.close()
    return rows


def stored_rows(s: MemoryStore, prefix: str = "p/t/") -> list[tuple[int, tuple[Any, ...]]]:
    out: list[tuple[int, tuple[Any, ...]]] = []
    for key, obj in s.snapshot("bkt").items():  # an export may be writing (the --follow test)
        if key.startswith(prefix):
            t = pq.read_table(io.BytesIO(obj.body))
            out += [(r["id"], (r["kind"], r["v"])) for r in t.to_pylist()]
    return out


def assert_exactly_once(s: MemoryStore, db: Path) -> None:
    stored = stored_rows(s)
    ids = [i for i, _ in stored]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"rows stored twice: {dupes[:10]}"
    assert dict(stored) == source_rows(db)  # no gaps, and each row as it is now
    assert list(s.list_multipart_uploads("bkt")) == []


def run_sequence(tmp: Path, seed: int, *, dedup: bool, partition: list[str]) -> None:
    rnd = random.Random(seed)
    db = tmp / f"d{seed}.db"
    create(db)
    s = KillingStore()
    next_id = 1

    def export(batch_rows: int, from_start: bool = False) -> None:
        export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=batch_rows, partition_by=partition,
                     dedup=dedup, dlq=str(tmp / f"dlq{seed}"), store=s, from_start=from_start)

    conn = sqlite3.connect(db)
    for _step in range(rnd.randint(4, 9)):
        op = rnd.choice(["append", "append", "run", "kill", "kill", "from-start"]
                        + (["update", "delete"] if dedup else []))
        if op == "append":
            n = rnd.randint(1, 12)
            rows = []
            for _ in range(n):
                next_id += rnd.choice([1, 1, 1, 2, 7])  # gaps in the key
                rows.append((next_id, f"2025-01-0{1 + next_id % 3} 10:00:00", f"k{next_id % 2}", next_id))
            conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
        elif op == "update":
            conn.execute("UPDATE t SET v = v + 1000, kind = CASE kind WHEN 'k0' THEN 'k1' ELSE 'k0' END "
                         "WHERE id % ? = 0", (rnd.randint(2, 5),))
        elif op == "delete":
            conn.execute("DELETE FROM t WHERE id % ? = 1", (rnd.randint(3, 7),))
        elif op == "run":
            conn.commit()
            export(rnd.choice([3, 5, 8, 100]))
        else:  # a kill, or a --from-start run killed half the time
            conn.commit()
            if op == "kill" or rnd.random() < 0.5:
                s.kill_at, s.after_store = s.puts + rnd.randint(1, 8), rnd.random() < 0.5
            with contextlib.suppress(Killed):
                export(rnd.choice([3, 5, 8, 100]), from_start=op == "from-start")
            s.kill_at = None
        conn.commit()
    conn.close()
    export(rnd.choice([3, 5, 8, 100]))
    assert_exactly_once(s, db)
    # and a second complete run changes nothing
    before = {k: o.etag for k, o in s.buckets["bkt"].items() if k.startswith("p/t/")}
    export(rnd.choice([3, 5, 8, 100]))
    assert {k: o.etag for k, o in s.buckets["bkt"].items() if k.startswith("p/t/")} == before


# ---------------------------------------------------------------- item 3: rows stored exactly once
@pytest.mark.parametrize("seed", range(30))
def test_incremental_runs_kills_and_appends_store_each_row_once(tmp_path: Path, seed: int) -> None:
    run_sequence(tmp_path, seed, dedup=False, partition=[["time:ts:day"], [], ["column:kind"]][seed % 3])


@pytest.mark.parametrize("seed", range(30))
def test_dedup_runs_kills_appends_updates_deletes_store_each_row_once(tmp_path: Path, seed: int) -> None:
    run_sequence(tmp_path, seed, dedup=True, partition=[["column:kind"], [], ["time:ts:day"]][seed % 3])


def test_dedup_grown_batch_keeps_its_key(tmp_path: Path) -> None:
    """The issue's example: --dedup, 150 rows, --batch-rows 100, append 10, rerun."""
    db = tmp_path / "d.db"
    create(db)
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO t VALUES (?, '2025-01-01', 'k', ?)", [(i, i) for i in range(1, 151)])
    conn.commit()
    s = KillingStore()
    export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, dedup=True, store=s)
    conn.executemany("INSERT INTO t VALUES (?, '2025-01-01', 'k', ?)", [(i, i) for i in range(151, 161)])
    conn.commit()
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, dedup=True, store=s)
    assert rep.objects_written == 1 and rep.objects_skipped == 2
    assert sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/")) == [
        "p/t/part-1-100.parquet", "p/t/part-101-150.parquet", "p/t/part-151-160.parquet"]
    assert_exactly_once(s, db)


def test_kill_between_objects_and_checkpoint_then_append_reuses_the_cut(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    create(db)
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO t VALUES (?, '2025-01-01', ?, ?)", [(i, f"k{i % 2}", i) for i in range(1, 41)])
    conn.commit()
    s = KillingStore()
    # PUTs: the cut, object k0, object k1 (landed, unheard), then the checkpoint would follow
    s.kill_at, s.after_store = 3, True
    with pytest.raises(Killed):
        export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, partition_by=["column:kind"], store=s)
    state = json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)
    assert state["cursor"] is None and state["batches"] == [[None, 1, 40]]
    conn.executemany("INSERT INTO t VALUES (?, '2025-01-01', ?, ?)", [(i, f"k{i % 2}", i) for i in range(41, 51)])
    conn.commit()
    export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, partition_by=["column:kind"], store=s)
    assert sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/")) == [
        "p/t/kind=k0/part-1-40.parquet", "p/t/kind=k0/part-41-50.parquet",
        "p/t/kind=k1/part-1-40.parquet", "p/t/kind=k1/part-41-50.parquet"]
    assert_exactly_once(s, db)
    assert json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)["batches"] == []


def test_from_start_with_other_batches_deletes_the_superseded_objects(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    create(db)
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO t VALUES (?, '2025-01-01', 'k', ?)", [(i, i) for i in range(1, 26)])
    conn.commit()
    s = KillingStore()
    export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=10, store=s)
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=7, from_start=True, store=s)
    assert rep.deleted == ["p/t/part-1-10.parquet", "p/t/part-11-20.parquet", "p/t/part-21-25.parquet"]
    assert_exactly_once(s, db)
    # killed partway, a --from-start run's rerun (without the flag) still deletes what it superseded
    s.kill_at, s.after_store = s.puts + 3, True
    with pytest.raises(Killed):
        export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=4, from_start=True, store=s)
    rest = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=4, store=s)
    assert "p/t/part-1-7.parquet" in rest.deleted and "p/t/part-1-4.parquet" not in rest.deleted
    assert_exactly_once(s, db)
    assert json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)["superseded"] is None


def test_a_dedup_checkpoint_refuses_a_run_without_dedup(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    create(db)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO t VALUES (1, '2025-01-01', 'k', 1)")
    conn.commit()
    s = KillingStore()
    export_table(str(db), "t", "s3://bkt/p", CONFIG, dedup=True, store=s)
    with pytest.raises(UsageError, match="--dedup"):
        export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s)


# ---------------------------------------------------------------- item 4: a nullable cursor column
def nullable_db(path: Path, nulls: int, ids: range) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS n (id INT PRIMARY KEY, v TEXT)")  # not a rowid alias: NULLs allowed
    conn.executemany("INSERT INTO n VALUES (NULL, ?)", [(f"null-{i}",) for i in range(nulls)])
    conn.executemany("INSERT INTO n VALUES (?, ?)", [(i, f"v{i}") for i in ids])
    conn.commit()
    conn.close()
    return path


class CappedStore(MemoryStore):
    """Fails the test instead of looping forever: at most ``cap`` PUTs."""

    def __init__(self, cap: int = 200) -> None:
        super().__init__()
        self.create_bucket("bkt")
        self.cap, self.puts = cap, 0

    def put_bytes(self, bucket: str, key: str, body: Any, attrs: ObjectAttributes, on_done: Any) -> Any:
        self.puts += 1
        if self.puts > self.cap:
            raise Killed(f"{self.puts} PUTs: the export loops ({key})")
        return super().put_bytes(bucket, key, body, attrs, on_done)


@pytest.mark.parametrize("seed", range(12))
def test_null_cursor_rows_are_refused_with_column_and_count_never_looped(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    batch = rnd.choice([1, 3, 10])
    nulls_first, ids = rnd.choice([0, batch, batch + 2, 3 * batch]), range(1, rnd.randint(2, 30))
    db = nullable_db(tmp_path / "n.db", nulls_first, ids)
    s = CappedStore()
    if nulls_first:
        with pytest.raises(UsageError) as e:
            export_table(str(db), "n", "s3://bkt/p", CONFIG, batch_rows=batch, store=s)
        assert "cursor column id" in str(e.value) and f"NULL in {nulls_first} row" in str(e.value)
        assert not [k for k in s.buckets["bkt"] if k.startswith("p/n/")]
        return
    export_table(str(db), "n", "s3://bkt/p", CONFIG, batch_rows=batch, store=s)
    # a NULL-cursor row added later is not silently left behind: the next run refuses it
    nullable_db(db, rnd.randint(1, 3), range(0))
    with pytest.raises(UsageError, match=r"cursor column id of table n is NULL in \d+ row"):
        export_table(str(db), "n", "s3://bkt/p", CONFIG, batch_rows=batch, store=s)
    assert list(s.list_multipart_uploads("bkt")) == []


def test_null_cursor_row_arriving_during_follow_stops_with_usage_error(tmp_path: Path) -> None:
    db = nullable_db(tmp_path / "n.db", 0, range(1, 11))
    s = CappedStore(cap=10_000)
    box: list[BaseException] = []
    stop = threading.Event()

    def run() -> None:
        try:
            export_table(str(db), "n", "s3://bkt/p", CONFIG, batch_rows=4, follow=True, poll_interval_s=0.05,
                         stop=stop, store=s)
        except BaseException as e:
            box.append(e)

    th = threading.Thread(target=run, daemon=True)  # never keeps pytest alive
    th.start()
    time.sleep(0.5)
    nullable_db(db, 5, range(0))
    th.join(timeout=20)
    stop.set()
    th.join(timeout=5)
    assert box and isinstance(box[0], UsageError) and "NULL in 5 rows" in str(box[0]), box
    assert s.puts < 50


def test_int_primary_key_that_is_not_a_rowid_alias_is_nullable(tmp_path: Path) -> None:
    db = nullable_db(tmp_path / "n.db", 0, range(1, 3))
    assert open_table(str(db), "n").cursor.nullable
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE TABLE w (id INT PRIMARY KEY, v TEXT) WITHOUT ROWID")
    conn.commit()
    assert not open_table(str(db), "r").cursor.nullable and not open_table(str(db), "w").cursor.nullable


# ---------------------------------------------------------------- item 12: another writer holds the lock
def test_follow_waits_out_a_writer_holding_the_lock_longer_than_5_s(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    create(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executemany("INSERT INTO t VALUES (?, '2025-01-01', 'k', ?)", [(i, i) for i in range(1, 11)])
    s = MemoryStore()
    s.create_bucket("bkt")
    stop = threading.Event()
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(export_table(str(db), "t", "s3://bkt/p", CONFIG, follow=True, poll_interval_s=0.1,
                                    stop=stop, store=s))
        except BaseException as e:
            box.append(e)

    th = threading.Thread(target=run, daemon=True)  # never keeps pytest alive
    th.start()
    deadline = time.monotonic() + 60  # waits for an outcome, not a bound on it
    while not any(k.startswith("p/t/") for k in s.snapshot("bkt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        conn.execute("BEGIN EXCLUSIVE")  # readers of a rollback-journal database now get SQLITE_BUSY
        conn.executemany("INSERT INTO t VALUES (?, '2025-01-01', 'k', ?)", [(i, i) for i in range(11, 21)])
        time.sleep(6.5)
        assert th.is_alive() and not box, f"export gave up while the database was locked: {box}"
        conn.execute("COMMIT")
        deadline = time.monotonic() + 60  # waits for an outcome, not a bound on it
        while len(stored_rows(s)) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        th.join(timeout=60)
        conn.close()
    assert box, "export still running 60 s after stop was set"
    assert not isinstance(box[0], BaseException), box[0]
    assert box[0].ok and sorted(i for i, _ in stored_rows(s)) == list(range(1, 21))


def test_a_one_shot_export_gives_up_on_a_lock_after_its_timeout_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    create(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    s = MemoryStore()
    s.create_bucket("bkt")
    started = time.monotonic()
    with pytest.raises(Exception, match="stayed locked by another writer") as e:
        export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s, lock_timeout_s=1.5)
    conn.execute("ROLLBACK")
    assert "\n" not in str(e.value) and time.monotonic() - started < 8


# ---------------------------------------------------------------- issue 13: exact decimals
def test_numeric_p_s_maps_to_decimal128_and_converts_exactly() -> None:
    assert arrow_type_for("NUMERIC(10,2)") == pa.decimal128(10, 2)
    assert arrow_type_for("decimal( 18 , 4 )") == pa.decimal128(18, 4)
    assert arrow_type_for("DECIMAL(5)") == pa.decimal128(5, 0)
    assert arrow_type_for("NUMERIC(50,10)") == pa.decimal256(50, 10)
    assert arrow_type_for("NUMERIC") == pa.float64()
    typ = pa.decimal128(10, 2)
    assert to_array([1.98, 2, "3.5", None, 0.1 + 0.2], typ).to_pylist() == [
        Decimal("1.98"), Decimal("2.00"), Decimal("3.50"), None, Decimal("0.30")]
    for bad in (2.178, "abc", 123456789012.0, float("nan")):
        with pytest.raises(ValueError):
            to_array([bad], typ)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "protobuf"])
def test_chinook_invoice_total_sums_exactly(tmp_path: Path, fmt: str) -> None:
    db = tmp_path / "chinook.sqlite"
    shutil.copyfile(CHINOOK, db)
    s = MemoryStore()
    s.create_bucket("bkt")
    rep = export_table(str(db), "Invoice", "s3://bkt/p", CONFIG, format=fmt, batch_rows=50, store=s)
    assert rep.ok and rep.rows_exported == 412
    conn = sqlite3.connect(db)
    # SQLite's own sum, as the exact decimal it stands for (2 places; float noise rounded away)
    sqlite_sum = Decimal(conn.execute("SELECT printf('%.2f', SUM(Total)) FROM Invoice").fetchone()[0])
    exact_sum = sum((Decimal(repr(r[0])) for r in conn.execute("SELECT Total FROM Invoice")), Decimal(0))
    assert sqlite_sum == exact_sum == Decimal("2328.60")
    totals: list[Decimal] = []
    objects = {k: o.body for k, o in s.buckets["bkt"].items() if k.startswith("p/Invoice/")}
    if fmt == "parquet":
        for body in objects.values():
            t = pq.read_table(io.BytesIO(body))
            assert t.schema.field("Total").type == pa.decimal128(10, 2)
            totals += t["Total"].to_pylist()
    elif fmt == "jsonl":
        import gzip
        for body in objects.values():
            for line in gzip.decompress(body).decode().splitlines():
                value = json.loads(line)["Total"]
                assert isinstance(value, str)
                totals.append(Decimal(value))
    else:
        proto = proto_schema("Invoice", open_table(str(db), "Invoice").schema)
        assert "string Total = 9;  // exact decimal NUMERIC(10,2)" in proto.proto_text
        for body in objects.values():
            totals += [Decimal(proto.message_class.FromString(r).Total) for r in read_delimited(body)]
    assert all(isinstance(t, Decimal) for t in totals) and len(totals) == 412
    assert sum(totals, Decimal(0)) == sqlite_sum


# ---------------------------------------------------------------- issue 13: time partitions, names, dry run
def test_time_partition_on_a_numeric_column_is_a_usage_error_naming_column_and_type(tmp_path: Path) -> None:
    db = tmp_path / "chinook.sqlite"
    shutil.copyfile(CHINOOK, db)
    s = MemoryStore()
    s.create_bucket("bkt")
    with pytest.raises(UsageError) as e:
        export_table(str(db), "Invoice", "s3://bkt/p", CONFIG, partition_by=["time:Total:day"], store=s)
    assert "column Total is declared NUMERIC(10,2)" in str(e.value) and "\n" not in str(e.value)
    assert "epoch-s" in str(e.value)
    with pytest.raises(UsageError, match="InvoiceDate is declared DATETIME"):
        export_table(str(db), "Invoice", "s3://bkt/p", CONFIG, partition_by=["time:InvoiceDate:day:epoch-s"],
                     store=s)
    assert not s.buckets["bkt"]


def test_time_partition_on_epoch_columns_when_asked(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, at_s INTEGER, at_ms INTEGER)")
    conn.executemany("INSERT INTO e VALUES (?, ?, ?)", [(1, 1735776000, 1735776000_000), (2, 86400, 86400_000)])
    conn.commit()
    assert str(parse_partition("time:at_s:day:epoch-s")) == "time:at_s:day:epoch-s"
    for col, unit in (("at_s", "s"), ("at_ms", "ms")):
        s = MemoryStore()
        s.create_bucket("bkt")
        export_table(str(db), "e", "s3://bkt/p", CONFIG, partition_by=[f"time:{col}:day:epoch-{unit}"], store=s)
        assert sorted(k for k in s.buckets["bkt"] if k.startswith("p/e/")) == [
            "p/e/year=1970/month=01/day=02/part-1-2.parquet", "p/e/year=2025/month=01/day=02/part-1-2.parquet"]


def test_table_name_in_another_case_is_the_same_export(tmp_path: Path) -> None:
    db = tmp_path / "chinook.sqlite"
    shutil.copyfile(CHINOOK, db)
    s = MemoryStore()
    s.create_bucket("bkt")
    first = export_table(str(db), "invoice", "s3://bkt/p", CONFIG, store=s)
    assert first.table == "Invoice" and first.rows_exported == 412
    assert "p/_s3pump/state/Invoice.json" in s.buckets["bkt"]
    assert all(k.startswith(("p/Invoice/", "p/_s3pump/")) for k in s.buckets["bkt"])
    again = export_table(str(db), "INVOICE", "s3://bkt/p", CONFIG, store=s)
    assert again.objects_written == 0 and again.checkpoint == 412
    # column names in another case find their columns too, and keys use the declared names
    rep = export_table(str(db), "invoice", "s3://bkt/q", CONFIG, cursor_column="invoiceid",
                       partition_by=["column:billingcountry"], store=s)
    assert rep.rows_exported == 412 and "q/Invoice/BillingCountry=Norway/part-1-412.parquet" in s.buckets["bkt"]
    state = json.loads(s.buckets["bkt"]["q/_s3pump/state/Invoice.json"].body)
    assert state["cursor_column"] == "InvoiceId" and state["partition_by"] == ["column:BillingCountry"]


def test_a_checkpoint_from_before_cuts_resumes_after_its_cursor(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    create(db)
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO t VALUES (?, '2025-01-01', 'k', ?)", [(i, i) for i in range(1, 31)])
    conn.commit()
    s = KillingStore()
    legacy = {"version": 1, "table": "t", "cursor_column": "id", "cursor": 20, "format": "parquet",
              "partition_by": [], "schema_hash": "", "rows_exported": 20, "objects_written": 1, "updated_at": ""}
    put_and_wait(s, "bkt", "p/_s3pump/state/t.json", json.dumps(legacy).encode(), ObjectAttributes(),
                 timeout_s=CONFIG.request_timeout_s)
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, store=s)
    assert rep.rows_exported == 10 and sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/")) == [
        "p/t/part-21-30.parquet"]


def test_dry_run_lists_the_objects_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    create(db)
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                     [(i, f"2025-01-0{1 + i % 2} 10:00:00", "k", i) for i in range(1, 26)])
    conn.commit()
    s = MemoryStore()
    s.create_bucket("bkt")
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=10, partition_by=["time:ts:day"],
                       dry_run=True, follow=True, store=s)
    assert rep.dry_run and not s.buckets["bkt"] and rep.objects_written == 0
    assert [(o["key"], o["rows"]) for o in rep.would_write] == [
        ("p/t/year=2025/month=01/day=01/part-1-10.parquet", 5), ("p/t/year=2025/month=01/day=02/part-1-10.parquet", 5),
        ("p/t/year=2025/month=01/day=01/part-11-20.parquet", 5),
        ("p/t/year=2025/month=01/day=02/part-11-20.parquet", 5),
        ("p/t/year=2025/month=01/day=01/part-21-25.parquet", 2),
        ("p/t/year=2025/month=01/day=02/part-21-25.parquet", 3)]
    real = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=10, partition_by=["time:ts:day"], store=s)
    assert sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/")) == sorted(o["key"] for o in rep.would_write)
    assert real.rows_exported == 25
