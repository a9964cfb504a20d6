"""``s3pump export`` end to end: the real CLI against SeaweedFS, read back with pyarrow and protoc."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from google.protobuf import text_format

from s3pump.export.protogen import proto_schema, read_delimited
from s3pump.sources.readers import open_table
from tests.conftest import S3Env, list_all, run_cli

CHINOOK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "Chinook_Sqlite.sqlite"
if not CHINOOK.exists():
    CHINOOK = Path("/work/shared/data/Chinook_Sqlite.sqlite")

pytestmark = pytest.mark.e2e


def make_events_db(path: Path, rows: int, *, start_id: int = 1) -> None:
    """A generated table ``events``: id, ts (DATETIME text), entity, name, amount, qty. Deterministic."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, ts DATETIME NOT NULL, "
                  "entity TEXT NOT NULL, name TEXT, amount REAL, qty INTEGER)")
    conn.execute(
        "WITH RECURSIVE c(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
        "INSERT INTO events SELECT i, datetime(1735689600 + i * 37, 'unixepoch'), 'entity-' || (i % 5), "
        "printf('name-%d', (i * 2654435761) % 1000003), (i % 10007) / 100.0, i % 97 FROM c",
        (start_id, start_id + rows - 1),
    )
    conn.commit()
    conn.close()


def pyarrow_fs(s3env: S3Env) -> pafs.S3FileSystem:
    s = s3env.server
    host = s.endpoint_url.split("://", 1)[1]
    return pafs.S3FileSystem(access_key=s.access_key_id, secret_key=s.secret_access_key, region=s.region,
                             endpoint_override=host, scheme="http")


def etags(client: Any, bucket: str, prefix: str) -> dict[str, str]:
    """key (relative to ``prefix``) -> ETag of every data object (state and DLQ left out)."""
    return {k[len(prefix):]: o["ETag"] for k, o in list_all(client, bucket, prefix).items()
            if "/_s3pump/" not in k and "/_dlq/" not in k}


def summary(proc: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return next(rec for rec in lines if rec.get("event") == "summary")


def export(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    return run_cli(["export", *args, "--json", "--no-progress"], env, timeout=timeout)


def test_chinook_invoice_parquet_by_day_reads_back_row_for_row(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    env = s3env.env(state_dir)
    p = export([str(CHINOOK), f"s3://{bucket}/lake", "--table", "Invoice",
                "--partition-by", "time:InvoiceDate:day", "--format", "parquet"], env)
    assert p.returncode == 0, p.stderr.decode()
    rep = summary(p)
    assert rep["rows_exported"] == 412 and rep["rows_failed"] == 0 and rep["checkpoint"] == 412

    dataset = ds.dataset(f"{bucket}/lake/Invoice", filesystem=pyarrow_fs(s3env), format="parquet",
                         partitioning="hive")
    got = dataset.to_table().sort_by("InvoiceId")
    conn = sqlite3.connect(CHINOOK)
    source = conn.execute("SELECT * FROM Invoice ORDER BY InvoiceId").fetchall()
    names = [d[1] for d in conn.execute("PRAGMA table_info(Invoice)")]
    assert got.num_rows == len(source)
    rows = got.select(names).to_pylist()
    for src, row in zip(source, rows, strict=True):
        expected = dict(zip(names, src, strict=True))
        expected["InvoiceDate"] = dt_parse(expected["InvoiceDate"])
        expected["Total"] = Decimal(repr(expected["Total"]))  # NUMERIC(10,2): an exact decimal128(10,2)
        assert row == expected
    # every object sits under the partition of its own rows' dates
    for frag in dataset.get_fragments():
        t = pq.read_table(frag.path, filesystem=pyarrow_fs(s3env))
        days = {f"year={d:%Y}/month={d:%m}/day={d:%d}" for d in t["InvoiceDate"].to_pylist()}
        assert len(days) == 1 and f"/{days.pop()}/" in frag.path, frag.path

    # idempotence: the same export again (from the start, over the same prefix) rewrites identical bytes,
    # and a fresh export to another prefix produces the same object set and bytes
    client = s3env.boto()
    before = etags(client, bucket, "lake/")
    again = export([str(CHINOOK), f"s3://{bucket}/lake", "--table", "Invoice", "--partition-by",
                    "time:InvoiceDate:day", "--from-start"], env)
    assert again.returncode == 0 and summary(again)["objects_written"] == len(before)
    assert etags(client, bucket, "lake/") == before
    other = export([str(CHINOOK), f"s3://{bucket}/copy", "--table", "Invoice", "--partition-by",
                    "time:InvoiceDate:day"], env)
    assert other.returncode == 0
    assert etags(client, bucket, "copy/") == before
    # and an incremental rerun finds nothing new
    nothing = export([str(CHINOOK), f"s3://{bucket}/lake", "--table", "Invoice", "--partition-by",
                      "time:InvoiceDate:day"], env)
    assert summary(nothing)["objects_written"] == 0 and summary(nothing)["checkpoint"] == 412


def dt_parse(text: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(text)


def test_chinook_customer_protobuf_decodes_with_generated_schema(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    env = s3env.env(state_dir)
    p = export([str(CHINOOK), f"s3://{bucket}/pb", "--table", "Customer", "--format", "protobuf"], env)
    assert p.returncode == 0, p.stderr.decode()
    client = s3env.boto()
    proto_text = client.get_object(Bucket=bucket, Key="pb/_schema/Customer.proto")["Body"].read()
    (tmp_path / "Customer.proto").write_bytes(proto_text)
    data_keys = [k for k in list_all(client, bucket, "pb/Customer/") if k.endswith(".pb")]
    assert data_keys
    meta = client.head_object(Bucket=bucket, Key=data_keys[0])["Metadata"]
    assert meta["s3pump-format"] == "protobuf" and meta["s3pump-rows"] == "59"

    source = open_table(str(CHINOOK), "Customer")
    cls = proto_schema("Customer", source.schema).message_class
    conn = sqlite3.connect(CHINOOK)
    expected = [dict(zip([c.name for c in source.columns], r, strict=True))
                for r in conn.execute("SELECT * FROM Customer ORDER BY CustomerId")]
    decoded: list[dict[str, Any]] = []
    protoc = shutil.which("protoc")
    for key in sorted(data_keys):
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        for record in read_delimited(body):
            if protoc:  # decode with the generated .proto, as a user would
                out = subprocess.run([protoc, f"--proto_path={tmp_path}", "--decode=s3pump.export.Customer",
                                      "Customer.proto"], input=record, capture_output=True, check=True)
                msg = text_format.Parse(out.stdout.decode(), cls())
            else:  # no protoc on this machine: the same schema through the runtime descriptor
                msg = cls.FromString(record)
            decoded.append({c.name: (getattr(msg, c.name) if msg.HasField(c.name) else None) if c.nullable
                            else getattr(msg, c.name) for c in source.columns})
    source.close()
    assert decoded == expected


def _checkpoint(client: Any, bucket: str, key: str) -> Any:
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())["cursor"]
    except client.exceptions.NoSuchKey:
        return None


@pytest.mark.parametrize("rows", [
    pytest.param(120_000, id="120k"),
    pytest.param(2_000_000, id="2M", marks=pytest.mark.slow),
])
def test_sigkill_mid_export_then_rerun_equals_uninterrupted(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, rows: int
) -> None:
    db = tmp_path / "events.db"
    make_events_db(db, rows)
    env = s3env.env(state_dir)
    batch = rows // 200
    args = ["--table", "events", "--partition-by", "time:ts:day", "--batch-rows", str(batch)]
    client = s3env.boto()
    # two requests in flight, so the run is long enough to be killed between checkpoints
    cli = subprocess.Popen([sys.executable, "-m", "s3pump", "export", str(db), f"s3://{bucket}/killed", *args,
                            "--no-progress", "--concurrency", "2"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    cp = None
    while time.monotonic() < deadline and cli.poll() is None:  # kill once the first batches are durable
        cp = _checkpoint(client, bucket, "killed/_s3pump/state/events.json")
        if cp is not None and cp >= rows // 10:
            break
        time.sleep(0.01)
    assert cli.poll() is None, "the export finished before it could be killed; raise the row count"
    os.kill(cli.pid, signal.SIGKILL)
    cli.wait()
    assert cp is not None and cp < rows
    rerun = export([str(db), f"s3://{bucket}/killed", *args], env, timeout=900)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert summary(rerun)["checkpoint"] == rows
    clean = export([str(db), f"s3://{bucket}/clean", *args], env, timeout=900)
    assert clean.returncode == 0
    assert etags(client, bucket, "killed/") == etags(client, bucket, "clean/")
    ids = ds.dataset(f"{bucket}/killed/events", filesystem=pyarrow_fs(s3env), format="parquet",
                     partitioning="hive").to_table(columns=["id"])["id"]
    assert len(ids) == rows and pa.compute.count_distinct(ids).as_py() == rows
    assert pa.compute.min(ids).as_py() == 1 and pa.compute.max(ids).as_py() == rows


@pytest.mark.timing
def test_follow_exports_new_rows_and_sigterm_saves_checkpoint(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "events.db"
    make_events_db(db, 100)
    env = s3env.env(state_dir)
    client = s3env.boto()
    poll_s = 2.0
    cli = subprocess.Popen([sys.executable, "-m", "s3pump", "export", str(db), f"s3://{bucket}/f", "--table",
                            "events", "--follow", "--poll-interval", f"{poll_s}s", "--no-progress", "--json"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        state_key = "f/_s3pump/state/events.json"
        deadline = time.monotonic() + 60
        while _checkpoint(client, bucket, state_key) != 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _checkpoint(client, bucket, state_key) == 100
        make_events_db(db, 50, start_id=101)  # a writer adds rows while --follow runs
        inserted = time.monotonic()
        while _checkpoint(client, bucket, state_key) != 150 and time.monotonic() - inserted < 10:
            time.sleep(0.05)
        took = time.monotonic() - inserted
        assert _checkpoint(client, bucket, state_key) == 150
        assert took <= 2 * poll_s + 1.0, f"new rows took {took:.1f} s to appear"
        assert any(k.endswith("part-101-150.parquet") for k in list_all(client, bucket, "f/events/"))
        cli.send_signal(signal.SIGTERM)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err.decode()
    rec = json.loads(out.decode().splitlines()[-1])
    assert rec["stopped"] is True and rec["checkpoint"] == 150
    assert _checkpoint(client, bucket, "f/_s3pump/state/events.json") == 150


def test_dedup_unchanged_uploads_nothing_and_updates_rewrite_only_their_groups(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "events.db"
    make_events_db(db, 5000)
    env = s3env.env(state_dir)
    args = [str(db), f"s3://{bucket}/d", "--table", "events", "--partition-by", "column:entity",
            "--batch-rows", "1000", "--dedup"]
    first = export(args, env)
    assert first.returncode == 0, first.stderr.decode()
    assert summary(first)["objects_written"] == 25  # 5 batches x 5 entities
    client = s3env.boto()
    before = {k: (o["ETag"], o["LastModified"]) for k, o in list_all(client, bucket, "d/events/").items()}

    same = export(args, env)
    assert summary(same)["objects_written"] == 0 and summary(same)["objects_skipped"] == 25

    changed_ids = [3, 4, 1500, 2500, 4999]  # entity = id % 5: groups (b1,e3) (b1,e4) (b2,e0) (b3,e0) (b5,e4)
    conn = sqlite3.connect(db)
    conn.executemany("UPDATE events SET name = 'changed' WHERE id = ?", [(i,) for i in changed_ids])
    conn.commit()
    conn.close()
    upd = export(args, env)
    rep = summary(upd)
    assert rep["objects_written"] == 5 and rep["objects_skipped"] == 20
    written = {json.loads(line)["key"] for line in upd.stdout.decode().splitlines()
               if json.loads(line).get("event") == "done"}
    assert written == {
        "d/events/entity=entity-3/part-1-1000.parquet", "d/events/entity=entity-4/part-1-1000.parquet",
        "d/events/entity=entity-0/part-1001-2000.parquet", "d/events/entity=entity-0/part-2001-3000.parquet",
        "d/events/entity=entity-4/part-4001-5000.parquet",
    }
    after = {k: o["ETag"] for k, o in list_all(client, bucket, "d/events/").items()}
    assert set(after) == set(before)
    assert {k for k in after if after[k] != before[k][0]} == written
    for key in written:
        t = pq.read_table(io.BytesIO(client.get_object(Bucket=bucket, Key=key)["Body"].read()))
        assert "changed" in t["name"].to_pylist()


def test_invalid_utf8_row_goes_to_dlq_rest_exports_and_replay_recovers(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "events.db"
    make_events_db(db, 300)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE events SET name = CAST(x'6261ff64' AS TEXT) WHERE id = 150")  # 'ba\xffd'
    conn.commit()
    env = s3env.env(state_dir)
    args = [str(db), f"s3://{bucket}/q", "--table", "events", "--batch-rows", "100"]
    p = export(args, env)
    assert p.returncode == 1
    rep = summary(p)
    assert rep["rows_failed"] == 1 and rep["rows_exported"] == 299 and rep["checkpoint"] == 300
    client = s3env.boto()
    dlq = list_all(client, bucket, "q/_dlq/")
    assert list(dlq) == ["q/_dlq/events/rows-101-200.json"]
    entry = json.loads(client.get_object(Bucket=bucket, Key="q/_dlq/events/rows-101-200.json")["Body"].read())
    assert entry["rows"][0]["cursor"] == 150 and "UTF-8" in entry["rows"][0]["error"]
    assert b"rows-101-200.json" in p.stderr and b"--replay-dlq" in p.stderr

    still = export([*args, "--replay-dlq"], env)  # nothing fixed yet: the entry stays
    assert still.returncode == 1 and "q/_dlq/events/rows-101-200.json" in list_all(client, bucket, "q/_dlq/")
    conn.execute("UPDATE events SET name = 'fixed' WHERE id = 150")
    conn.commit()
    conn.close()
    fixed = export([*args, "--replay-dlq"], env)
    assert fixed.returncode == 0, fixed.stderr.decode()
    assert summary(fixed)["replayed_entries"] == 1
    assert list_all(client, bucket, "q/_dlq/") == {}
    t = pq.read_table(io.BytesIO(client.get_object(Bucket=bucket, Key="q/events/part-101-200.parquet")["Body"]
                                 .read()))
    assert t.num_rows == 100 and "fixed" in t["name"].to_pylist()


def test_missing_bucket_fails_fast_with_one_line(s3env: S3Env, state_dir: Path) -> None:
    p = export([str(CHINOOK), "s3://no-such-bucket-x1/p", "--table", "Invoice"], s3env.env(state_dir))
    assert p.returncode == 2
    err = p.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and "no-such-bucket-x1" in err and "Traceback" not in err
