"""Issue 25: values that changed silently. Every exported value reads back equal to the source, or its
row is in the dead-letter queue naming the column and why; on SQLite natively and through a
SQLAlchemy URL (``sqlite+pysqlite:///``), in Parquet and JSON Lines."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from s3pump.config import TransferConfig
from s3pump.jobs.export import export_table
from s3pump.reports import ExportReport
from s3pump.store.memory import MemoryStore

CONFIG = TransferConfig(max_attempts=1, backoff_base_s=0.0)
READERS = ["native", "sqlalchemy"]
FORMATS = ["parquet", "jsonl"]


def make(tmp_path: Path, ddl: str, rows: list[tuple[Any, ...]], *, extra: str = "") -> Path:
    path = tmp_path / "d.db"
    conn = sqlite3.connect(path)
    conn.execute(ddl)
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        conn.executemany(f"INSERT INTO t VALUES ({marks})", rows)
    if extra:
        conn.executescript(extra)
    conn.commit()
    conn.close()
    return path


def db_arg(path: Path, reader: str) -> str:
    if reader == "sqlalchemy":
        pytest.importorskip("sqlalchemy")
        return f"sqlite+pysqlite:///{path}"
    return str(path)


def export(tmp_path: Path, db: Path, reader: str, fmt: str, table: str = "t", s: MemoryStore | None = None,
           **kw: Any) -> tuple[ExportReport, MemoryStore]:
    if s is None:
        s = MemoryStore()
        s.create_bucket("bkt")
    rep = export_table(db_arg(db, reader), table, "s3://bkt/p", CONFIG, format=fmt, dlq=str(tmp_path / "q"),
                       store=s, **kw)
    return rep, s


def exported(s: MemoryStore, fmt: str, key: str = "id", prefix: str = "p/t/") -> dict[Any, dict[str, Any]]:
    """Every exported row (by its cursor value) as read back: pyarrow for Parquet, json for JSON Lines."""
    out: dict[Any, dict[str, Any]] = {}
    for k, o in s.buckets["bkt"].items():
        if not k.startswith(prefix):
            continue
        if fmt == "parquet":
            rows = pq.read_table(io.BytesIO(o.body)).to_pylist()
        else:
            rows = [json.loads(line) for line in gzip.decompress(o.body).decode().splitlines()]
        for r in rows:
            assert r[key] not in out, f"row {r[key]} stored twice"
            out[r[key]] = r
    return out


def dead(tmp_path: Path) -> dict[Any, str]:
    """The dead-letter queue's rows: cursor value -> error."""
    out: dict[Any, str] = {}
    for f in (tmp_path / "q").rglob("rows-*.json"):
        for r in json.loads(f.read_text())["rows"]:
            out[r["cursor"]] = r["error"]
    return out


def check(tmp_path: Path, s: MemoryStore, fmt: str, column: str, want: dict[Any, Any],
          bad: dict[Any, str], json_form: Any = None) -> None:
    """Rows ``want`` (id -> value of ``column``) are exported with exactly that value (and type); rows
    ``bad`` (id -> a word of the reason) are in the dead-letter queue naming ``column``; nothing else."""
    got = exported(s, fmt)
    errors = dead(tmp_path)
    assert sorted(got) == sorted(want), (got, errors)
    for i, v in want.items():
        value = got[i][column]
        expected = json_form(v) if fmt == "jsonl" and json_form and v is not None else v
        assert value == expected and type(value) is type(expected), (i, value, expected)
    assert sorted(errors) == sorted(bad), errors
    for i, word in bad.items():
        assert f"column {column}:" in errors[i] and word in errors[i], (i, errors[i])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reader", READERS)
def test_a_real_in_an_integer_column_is_dead_lettered_never_truncated(tmp_path: Path, reader: str,
                                                                      fmt: str) -> None:
    db = make(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)", [
        (1, 5), (2, 3.7), (3, -2.5), (4, 3.0), (5, 1e19), (6, "99999999999999999999"), (7, 2**63 - 1),
        (8, None), (9, -(2**63)), (10, "-1e300"), (11, 0.5)])
    rep, s = export(tmp_path, db, reader, fmt)
    check(tmp_path, s, fmt, "n", {1: 5, 4: 3, 7: 2**63 - 1, 8: None, 9: -(2**63)},
          {2: "truncate", 3: "truncate", 5: "int64 range", 6: "int64 range", 10: "int64 range", 11: "truncate"})
    assert rep.rows_failed == 6 and rep.rows_exported == 5


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reader", READERS)
def test_only_0_1_true_false_are_booleans(tmp_path: Path, reader: str, fmt: str) -> None:
    db = make(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BOOLEAN)", [
        (1, 0), (2, 1), (3, 2), (4, -1), (5, "false"), (6, "TRUE"), (7, "yes"), (8, None), (9, 0.5), (10, ""),
        *[(i, i % 2) for i in range(11, 40)]])  # batches of 0/1 only (the one-call path)
    _rep, s = export(tmp_path, db, reader, fmt, batch_rows=10)
    check(tmp_path, s, fmt, "b", {1: False, 2: True, 5: False, 6: True, 8: None,
                                  **{i: bool(i % 2) for i in range(11, 40)}},
          {3: "not a boolean", 4: "not a boolean", 7: "not a boolean", 9: "not a boolean", 10: "not a boolean"})


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reader", READERS)
def test_out_of_range_and_odd_values_of_every_type_are_dead_lettered_never_changed(
        tmp_path: Path, reader: str, fmt: str) -> None:
    db = make(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, price NUMERIC(5,2), x NUMERIC, ts DATETIME, "
              "day DATE)", [
                  (1, 123.45, 1.5, "2025-01-02 03:04:05", "2025-01-02"),
                  (2, 12345.67, 2.5, "2025-01-02 03:04:05", "2025-01-02"),  # 7 digits > 5
                  (3, "abc", 2.5, "2025-01-02 03:04:05", "2025-01-02"),  # text that is no number
                  (4, "1.25", 2**53 + 1, "2025-01-02 03:04:05", "2025-01-02"),  # no exact double
                  (5, 1, 2**53, 1735787045, "2025-01-02"),  # Unix seconds in a DATETIME
                  (6, 1, 1.0, "2025-01-02T03:04:05+02:00", 1735776000),  # midnight in Unix seconds
                  (7, 1, 1.0, "2025-01-02 03:04:05", 1735787045),  # a DATE cannot hold 03:04:05
                  (8, 1, "x", "2025-01-02 03:04:05", "2025-01-02"),  # text in a NUMERIC column
                  (9, 1, 1.0, "yesterday", "2025-01-02"),
              ])
    _rep, s = export(tmp_path, db, reader, fmt)
    got, errors = exported(s, fmt), dead(tmp_path)
    assert sorted(got) == [1, 5, 6]
    assert sorted(errors) == [2, 3, 4, 7, 8, 9], errors
    for i, column in {2: "price", 3: "price", 4: "x", 7: "day", 8: "x", 9: "ts"}.items():
        assert f"column {column}:" in errors[i], errors[i]
    assert "more than 5 digits" in errors[2] and "exact" in errors[4]
    assert "not an ISO 8601" in errors[9]
    if fmt == "parquet":
        assert got[1]["price"] == decimal.Decimal("123.45") and got[5]["x"] == float(2**53)
        assert got[5]["ts"] == dt.datetime(2025, 1, 2, 3, 4, 5) and got[6]["ts"] == dt.datetime(2025, 1, 2, 1, 4, 5)
        assert got[6]["day"] == dt.date(2025, 1, 2)
    else:
        assert got[1]["price"] == "123.45" and got[5]["x"] == float(2**53)
        assert got[5]["ts"] == "2025-01-02T03:04:05" and got[6]["ts"] == "2025-01-02T01:04:05"
        assert got[6]["day"] == "2025-01-02"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reader", READERS)
def test_untyped_columns_export_with_the_types_of_their_values(tmp_path: Path, reader: str, fmt: str) -> None:
    db = make(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, n, raw, f, name)",
              [(i, i * 10, bytes([i]), i / 2, f"n{i}") for i in range(1, 21)] + [(21, "text", b"\x00", 1, "x")])
    _rep, s = export(tmp_path, db, reader, fmt)
    got, errors = exported(s, fmt), dead(tmp_path)
    assert sorted(got) == list(range(1, 21)) and sorted(errors) == [21], errors
    assert "column n:" in errors[21]
    for i in range(1, 21):
        assert got[i]["n"] == i * 10 and type(got[i]["n"]) is int
        assert got[i]["f"] == i / 2 and type(got[i]["f"]) is float
        assert got[i]["name"] == f"n{i}"
        assert got[i]["raw"] == (bytes([i]) if fmt == "parquet" else __import__("base64").b64encode(
            bytes([i])).decode())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reader", READERS)
def test_a_view_with_computed_columns_exports_with_the_types_of_their_values(
        tmp_path: Path, reader: str, fmt: str) -> None:
    db = make(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, price REAL, qty INTEGER)",
              [(i, "x" * i, i + 0.25, i) for i in range(1, 31)],
              extra="CREATE VIEW v AS SELECT id, length(name) AS len, price * qty AS total, upper(name) AS up, "
                    "name FROM t;")
    rep, s = export(tmp_path, db, reader, fmt, table="v", cursor_column="id", batch_rows=7)
    assert rep.rows_failed == 0 and rep.rows_exported == 30, dead(tmp_path)
    got = exported(s, fmt, prefix="p/v/")
    for i in range(1, 31):
        assert got[i] == {"id": i, "len": i, "total": (i + 0.25) * i, "up": "X" * i, "name": "x" * i}
        assert type(got[i]["len"]) is int and type(got[i]["total"]) is float


@pytest.mark.parametrize("reader", READERS)
def test_time_partition_on_text_dead_letters_non_dates_and_takes_mixed_zones(tmp_path: Path, reader: str) -> None:
    db = make(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT)", [
        (1, "2025-01-01 10:00:00"), (2, "2025-01-02T23:30:00+02:00"), (3, "not a date"), (4, None),
        (5, "2025-13-01"), (6, "2025-01-03"), (7, "2025-01-02T01:00:00Z")])
    _rep, s = export(tmp_path, db, reader, "parquet", partition_by=["time:at:day"], batch_rows=100)
    keys = sorted(k for k in s.buckets["bkt"] if k.startswith("p/t/"))
    by_key = {k: pq.read_table(io.BytesIO(s.buckets["bkt"][k].body))["id"].to_pylist() for k in keys}
    assert by_key == {
        "p/t/year=2025/month=01/day=01/part-1-7.parquet": [1],
        "p/t/year=2025/month=01/day=02/part-1-7.parquet": [2, 7],  # 23:30+02:00 is 21:30 UTC
        "p/t/year=2025/month=01/day=03/part-1-7.parquet": [6],
        "p/t/year=__HIVE_DEFAULT_PARTITION__/month=__HIVE_DEFAULT_PARTITION__/day=__HIVE_DEFAULT_PARTITION__/"
        "part-1-7.parquet": [4],
    }
    errors = dead(tmp_path)
    assert sorted(errors) == [3, 5] and all("column at:" in e and "not an ISO 8601" in e for e in errors.values())
    # the text is exported as it is
    assert exported(s, "parquet")[2]["at"] == "2025-01-02T23:30:00+02:00"
    # a rerun after new rows (one more bad one) never stops at a batch
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(8, "2025-02-01 00:00:00"), (9, "02/01/2025")])
    conn.commit()
    conn.close()
    again, _ = export(tmp_path, db, reader, "parquet", s=s, partition_by=["time:at:day"], batch_rows=100)
    assert again.rows_exported == 1 and again.rows_failed == 1 and again.checkpoint == 9
    assert sorted(dead(tmp_path)) == [3, 5, 9]


def test_the_sqlalchemy_reader_gives_the_driver_values_as_they_are(tmp_path: Path) -> None:
    """SQLAlchemy's result processors changed or refused values: ``bool('false')`` is True, a DATETIME
    holding an integer or a NUMERIC holding text raised a traceback."""
    pytest.importorskip("sqlalchemy")
    from s3pump.sources.readers import open_table

    db = make(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BOOLEAN, ts DATETIME, n NUMERIC(10,2), u)",
              [(1, "false", 1735787045, "abc", b"\x01"), (2, 1, "2025-01-02 03:04:05", 1.5, 7)])
    native, sa = open_table(str(db), "t"), open_table(f"sqlite+pysqlite:///{db}", "t")
    try:
        assert native.schema == sa.schema
        a, b = native.read_after(None, 10), sa.read_after(None, 10)
        assert a is not None and b is not None and list(a.rows) == list(b.rows)
        assert list(b.rows) == [(1, "false", 1735787045, "abc", b"\x01"), (2, 1, "2025-01-02 03:04:05", 1.5, 7)]
    finally:
        native.close()
        sa.close()


def test_values_of_other_drivers_convert_exactly_or_not_at_all() -> None:
    """What other databases' drivers hand over (``Decimal`` for NUMERIC, Python booleans): the same rules."""
    import pyarrow as pa

    from s3pump.export.exact import exact_array

    assert exact_array([decimal.Decimal("3"), 4, None], pa.int64()).to_pylist() == [3, 4, None]
    assert exact_array([decimal.Decimal("0.1"), 2], pa.float64()).to_pylist() == [0.1, 2.0]
    assert exact_array([True, False, 1, "False"], pa.bool_()).to_pylist() == [True, False, True, False]
    for values, typ, words in (([decimal.Decimal("3.5")], pa.int64(), "truncate"),
                               ([2**63], pa.int64(), "int64 range"),
                               ([decimal.Decimal("0.12345678901234567890")], pa.float64(), "no exact double"),
                               ([float("nan")], pa.int64(), "finite"),
                               (["1"], pa.float64(), "not a number"),
                               ([2], pa.bool_(), "not a boolean")):
        with pytest.raises(ValueError, match=words):
            exact_array(values, typ)


@pytest.mark.parametrize("reader", READERS)
def test_time_partition_on_unix_time_out_of_range_is_dead_lettered_not_a_stopped_run(tmp_path: Path,
                                                                                     reader: str) -> None:
    db = make(tmp_path, "CREATE TABLE t (id INTEGER PRIMARY KEY, at INTEGER)",
              [(1, 1735787045), (2, 10**15), (3, None), (4, -(10**17))])
    rep, s = export(tmp_path, db, reader, "parquet", partition_by=["time:at:day:epoch-s"])
    assert rep.rows_exported == 2 and rep.checkpoint == 4
    assert sorted(exported(s, "parquet")) == [1, 3]
    errors = dead(tmp_path)
    assert sorted(errors) == [2, 4] and all("column at:" in e and "out of range" in e for e in errors.values())
