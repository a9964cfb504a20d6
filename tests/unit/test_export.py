"""export: cursor batches, partitioning, formats, checkpoint safety, dedup, DLQ (MemoryStore, no server)."""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from s3pump.config import TransferConfig
from s3pump.errors import AccessDeniedError, StoreError, UsageError
from s3pump.events import FileDone
from s3pump.export.formats import make_serializer
from s3pump.export.partition import DEFAULT_PARTITION, parse_partition, split
from s3pump.export.protogen import proto_schema, read_delimited
from s3pump.export.rows import to_arrow
from s3pump.jobs.export import export_table
from s3pump.sources.readers import open_table
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore

CONFIG = TransferConfig(max_attempts=1, backoff_base_s=0.0)


def make_db(path: Path, ids: list[int], *, day_of: Any = None) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, ts DATETIME, kind TEXT, amount REAL, "
                 "note TEXT)")
    day_of = day_of or (lambda i: 1 + i % 3)
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                     [(i, f"2025-01-{day_of(i):02d} 10:00:00", f"k{i % 2}", i / 4, None if i % 5 else "")
                      for i in ids])
    conn.commit()
    conn.close()
    return path


def store() -> MemoryStore:
    s = MemoryStore()
    s.create_bucket("bkt")
    return s


def data_objects(s: MemoryStore, prefix: str = "p/t/") -> dict[str, bytes]:
    return {k: o.body for k, o in s.buckets["bkt"].items() if k.startswith(prefix)}


def ids_in(objects: dict[str, bytes]) -> list[int]:
    out: list[int] = []
    for body in objects.values():
        out += pq.read_table(io.BytesIO(body))["id"].to_pylist()
    return sorted(out)


# ---------------------------------------------------------------- source
def test_gaps_in_the_key_skip_nothing(tmp_path: Path) -> None:
    ids = [1, 2, 3, 10, 11, 50, 51, 52, 1000, 1001, 99999]
    src = open_table(str(make_db(tmp_path / "d.db", ids)), "t")
    seen, after = [], None
    while (b := src.read_after(after, 2)) is not None:
        seen += [r[0] for r in b.rows]
        assert b.first == b.rows[0][0] and b.last == b.rows[-1][0]
        after = b.last
    assert seen == ids


def test_non_unique_cursor_never_splits_a_value(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "d.db")
    conn.execute("CREATE TABLE e (g INTEGER, v TEXT)")
    conn.executemany("INSERT INTO e VALUES (?, ?)", [(1, "a"), (1, "b"), (1, "c"), (2, "d"), (2, "e"), (3, "f")])
    conn.commit()
    src = open_table(str(tmp_path / "d.db"), "e", cursor_column="g")
    seen, after = [], None
    while (b := src.read_after(after, 2)) is not None:
        seen += [r[1] for r in b.rows]
        after = b.last
    assert sorted(seen) == list("abcdef")


def test_table_without_integer_key_needs_a_cursor(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "d.db")
    conn.execute("CREATE TABLE e (name TEXT PRIMARY KEY)")
    conn.commit()
    with pytest.raises(UsageError, match="--cursor-column"):
        open_table(str(tmp_path / "d.db"), "e")
    with pytest.raises(UsageError, match="no table"):
        open_table(str(tmp_path / "d.db"), "nope")


def test_sqlalchemy_url_reads_the_same_rows(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    db = make_db(tmp_path / "d.db", list(range(1, 8)))
    a, b = open_table(str(db), "t"), open_table(f"sqlite+pysqlite:///{db}", "t")
    assert a.schema == b.schema
    ra, rb = a.read_after(2, 3), b.read_after(2, 3)
    assert ra is not None and rb is not None
    assert [r[0] for r in ra.rows] == [r[0] for r in rb.rows] == [3, 4, 5]


# ---------------------------------------------------------------- conversion and partitioning
def test_to_arrow_parses_timestamp_forms_and_isolates_bad_rows() -> None:
    schema = pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us"))])
    t, pos, bad = to_arrow([(1, "2025-01-02 03:04:05"), (2, "2025-01-02T03:04:05.5"), (3, 1735787045)], schema, 0)
    assert [v.isoformat() for v in t["ts"].to_pylist()] == [
        "2025-01-02T03:04:05", "2025-01-02T03:04:05.500000", "2025-01-02T03:04:05"]
    t, pos, bad = to_arrow([(1, "2025-01-02 03:04:05+02:00")], schema, 0)
    assert t["ts"][0].as_py().isoformat() == "2025-01-02T01:04:05" and not bad
    t, pos, bad = to_arrow([(1, "2025-01-01"), ("oops", "2025-01-01"), (3, "not a time")], schema, 0)
    assert t["id"].to_pylist() == [1] and pos == [0]
    assert [b.cursor for b in bad] == ["oops", 3] and "column ts" in bad[1].error


@pytest.mark.parametrize(("declared", "first", "last", "outside"), [
    (pa.timestamp("us"), -62_135_596_800, 253_402_300_799, [-62_135_596_801, 253_402_300_800, -62_135_596_800.5,
                                                           "0000-12-31 23:59:59", 2**62 // 10**6]),
    (pa.timestamp("us", "UTC"), "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", ["0001-01-01T00:30:00+01:00",
                                                                                     -62_135_596_801]),
    (pa.date32(), -62_135_596_800, "9999-12-31", [-62_135_683_200, "0000-12-31", 253_402_387_200]),
])
def test_a_time_outside_years_1_to_9999_is_a_bad_row(declared: pa.DataType, first: Any, last: Any,
                                                     outside: list[Any]) -> None:
    """As the PostgreSQL source: an instant before 0001-01-01 or after 9999-12-31 (Unix seconds in a DATETIME
    column, ISO text with year 0000) is dead-lettered with its reason, never exported as a value that JSON Lines,
    ISO 8601 and the readers' datetimes cannot hold (hypothesis found -62135596801 in a DATETIME column)."""
    schema = pa.schema([("id", pa.int64()), ("t", declared)])
    rows = [(1, first), *((i, v) for i, v in enumerate(outside, 2)), (99, last)]
    t, pos, bad = to_arrow(rows, schema, 0)
    assert t["id"].to_pylist() == [1, 99] and pos == [0, len(rows) - 1]
    assert [b.cursor for b in bad] == list(range(2, len(outside) + 2))
    assert all(f"column t: value {v!r:.80} is not {declared}" in b.error and "outside years 1-9999" in b.error
               for b, v in zip(bad, outside, strict=True)), [b.error for b in bad]
    assert str(t["t"][0].as_py()).startswith("0001-01-01") and str(t["t"][1].as_py()).startswith("9999-12-31")


def test_partition_specs_parse_and_reject() -> None:
    assert str(parse_partition("time:created_at:hour")) == "time:created_at:hour"
    assert parse_partition("column:a:b").column == "a:b"
    for bad in ("time:x", "time:x:week", "col:x", "column:"):
        with pytest.raises(UsageError):
            parse_partition(bad)


def test_split_nests_escapes_and_keeps_cursor_order() -> None:
    t = pa.table({
        "id": [1, 2, 3, 4, 5, 6],
        "who": ["a/b", "x=y", None, "a/b", "", "x=y"],
        "ts": pa.array(["2025-03-01 23:00:00", "2025-03-02 01:00:00", None, "2025-03-01 00:00:00",
                        "2025-03-01 00:00:00", "2025-03-02 02:00:00"]).cast(pa.timestamp("us")),
    })
    got = split(t, [parse_partition("column:who"), parse_partition("time:ts:day")])
    assert all(rows.equals(t.take(idx)) for _path, idx, rows in got)
    groups = {path: rows["id"].to_pylist() for path, _idx, rows in got}
    assert groups == {
        "who=a%2Fb/year=2025/month=03/day=01": [1, 4],
        "who=x%3Dy/year=2025/month=03/day=02": [2, 6],
        f"who={DEFAULT_PARTITION}/year={DEFAULT_PARTITION}/month={DEFAULT_PARTITION}/day={DEFAULT_PARTITION}": [3],
        f"who={DEFAULT_PARTITION}/year=2025/month=03/day=01": [5],
    }


def test_split_of_one_partition_or_none_is_the_table_in_order() -> None:
    t = pa.table({"id": [3, 1, 2], "ts": pa.array(["2025-03-01 23:00:00", "2025-03-01 01:00:00",
                                                      "2025-03-01 00:00:00"]).cast(pa.timestamp("us"))})
    for specs in ([parse_partition("time:ts:day")], []):
        [(path, idx, rows)] = split(t, specs)
        assert idx.to_pylist() == [0, 1, 2]
        assert rows["id"].to_pylist() == [3, 1, 2]
        assert path == ("year=2025/month=03/day=01" if specs else "")
    assert split(t.slice(0, 0), [parse_partition("time:ts:day")]) == []


# ---------------------------------------------------------------- formats
def test_serializers_are_deterministic_and_round_trip() -> None:
    t = pa.table({"id": pa.array([1, 2], pa.int64()), "name": ["é", None],
                  "ts": pa.array([1_000_000, None], pa.timestamp("us")), "raw": pa.array([b"\x00\xff", b""])})
    for fmt, comp in (("parquet", None), ("jsonl", "gzip"), ("jsonl", "zstd")):
        s = make_serializer(fmt, comp)
        assert s.serialize(t) == s.serialize(t)
    body = make_serializer("jsonl", "gzip").serialize(t)
    lines = [json.loads(x) for x in gzip.decompress(body).decode().splitlines()]
    assert lines == [{"id": 1, "name": "é", "ts": "1970-01-01T00:00:01", "raw": "AP8="},
                     {"id": 2, "name": None, "ts": None, "raw": ""}]
    assert pq.read_table(io.BytesIO(make_serializer("parquet", None).serialize(t))).equals(t)
    with pytest.raises(UsageError):
        make_serializer("parquet", "gzip9")


def test_parquet_dictionary_pages_only_for_text_and_binary_columns() -> None:
    """Issue 15: keys, times and measures are written plain (their dictionaries only cost CPU and
    bytes); text and binary columns keep dictionary pages. The values read back the same."""
    n = 3000
    t = pa.table({"id": pa.array(range(n), pa.int64()), "amount": pa.array([i / 7 for i in range(n)]),
                  "ts": pa.array(range(0, n * 37_000_000, 37_000_000), pa.timestamp("us")),
                  "kind": pa.array([f"k{i % 3}" for i in range(n)]),
                  "raw": pa.array([b"\x00" * (i % 2) for i in range(n)])})
    body = make_serializer("parquet", None).serialize(t)
    meta = pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0)
    dictionary = {meta.column(i).path_in_schema: "RLE_DICTIONARY" in meta.column(i).encodings
                  for i in range(meta.num_columns)}
    assert dictionary == {"id": False, "amount": False, "ts": False, "kind": True, "raw": True}
    assert pq.read_table(io.BytesIO(body)).equals(t)


def test_protobuf_keeps_null_apart_from_empty_and_frames_records() -> None:
    schema = pa.schema([pa.field("id", pa.int64(), False), pa.field("note", pa.string()),
                        pa.field("2nd col", pa.float64())])
    proto = proto_schema("my-table", schema)
    assert "message My_table {" in proto.proto_text and "optional double f_2nd_col = 3;" in proto.proto_text
    t = pa.table({"id": [1, 2], "note": ["", None], "2nd col": [0.5, None]}, schema=schema)
    body = make_serializer("protobuf", None, proto=proto).serialize(t)
    msgs = [proto.message_class.FromString(r) for r in read_delimited(body)]
    assert [m.id for m in msgs] == [1, 2]
    assert msgs[0].HasField("note") and msgs[0].note == "" and not msgs[1].HasField("note")
    assert msgs[0].f_2nd_col == 0.5 and not msgs[1].HasField("f_2nd_col")


# ---------------------------------------------------------------- the job
def test_checkpoint_is_written_only_after_its_rows_are_stored(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", list(range(1, 501)))

    class Checking(MemoryStore):
        checks = 0

        def put_bytes(self, bucket: str, key: str, body: Any, attrs: ObjectAttributes, on_done: Any) -> Any:
            if key.endswith("_s3pump/state/t.json"):
                cursor = json.loads(bytes(body))["cursor"]
                if cursor is not None:  # a save that only records a new batch's cut claims no rows yet
                    assert ids_in(data_objects(self))[:cursor] == list(range(1, cursor + 1))
                    Checking.checks += 1
            return super().put_bytes(bucket, key, body, attrs, on_done)

    s = Checking()
    s.create_bucket("bkt")
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=50, partition_by=["time:ts:day"], store=s)
    assert rep.ok and rep.checkpoint == 500 and rep.rows_exported == 500 and Checking.checks >= 1
    assert ids_in(data_objects(s)) == list(range(1, 501))
    key = "p/t/year=2025/month=01/day=01/part-1-50.parquet"
    assert s.buckets["bkt"][key].metadata["s3pump-rows"] == str(len([i for i in range(1, 51) if i % 3 == 0]))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_the_next_batch_is_read_ahead_in_a_thread_and_the_objects_are_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Issue 15: an SQLite source's next batch is read (and converted) in the read-ahead thread while
    this one is written; the objects, their bytes and the checkpoint are those of reading in turn.
    A source that must read on one thread is planned inline, on the engine's (issue 25)."""
    from s3pump.sources import sqlite_table as sqlite_table_mod
    from s3pump.sources import table as table_mod

    db = make_db(tmp_path / "d.db", list(range(1, 1001)))
    threads: list[str] = []
    read_after = table_mod.TableSource.read_after

    def recording(self: Any, after: Any, limit: int) -> Any:
        threads.append(threading.current_thread().name)
        return read_after(self, after, limit)

    read_arrow_after = sqlite_table_mod.SqliteTable.read_arrow_after

    def recording_arrow(self: Any, after: Any, limit: int, convert: Any) -> Any:
        threads.append(threading.current_thread().name)
        return read_arrow_after(self, after, limit, convert)

    monkeypatch.setattr(sqlite_table_mod.SqliteTable, "read_after", recording)
    monkeypatch.setattr(sqlite_table_mod.SqliteTable, "read_arrow_after", recording_arrow)
    outcomes = {}
    for ahead in (True, False):
        monkeypatch.setattr(sqlite_table_mod.SqliteTable, "reads_in_any_thread", ahead)
        threads.clear()
        s = store()
        rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, format=fmt,
                           partition_by=["time:ts:day"], store=s)
        assert rep.ok and rep.checkpoint == 1000 and rep.rows_exported == 1000
        outcomes[ahead] = (data_objects(s), s.buckets["bkt"]["p/_s3pump/state/t.json"].body, list(threads))
    reads_ahead = outcomes[True][2]
    # the planner's thread reads the first batch (never the engine's), then 10 read ahead (the last: the end)
    assert len(reads_ahead) == 11 and reads_ahead[0] == "s3pump-export-plan"
    assert all(name.startswith("s3pump-export-read") for name in reads_ahead[1:])
    assert set(outcomes[False][2]) == {"MainThread"}
    assert outcomes[True][0] == outcomes[False][0] and len(outcomes[True][0]) == 30
    assert json.loads(outcomes[True][1])["cursor"] == json.loads(outcomes[False][1])["cursor"] == 1000


def test_closing_the_source_waits_for_a_read_in_flight(tmp_path: Path) -> None:
    """The export closes its source when it ends, also on an error while the read-ahead thread is
    in a read: close() waits for that read (closing an SQLite connection under a running statement
    crashed the process, seen in test_export_exactly_once.py)."""
    db = make_db(tmp_path / "d.db", list(range(1, 200_001)))
    src = open_table(str(db), "t")
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.append(src.read_after(None, 300_000)))  # one statement
    reader.start()
    while not src._conn_lock.locked():  # type: ignore[attr-defined]
        assert reader.is_alive()
    src.close()
    reader.join()
    assert got[0].count == 200_000 and got[0].last == 200_000


def test_rerun_resumes_after_checkpoint_and_new_rows_only(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", list(range(1, 101)))
    s = store()
    export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=30, store=s)
    before = data_objects(s)
    assert sorted(before) == [f"p/t/part-{a}-{b}.parquet" for a, b in ((1, 30), (31, 60), (61, 90), (91, 100))]
    make_db(db, [150, 151])
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=30, store=s)
    assert rep.objects_written == 1 and rep.checkpoint == 151
    assert set(data_objects(s)) - set(before) == {"p/t/part-150-151.parquet"}
    with pytest.raises(UsageError, match="--from-start"):
        export_table(str(db), "t", "s3://bkt/p", CONFIG, format="jsonl", store=s)


def test_failed_upload_goes_to_dlq_export_continues_and_replay_fixes_it(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", list(range(1, 301)))
    broken = {"on": True}

    def fault(op: str, key: str) -> StoreError | None:
        if broken["on"] and "part-101-200" in key:
            return AccessDeniedError(f"s3://bkt/{key}: AccessDenied")
        return None

    s = MemoryStore(fault=fault)
    s.create_bucket("bkt")
    dlq = tmp_path / "dlq"
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, dlq=str(dlq), store=s)
    assert not rep.ok and rep.objects_failed == 1 and rep.rows_exported == 200 and rep.checkpoint == 300
    entry = json.loads((dlq / "t" / "upload-101-200.json").read_text())
    assert entry["keys"][0]["key"] == "p/t/part-101-200.parquet" and "AccessDenied" in entry["keys"][0]["error"]

    broken["on"] = False
    again = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, dlq=str(dlq), replay_dlq=True,
                         store=s)
    assert again.ok and again.replayed_entries == 1 and not list(dlq.rglob("*.json"))
    assert ids_in(data_objects(s)) == list(range(1, 301))
    assert json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)["cursor"] == 300


def test_a_dlq_that_cannot_be_written_stops_the_export_before_the_checkpoint(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", list(range(1, 201)))

    def fault(op: str, key: str) -> StoreError | None:
        if "part-101-200" in key or "/_dlq/" in key:
            return AccessDeniedError(f"s3://bkt/{key}: AccessDenied")
        return None

    s = MemoryStore(fault=fault)
    s.create_bucket("bkt")
    with pytest.raises(AccessDeniedError, match="_dlq"):
        export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, store=s)
    assert json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)["cursor"] == 100


def test_unconvertible_row_goes_to_dlq_and_batch_mates_export(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", list(range(1, 11)))
    conn = sqlite3.connect(db)
    conn.execute("UPDATE t SET amount = 'lots' WHERE id = 4")  # SQLite stores TEXT in a REAL column
    conn.execute("UPDATE t SET kind = CAST(x'ff' AS TEXT) WHERE id = 7")  # invalid UTF-8
    conn.commit()
    s = store()
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, dlq=str(tmp_path / "q"), store=s)
    assert rep.rows_failed == 2 and rep.rows_exported == 8 and rep.checkpoint == 10
    assert ids_in(data_objects(s)) == [1, 2, 3, 5, 6, 8, 9, 10]
    entry = json.loads((tmp_path / "q" / "t" / "rows-1-10.json").read_text())
    errors = {r["cursor"]: r["error"] for r in entry["rows"]}
    assert "column amount" in errors[4] and "invalid UTF-8" in errors[7]


def test_dedup_writes_only_groups_with_changed_rows(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", list(range(1, 61)))
    s = store()
    args: dict[str, Any] = {"batch_rows": 20, "partition_by": ["column:kind"], "dedup": True, "store": s}
    assert export_table(str(db), "t", "s3://bkt/p", CONFIG, **args).objects_written == 6
    again = export_table(str(db), "t", "s3://bkt/p", CONFIG, **args)
    assert again.objects_written == 0 and again.objects_skipped == 6 and again.rows_unchanged == 60
    conn = sqlite3.connect(db)
    conn.execute("UPDATE t SET amount = -1 WHERE id IN (22, 24)")  # both kind k0, batch 21..40
    conn.commit()
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, **args)
    assert rep.objects_written == 1 and rep.rows_exported == 10
    body = s.buckets["bkt"]["p/t/kind=k0/part-21-40.parquet"].body
    assert pq.read_table(io.BytesIO(body))["amount"].to_pylist().count(-1) == 2


def test_one_object_per_row_uses_the_lab_layout(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", [1, 2, 3])
    s = store()
    rep = export_table(str(db), "t", "s3://bkt/lab", CONFIG, format="protobuf", one_object_per_row=True,
                       partition_by=["column:kind", "time:ts:day"], store=s)
    assert rep.objects_written == 3
    keys = sorted(k for k in s.buckets["bkt"] if k.endswith(".pb"))
    assert keys == ["lab/k0/date=2025-01-03/2_1735898400.pb", "lab/k1/date=2025-01-01/3_1735725600.pb",
                    "lab/k1/date=2025-01-02/1_1735812000.pb"]
    proto = proto_schema("t", open_table(str(db), "t").schema)
    msg = proto.message_class.FromString(s.buckets["bkt"]["lab/k1/date=2025-01-02/1_1735812000.pb"].body)
    assert msg.id == 1 and msg.kind == "k1"
    with pytest.raises(UsageError, match="time:"):
        export_table(str(db), "t", "s3://bkt/lab2", CONFIG, one_object_per_row=True, store=s)


def test_stop_request_finishes_in_flight_batches_and_saves_the_checkpoint(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", list(range(1, 1001)))
    stop = threading.Event()

    def on_event(e: Any) -> None:
        if isinstance(e, FileDone):
            stop.set()

    s = store()
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, subscribers=[on_event], stop=stop,
                       store=s)
    assert rep.stopped and rep.checkpoint is not None and rep.checkpoint < 1000 and rep.checkpoint % 100 == 0
    assert ids_in(data_objects(s)) == list(range(1, rep.checkpoint + 1))
    rest = export_table(str(db), "t", "s3://bkt/p", CONFIG, batch_rows=100, store=s)
    assert rest.checkpoint == 1000 and ids_in(data_objects(s)) == list(range(1, 1001))


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    db = make_db(tmp_path / "d.db", [1])
    s = store()
    for kwargs in ({"batch_rows": 0}, {"format": "csv"}, {"partition_by": ["column:nope"]},
                   {"cursor_column": "nope"}):
        with pytest.raises(UsageError):
            export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s, **kwargs)
    with pytest.raises(Exception, match="no such SQLite file"):
        export_table(str(tmp_path / "missing.db"), "t", "s3://bkt/p", CONFIG, store=s)
