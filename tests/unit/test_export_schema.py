"""Issue 25: a schema change between incremental runs is detected (exit 2, one line naming the column),
or with ``--schema-evolution`` written under a new schema version, readable per version."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from s3pump.config import TransferConfig
from s3pump.errors import UsageError
from s3pump.export.protogen import proto_schema, read_delimited
from s3pump.jobs.export import export_table
from s3pump.store.memory import MemoryStore

CONFIG = TransferConfig(max_attempts=1, backoff_base_s=0.0)

#: change -> (SQL that makes it, the column it names, words of the message)
CHANGES = {
    "added": ("ALTER TABLE t ADD COLUMN extra TEXT", "extra", "was added"),
    "dropped": ("ALTER TABLE t DROP COLUMN note", "note", "was dropped"),
    "retyped": ("CREATE TABLE t2 (id INTEGER PRIMARY KEY, qty REAL, note TEXT); INSERT INTO t2 SELECT * FROM t; "
                "DROP TABLE t; ALTER TABLE t2 RENAME TO t", "qty", "was retyped from int64"),
}


def make(path: Path, ids: range) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, qty INTEGER, note TEXT)")
    conn.executemany("INSERT INTO t (id, qty, note) VALUES (?, ?, ?)", [(i, i * 2, f"n{i}") for i in ids])
    conn.commit()
    conn.close()
    return path


def change(path: Path, sql: str, ids: range) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(sql)
    conn.executemany("INSERT INTO t (id, qty) VALUES (?, ?)", [(i, i * 2) for i in ids])
    conn.commit()
    conn.close()


def db_arg(path: Path, reader: str) -> str:
    if reader == "sqlalchemy":
        pytest.importorskip("sqlalchemy")
        return f"sqlite+pysqlite:///{path}"
    return str(path)


def bucket() -> MemoryStore:
    s = MemoryStore()
    s.create_bucket("bkt")
    return s


def snapshot(s: MemoryStore) -> dict[str, bytes]:
    return {k: o.body for k, o in s.buckets["bkt"].items() if not k.startswith("p/_s3pump/")}


@pytest.mark.parametrize("fmt", ["parquet", "protobuf"])
@pytest.mark.parametrize("reader", ["native", "sqlalchemy"])
@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_a_schema_change_between_runs_stops_with_one_line_naming_the_column(
        tmp_path: Path, kind: str, reader: str, fmt: str) -> None:
    db = make(tmp_path / "d.db", range(1, 11))
    s = bucket()
    export_table(db_arg(db, reader), "t", "s3://bkt/p", CONFIG, format=fmt, store=s)
    before = snapshot(s)
    sql, column, words = CHANGES[kind]
    change(db, sql, range(11, 21))
    with pytest.raises(UsageError) as err:
        export_table(db_arg(db, reader), "t", "s3://bkt/p", CONFIG, format=fmt, store=s)
    text = str(err.value)
    assert len(text.splitlines()) == 1 and f"column {column} {words}" in text, text
    assert "--schema-evolution" in text and "--from-start" in text
    assert snapshot(s) == before  # no object written, the .proto not overwritten
    assert json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)["cursor"] == 10
    # and so on every rerun: nothing moves until the user decides
    with pytest.raises(UsageError, match=f"column {column} {words}"):
        export_table(db_arg(db, reader), "t", "s3://bkt/p", CONFIG, format=fmt, store=s)


def test_the_schema_is_recorded_and_a_declared_type_of_the_same_arrow_type_is_no_change(tmp_path: Path) -> None:
    db = make(tmp_path / "d.db", range(1, 11))
    s = bucket()
    export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s)
    change(db, "CREATE TABLE t2 (id INTEGER PRIMARY KEY, qty BIGINT, note VARCHAR(30)); "
               "INSERT INTO t2 SELECT * FROM t; DROP TABLE t; ALTER TABLE t2 RENAME TO t", range(11, 21))
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s)
    assert rep.ok and rep.checkpoint == 20 and "p/t/part-11-20.parquet" in s.buckets["bkt"]
    cp = json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)
    assert cp["schema_version"] == 1 and cp["schemas"] == {"1": [
        ["id", "int64", False, "INTEGER"], ["qty", "int64", True, "INTEGER"], ["note", "string", True, "TEXT"]]}


def _rows_of(body: bytes, fmt: str, schema: Any = None) -> list[dict[str, Any]]:
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body)).to_pylist()
    cls = schema.message_class
    out = []
    for rec in read_delimited(body):
        m = cls()
        m.ParseFromString(rec)
        out.append({f.name: v for f, v in m.ListFields()})
    return out


@pytest.mark.parametrize("fmt", ["parquet", "protobuf"])
@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_schema_evolution_writes_the_new_objects_under_a_new_version_readable_per_version(
        tmp_path: Path, kind: str, fmt: str) -> None:
    db = make(tmp_path / "d.db", range(1, 11))
    s = bucket()
    export_table(str(db), "t", "s3://bkt/p", CONFIG, format=fmt, store=s)
    ext = "parquet" if fmt == "parquet" else "pb"
    v1_proto = s.buckets["bkt"].get("p/_schema/t.proto")
    sql, column, _ = CHANGES[kind]
    change(db, sql, range(11, 21))
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, format=fmt, store=s, schema_evolution=True)
    assert rep.ok and rep.checkpoint == 20
    keys = sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/"))
    assert keys == [f"p/t/_v2/part-11-20.{ext}", f"p/t/part-1-10.{ext}"]
    cp = json.loads(s.buckets["bkt"]["p/_s3pump/state/t.json"].body)
    assert cp["schema_version"] == 2 and sorted(cp["schemas"]) == ["1", "2"]
    v1_cols = [c[0] for c in cp["schemas"]["1"]]
    v2_cols = [c[0] for c in cp["schemas"]["2"]]
    assert v1_cols == ["id", "qty", "note"] and (column in v2_cols) == (kind != "dropped")
    schemas = {}
    if fmt == "protobuf":  # one .proto per version; version 1's is the one the first run wrote
        assert s.buckets["bkt"]["p/_schema/t.proto"].body == v1_proto.body  # type: ignore[union-attr]
        assert "p/_schema/t.v2.proto" in s.buckets["bkt"]
        for v in ("1", "2"):
            sch = pa.schema([pa.field(n, pa.int64() if t == "int64" else pa.float64() if t == "double"
                             else pa.string(), nullable) for n, t, nullable, _d in cp["schemas"][v]])
            schemas[v] = proto_schema("t", sch)
        assert schemas["2"].proto_text.split("\n", 1)[1] == \
            s.buckets["bkt"]["p/_schema/t.v2.proto"].body.decode().split("\n", 1)[1]
    old = _rows_of(s.buckets["bkt"][f"p/t/part-1-10.{ext}"].body, fmt, schemas.get("1"))
    new = _rows_of(s.buckets["bkt"][f"p/t/_v2/part-11-20.{ext}"].body, fmt, schemas.get("2"))
    assert [r["id"] for r in old] == list(range(1, 11)) and [r["id"] for r in new] == list(range(11, 21))
    assert all(r["qty"] == r["id"] * 2 and r["note"] == f"n{r['id']}" for r in old)  # version 1 keeps its values
    assert all(r["qty"] == r["id"] * 2 for r in new)
    if fmt == "parquet":
        assert pq.read_table(io.BytesIO(s.buckets["bkt"][f"p/t/_v2/part-11-20.{ext}"].body)).column_names == v2_cols
    # the next run, unchanged, goes on in version 2 without the flag
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO t (id, qty) VALUES (21, 42)")
    conn.commit()
    conn.close()
    again = export_table(str(db), "t", "s3://bkt/p", CONFIG, format=fmt, store=s)
    assert again.ok and f"p/t/_v2/part-21-21.{ext}" in s.buckets["bkt"]


def test_schema_evolution_of_an_unfinished_cut_stores_its_rows_once(tmp_path: Path) -> None:
    """A run killed after some objects of a cut, then the table changes: the cut is exported again in the
    new version, and its objects of the old version are deleted (a row is never in two versions)."""
    db = make(tmp_path / "d.db", range(1, 21))
    s = bucket()
    export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s, batch_rows=10)
    cp_key = "p/_s3pump/state/t.json"
    cp = json.loads(s.buckets["bkt"][cp_key].body)
    cp["cursor"], cp["batches"] = 10, [[10, 11, 20]]  # as a kill after the cut's object, before its checkpoint
    s.buckets["bkt"][cp_key].body = json.dumps(cp).encode()
    change(db, CHANGES["added"][0], range(21, 23))
    export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s, batch_rows=10, schema_evolution=True)
    keys = sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/"))
    assert keys == ["p/t/_v2/part-11-20.parquet", "p/t/_v2/part-21-22.parquet", "p/t/part-1-10.parquet"]


def test_a_view_whose_computed_column_changes_type_is_a_schema_change(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER); "
                       "INSERT INTO t VALUES (1, 2, 3), (2, 4, 5); "
                       "CREATE VIEW v AS SELECT id, a * b AS product FROM t;")
    conn.commit()
    s = bucket()
    assert export_table(str(path), "v", "s3://bkt/p", CONFIG, store=s, cursor_column="id").rows_exported == 2
    conn.execute("INSERT INTO t VALUES (3, 1, 0.5)")  # an INTEGER column keeps 0.5 as REAL: a * b is REAL now
    conn.commit()
    conn.close()
    with pytest.raises(UsageError, match=r"column product was retyped from int64 \(no declared type, inferred "
                                         r"from its values\) to double"):
        export_table(str(path), "v", "s3://bkt/p", CONFIG, store=s, cursor_column="id")


def test_a_dead_letter_entry_replayed_after_schema_evolution_stores_its_batch_in_one_version(tmp_path: Path) -> None:
    db = make(tmp_path / "d.db", range(1, 11))
    conn = sqlite3.connect(db)
    conn.execute("UPDATE t SET qty = 2.5 WHERE id = 4")  # a bad row: its batch-mates go to part-1-10
    conn.commit()
    conn.close()
    s, dlq = bucket(), str(tmp_path / "q")
    assert export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s, dlq=dlq).rows_failed == 1
    change(db, CHANGES["added"][0] + "; UPDATE t SET qty = 8 WHERE id = 4", range(11, 13))
    export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s, dlq=dlq, schema_evolution=True)
    rep = export_table(str(db), "t", "s3://bkt/p", CONFIG, store=s, dlq=dlq, replay_dlq=True)
    assert rep.replayed_entries == 1
    keys = sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/"))
    assert keys == ["p/t/_v2/part-1-10.parquet", "p/t/_v2/part-11-12.parquet"]
    ids = pq.read_table(io.BytesIO(s.buckets["bkt"]["p/t/_v2/part-1-10.parquet"].body))["id"].to_pylist()
    assert ids == list(range(1, 11))
