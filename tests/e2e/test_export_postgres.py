"""``s3pump export postgresql://…`` (issue 25): a real PostgreSQL 18 (tests/pgserver.py) read through
ADBC, exported by the real CLI to SeaweedFS, every value compared with what psycopg reads.

How the two sides are compared, per type (both normalized explicitly to one Python value):

====================  =============================  ======================================  =====================
column                psycopg gives                  Parquet gives                           JSON Lines gives
====================  =============================  ======================================  =====================
int2/int4/int8, bool  int, bool                      the same                                the same
real                  float (parsed from text)       float of the float32                    the double of it
                      → both as the float32 they are (struct 'f')
double                float                          float                                   float
numeric(p,s), bare    Decimal                        Decimal (bare: scale of the batch, or   decimal string
numeric                                              the text when a value does not fit)     → Decimal
money                 '$1,234.56' (lc_monetary C)    Decimal                                 decimal string
                      → Decimal without '$' and ','
text/varchar/enum     str                            str                                     str
bytea                 bytes                          bytes                                   base64 → bytes
date, timestamp       date, datetime                 the same                                ISO 8601 → the same
timestamptz           aware datetime                 aware datetime (UTC)                    ISO 8601 with +00:00
time                  time                           time                                    ISO 8601 → time
interval              (months, days, µs) from        struct{months, days, nanoseconds}       [months, days, ns]
                      extract() of its fields
                      (psycopg's timedelta folds months into 30-day and years into 365-day spans)
uuid                  UUID → str                     canonical str                           str
json, jsonb           parsed                         text → json.loads                       text → json.loads
int[], text[]         list                           list                                    list
inet, cidr            ipaddress object → str         PostgreSQL's text                       str
====================  =============================  ======================================  =====================
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import gzip
import hashlib
import io
import json
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli

pytestmark = pytest.mark.e2e

DDL = """
DROP TABLE IF EXISTS alltypes; DROP TYPE IF EXISTS mood CASCADE;
CREATE TYPE mood AS ENUM ('sad', 'happy', 'ünïcode');
CREATE TABLE alltypes (
  id bigserial PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, b boolean, f4 real, f8 double precision,
  n102 numeric(10,2), n numeric, n40 numeric(40,5), t text, vc varchar(20), by bytea, d date, ts timestamp,
  tstz timestamptz, tm time, iv interval, u uuid, js json, jb jsonb, ai integer[], at text[],
  ip inet, net cidr, mo money, en mood)
"""
COLUMNS = ["i2", "i4", "i8", "b", "f4", "f8", "n102", "n", "n40", "t", "vc", "by", "d", "ts", "tstz", "tm", "iv", "u",
           "js", "jb", "ai", "at", "ip", "net", "mo", "en"]
ROWS = [
    # 1 typical values, unicode
    "(1, 2, 3, true, 1.5, 2.25, 1.98, 3.14159, 12.5, 'héllo wörld ✓', 'ab', '\\x00ff', '2024-03-10', "
    "'2024-03-10 02:30:00.123456', '2024-03-10 01:59:59.999999-05', '12:34:56.789', '1 year 2 mons 3 days 04:05:06', "
    "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{\"a\": \"é\", \"n\": 1.0}', '{\"b\": [1, \"ü\", null]}', "
    "'{1,2,3}', '{\"x\",\"ÿ\"}', '192.168.0.1/24', '10.0.0.0/8', '$1,234.56', 'happy')",
    # 2 every column NULL
    "(" + ", ".join(["NULL"] * len(COLUMNS)) + ")",
    # 3 edges: 30-digit numerics, negative interval, DST, empty arrays
    "(-32768, -2147483648, -9223372036854775808, false, -0.1, 1e-300, -99999999.99, "
    "123456789012345678901234567890, -12345678901234567890123456789012345.12345, '', '', '', '0001-01-01', "
    "'9999-12-31 23:59:59.999999', '2024-03-10 03:00:00-04', '00:00:00', '-1 year -2 mons -3 days -04:05:06.000007', "
    "'00000000-0000-0000-0000-000000000000', '[]', '{}', '{}', '{}', '::1', '2001:db8::/32', '-$0.01', 'sad')",
    # 4 edges: arrays with NULLs, jsonb with unicode, fall-back DST, bare numeric with many places
    "(32767, 2147483647, 9223372036854775807, true, 3.4e38, -1.7976931348623157e308, 0.01, "
    "0.000000000000000000000000000001, 0.00001, 'quote \" backslash \\\\ newline \n tab \t', 'ünï', '\\x', "
    "'2024-11-03', '1999-12-31 23:59:59', '2024-11-03 01:30:00-05', '23:59:59.999999', '-00:00:00.000001', "
    "'ffffffff-ffff-ffff-ffff-ffffffffffff', '\"ñ\"', '{\"k\": \"漢字 😀\", \"z\": {\"y\": [true]}}', "
    "'{NULL,-1,NULL}', '{NULL,\"\",\"a,b\"}', '10.0.0.1', '192.168.0.0/16', '$0.00', 'ünïcode')",
    # 5 a bare numeric of 40 digits: its batch keeps the decimal text
    "(0, 0, 0, false, 0, 0, 0, 1234567890123456789012345678901234567890.5, 0, 'x', 'y', '\\x01', '2000-02-29', "
    "'2000-02-29 12:00:00', '2000-02-29 12:00:00+00', '01:02:03', '0 seconds', "
    "'12345678-1234-5678-1234-567812345678', 'null', 'null', '{0}', '{\"\"}', '0.0.0.0/0', '0.0.0.0/0', '$1', 'sad')",
]
# rows that no export format holds exactly (the documented rule): the dead-letter queue
BAD = {
    6: "(ts) VALUES ('infinity')",
    7: "(d) VALUES ('0044-03-15 BC')",
    8: "(tstz) VALUES ('-infinity')",
    9: "(tstz, n) VALUES ('0100-01-01 00:00:00+00 BC', 1)",
    10: "(n102) VALUES ('NaN')",  # read as a scaled int8 (pg_types): the check still sees the NaN
}


def make_table(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DDL)
        conn.execute("SET lc_monetary = 'C'")
        for row in ROWS:
            conn.execute(f"INSERT INTO alltypes ({', '.join(COLUMNS)}) VALUES {row}".replace("%", "%%"))
        for rest in BAD.values():
            conn.execute(f"INSERT INTO alltypes {rest}")


def f32(x: float) -> float:
    return float(struct.unpack("f", struct.pack("f", x))[0])


def reference(url: str) -> dict[int, dict[str, Any]]:
    """Every good row as psycopg reads it, normalized (module docstring)."""
    import psycopg

    sql = (f"SELECT id, {', '.join(COLUMNS)}, (extract(year FROM iv) * 12 + extract(month FROM iv))::int, "
           "extract(day FROM iv)::int, ((extract(hour FROM iv) * 60 + extract(minute FROM iv)) * 60000000 "
           "+ extract(microseconds FROM iv))::int8 FROM alltypes WHERE id <= 5 ORDER BY id")
    out: dict[int, dict[str, Any]] = {}
    with psycopg.connect(url) as conn:
        for rec in conn.execute(sql).fetchall():
            row = dict(zip(["id", *COLUMNS], rec[:-3], strict=True))
            months, days, micros = rec[-3:]
            row["iv"] = None if row["iv"] is None else (months, days, micros)
            row["f4"] = None if row["f4"] is None else f32(row["f4"])
            row["u"] = None if row["u"] is None else str(row["u"])
            for k in ("js", "jb"):
                row[k] = row[k] if row[k] is None else json.loads(json.dumps(row[k]))
            for k in ("ip", "net"):
                row[k] = None if row[k] is None else str(row[k])
            if row["mo"] is not None:
                row["mo"] = decimal.Decimal(row["mo"].replace("$", "").replace(",", ""))
            out[row.pop("id")] = row
    return out


def normalize_parquet(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    if row["iv"] is not None:  # Parquet has no such type: a struct of the three fields
        months, days, ns = row["iv"]["months"], row["iv"]["days"], row["iv"]["nanoseconds"]
        assert ns % 1000 == 0
        row["iv"] = (months, days, ns // 1000)
    for k in ("n", "mo"):  # bare numerics: decimal128(38, s) for a batch that fits, else text
        if isinstance(row[k], str):
            row[k] = decimal.Decimal(row[k])
    for k in ("js", "jb"):
        row[k] = None if row[k] is None else json.loads(row[k])
    if row["f4"] is not None:
        row["f4"] = f32(row["f4"])
    return row


def normalize_jsonl(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    for k in ("n102", "n", "n40", "mo"):
        row[k] = None if row[k] is None else decimal.Decimal(row[k])
    parse = {"by": base64.b64decode, "d": dt.date.fromisoformat, "ts": dt.datetime.fromisoformat,
             "tstz": dt.datetime.fromisoformat, "tm": dt.time.fromisoformat}
    for k, f in parse.items():
        row[k] = None if row[k] is None else f(row[k])
    if row["tstz"] is not None:
        assert row["tstz"].utcoffset() == dt.timedelta(0)
    if row["iv"] is not None:
        months, days, ns = row["iv"]
        row["iv"] = (months, days, ns // 1000)
    for k in ("js", "jb"):
        row[k] = None if row[k] is None else json.loads(row[k])
    if row["f4"] is not None:
        row["f4"] = f32(row["f4"])
    return row


def stored_rows(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in sorted(list_all(client, bucket, prefix)):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.endswith(".parquet"):
            rows += [normalize_parquet(r) for r in pq.read_table(io.BytesIO(body)).to_pylist()]
        elif key.endswith(".jsonl.gz"):
            rows += [normalize_jsonl(json.loads(line)) for line in gzip.decompress(body).decode().splitlines()]
    return rows


def dlq_rows(client: Any, bucket: str, prefix: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for key in list_all(client, bucket, prefix):
        entry = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        out.update({r["cursor"]: r["error"] for r in entry["rows"]})
    return out


@pytest.mark.parametrize(("fmt", "scheme"), [("parquet", "postgresql"), ("jsonl", "postgresql"),
                                             ("parquet", "postgresql+psycopg2")])
def test_every_type_exports_exactly_what_psycopg_reads(
    s3env: S3Env, bucket: str, state_dir: Path, pg_url: str, fmt: str, scheme: str
) -> None:
    """Also through SQLAlchemy's form of the URL (``postgresql+psycopg2://``): read by ADBC as well, not
    by the SQLAlchemy fallback that sent every uuid, jsonb and array row to the dead-letter queue."""
    make_table(pg_url)
    expected = reference(pg_url)
    env = s3env.env(state_dir)
    url = scheme + pg_url[pg_url.index("://"):]
    done = run_cli(["export", url, f"s3://{bucket}/x", "--table", "alltypes", "--format", fmt,
                    "--batch-rows", "3", "--json", "--no-progress"], env)
    # exit 1: the documented dead-letter rows, and only them (below)
    assert done.returncode == 1, done.stderr.decode() + done.stdout.decode()
    client = s3env.boto()
    got = stored_rows(client, bucket, "x/alltypes/")
    assert len(got) == len(expected), done.stdout.decode()[-3000:] + done.stderr.decode()
    for row in got:
        want = expected[row.pop("id")]
        for k in COLUMNS:
            assert row[k] == want[k], (k, row[k], want[k])
    bad = dlq_rows(client, bucket, "x/_dlq/")
    assert sorted(bad) == sorted(BAD)
    for key in list_all(client, bucket, "x/_dlq/"):  # each with the whole row, as the server's JSON
        for r in json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())["rows"]:
            values = r["values"] if isinstance(r["values"], dict) else json.loads(r["values"])
            assert values["id"] == r["cursor"] and set(values) == {"id", *COLUMNS}, r
            assert "\n" not in r["error"] and r["error"].startswith("column "), r
    assert "infinity" in bad[6] and "BC" in bad[7] and "infinity" in bad[8] and "BC" in bad[9] and "NaN" in bad[10]
    if fmt == "parquet":  # the declared types, from the catalog
        body = client.get_object(Bucket=bucket, Key="x/alltypes/part-1-3.parquet")["Body"].read()
        schema = pq.read_schema(io.BytesIO(body))
        assert schema.field("n102").type == pa.decimal128(10, 2)
        assert schema.field("n40").type == pa.decimal256(40, 5)
        assert schema.field("n").type == pa.decimal128(38, 5)  # the batch's largest scale
        assert schema.field("tstz").type == pa.timestamp("us", "UTC")
        assert schema.field("ts").type == pa.timestamp("us")
        assert schema.field("tm").type == pa.time64("us")
        assert schema.field("iv").type == pa.struct([("months", pa.int32()), ("days", pa.int32()),
                                                     ("nanoseconds", pa.int64())])
        assert schema.field("ai").type == pa.list_(pa.int32())
        assert schema.field("u").type == pa.string()


def _rows_table(url: str, n: int, start: int = 1) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if start == 1:
            conn.execute("DROP TABLE IF EXISTS events; CREATE TABLE events (id bigserial PRIMARY KEY, "
                         "at timestamptz NOT NULL, qty int, price numeric(10,2), name text, ref uuid, "
                         "tags text[], meta jsonb)")
        # uuid, text[] and jsonb: types the SQLAlchemy reader sent to the dead-letter queue
        conn.execute("INSERT INTO events (id, at, qty, price, name, ref, tags, meta) SELECT i, "
                     "timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute', i %% 5, i * 1.25, "
                     "'n' || i, md5(i::text)::uuid, ARRAY['t' || i, NULL], jsonb_build_object('i', i) "
                     "FROM generate_series(%s::int8, %s::int8) AS i", (start, start + n - 1))


def _stored_ids(client: Any, bucket: str, prefix: str) -> list[int]:
    """The ids of the rows stored under ``prefix``; each row's uuid, array and JSON checked too."""
    ids: list[int] = []
    for key in list_all(client, bucket, prefix):
        if key.endswith(".parquet"):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            for row in pq.read_table(io.BytesIO(body), columns=["id", "ref", "tags", "meta"]).to_pylist():
                i = row["id"]
                assert row["ref"] == str(uuid.UUID(hashlib.md5(str(i).encode()).hexdigest()))
                assert row["tags"] == [f"t{i}", None] and json.loads(row["meta"]) == {"i": i}
                ids.append(i)
    return ids


def test_incremental_export_reads_only_the_appended_rows(
    s3env: S3Env, bucket: str, state_dir: Path, pg_url: str
) -> None:
    _rows_table(pg_url, 25)
    env = s3env.env(state_dir)
    args = ["export", pg_url, f"s3://{bucket}/i", "--table", "events", "--batch-rows", "10", "--json",
            "--no-progress"]
    first = run_cli(args, env)
    assert first.returncode == 0, first.stderr.decode()
    client = s3env.boto()
    keys = set(list_all(client, bucket, "i/events/"))
    assert keys == {"i/events/part-1-10.parquet", "i/events/part-11-20.parquet", "i/events/part-21-25.parquet"}
    _rows_table(pg_url, 7, start=26)
    second = run_cli(args, env)
    assert second.returncode == 0, second.stderr.decode()
    summary = next(json.loads(x) for x in second.stdout.decode().splitlines() if '"summary"' in x)
    assert summary["rows_read"] == 7
    assert set(list_all(client, bucket, "i/events/")) - keys == {"i/events/part-26-32.parquet"}
    assert sorted(_stored_ids(client, bucket, "i/events/")) == list(range(1, 33))


def test_sigkill_after_a_committed_batch_then_rerun_stores_each_row_once(
    s3env: S3Env, bucket: str, state_dir: Path, pg_url: str
) -> None:
    """SIGKILL once the checkpoint holds at least one batch and more objects are being written, rows
    appended, rerun: every row of the table stored once."""
    _rows_table(pg_url, 300)
    client = s3env.boto()
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(delay_s={"PutObject": 0.03}), seed=0)
    proxy.start()
    env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url}
    args = [pg_url, f"s3://{bucket}/k", "--table", "events", "--batch-rows", "20", "--partition-by", "column:qty",
            "--no-progress"]

    def checkpoint() -> Any:
        try:
            body = client.get_object(Bucket=bucket, Key="k/_s3pump/state/events.json")["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return json.loads(body)["cursor"]

    def data_puts() -> int:
        return sum(1 for e in list(proxy.log) if e.type == "PutObject" and e.key.startswith("k/events/")
                   and e.status == 200)

    try:
        cli = subprocess.Popen([sys.executable, "-m", "s3pump", "export", *args, "--concurrency", "1"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while checkpoint() is None and time.monotonic() < deadline:  # a batch committed
            time.sleep(0.02)
        committed = data_puts()
        while data_puts() < committed + 2 and time.monotonic() < deadline:  # and the next one in flight
            time.sleep(0.002)
        assert cli.poll() is None, "the export finished before it could be killed"
        cli.send_signal(signal.SIGKILL)
        cli.wait()
        cursor = checkpoint()
        assert cursor is not None and cursor < 300
        _rows_table(pg_url, 13, start=301)
        done = run_cli(["export", *args, "--json"], env)
    finally:
        proxy.stop()
    assert done.returncode == 0, done.stderr.decode()
    ids = _stored_ids(client, bucket, "k/events/")
    assert sorted(ids) == list(range(1, 314)), f"twice: {sorted({i for i in ids if ids.count(i) > 1})}"
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_timestamptz_cursor_with_ties_and_time_partitions_stores_each_row_once(
    s3env: S3Env, bucket: str, state_dir: Path, pg_url: str
) -> None:
    """A ``timestamptz`` cursor (checkpointed as an aware datetime, bound as a parameter) whose values
    repeat across batch boundaries (each run of equal values stays in one batch), day partitions."""
    import psycopg

    def insert(first: int, last: int) -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("INSERT INTO ticks (id, at) SELECT i, timestamptz '2024-03-09 20:00:00-05' + "
                         "(i / 3) * interval '3 hours' FROM generate_series(%s::int8, %s::int8) AS i", (first, last))

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ticks; CREATE TABLE ticks (id int8 PRIMARY KEY, at timestamptz NOT NULL)")
    insert(1, 20)  # three rows per timestamp: batches of 4 end inside a run
    env = s3env.env(state_dir)
    args = ["export", pg_url, f"s3://{bucket}/c", "--table", "ticks", "--cursor-column", "at", "--batch-rows", "4",
            "--partition-by", "time:at:day", "--format", "jsonl", "--json", "--no-progress"]
    first = run_cli(args, env)
    assert first.returncode == 0, first.stderr.decode()
    insert(21, 29)
    second = run_cli(args, env)
    assert second.returncode == 0, second.stderr.decode()
    client = s3env.boto()
    rows = []
    for key in list_all(client, bucket, "c/ticks/"):
        day = key.split("/")[2:5]
        for line in gzip.decompress(client.get_object(Bucket=bucket, Key=key)["Body"].read()).splitlines():
            row = json.loads(line)
            at = dt.datetime.fromisoformat(row["at"])
            assert at.utcoffset() == dt.timedelta(0)  # timestamptz: an instant, in UTC (not a naive time)
            assert at == dt.datetime(2024, 3, 10, 1, tzinfo=dt.UTC) + (row["id"] // 3) * dt.timedelta(hours=3)
            assert [f"year={at:%Y}", f"month={at:%m}", f"day={at:%d}"] == day  # UTC days
            rows.append(row["id"])
    assert sorted(rows) == list(range(1, 30))


def test_dedup_rerun_writes_nothing_and_an_update_rewrites_only_its_object(
    s3env: S3Env, bucket: str, state_dir: Path, pg_url: str
) -> None:
    """``--dedup`` hashes the rows read straight into Arrow (uuid, array and JSON columns included):
    an unchanged table writes nothing; one updated row rewrites only its object."""
    import psycopg

    _rows_table(pg_url, 30)
    env = s3env.env(state_dir)
    args = ["export", pg_url, f"s3://{bucket}/d", "--table", "events", "--batch-rows", "10", "--dedup", "--json",
            "--no-progress"]
    first = run_cli(args, env)
    assert first.returncode == 0, first.stderr.decode()
    same = run_cli(args, env)
    assert same.returncode == 0, same.stderr.decode()
    rep = next(json.loads(x) for x in same.stdout.decode().splitlines() if '"summary"' in x)
    assert rep["objects_written"] == 0 and rep["objects_skipped"] == 3
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE events SET meta = '{\"i\": 15, \"changed\": true}' WHERE id = 15")
    again = run_cli(args, env)
    assert again.returncode == 0, again.stderr.decode()
    rep = next(json.loads(x) for x in again.stdout.decode().splitlines() if '"summary"' in x)
    assert rep["objects_written"] == 1 and rep["objects_skipped"] == 2
    client = s3env.boto()
    body = client.get_object(Bucket=bucket, Key="d/events/part-11-20.parquet")["Body"].read()
    metas = pq.read_table(io.BytesIO(body), columns=["meta"])["meta"].to_pylist()
    assert json.loads(metas[4]) == {"i": 15, "changed": True}
