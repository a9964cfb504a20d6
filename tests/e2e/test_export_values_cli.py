"""Issue 25 through the CLI against SeaweedFS: a schema change between runs is one line and exit 2 (nothing
written); ``--schema-evolution`` writes the new objects under ``_v2/``; a bad value is a dead-letter entry."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import S3Env, list_all, run_cli


def test_a_column_added_between_runs_is_one_line_exit_2_then_schema_evolution_writes_v2(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, qty INTEGER, ok BOOLEAN)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, i, i % 2) for i in range(1, 11)] + [(11, 3.7, 1),
                                                                                               (12, 1, 2)])
    conn.commit()
    args = ["export", str(db), f"s3://{bucket}/lake", "--table", "t", "--no-progress"]
    env = s3env.env(state_dir)
    first = run_cli(args, env, timeout=120)
    assert first.returncode == 1, first.stderr.decode()  # two rows in the dead-letter queue
    client = s3env.boto()
    dlq = [k for k in list_all(client, bucket, "lake/_dlq/")]
    assert len(dlq) == 1
    errors = {r["cursor"]: r["error"] for r in
              json.loads(client.get_object(Bucket=bucket, Key=dlq[0])["Body"].read())["rows"]}
    assert sorted(errors) == [11, 12] and "column qty" in errors[11] and "column ok" in errors[12]
    body = client.get_object(Bucket=bucket, Key="lake/t/part-1-12.parquet")["Body"].read()
    assert pq.read_table(io.BytesIO(body))["qty"].to_pylist() == list(range(1, 11))

    conn.execute("ALTER TABLE t ADD COLUMN note TEXT")
    conn.execute("INSERT INTO t VALUES (13, 13, 1, 'new')")
    conn.commit()
    conn.close()
    before = set(list_all(client, bucket))
    p = run_cli(args, env, timeout=120)
    err = p.stderr.decode().strip()
    assert p.returncode == 2 and len(err.splitlines()) == 1, err
    assert "column note was added" in err and "--schema-evolution" in err and "Traceback" not in err
    assert set(list_all(client, bucket)) == before

    evolved = run_cli([*args, "--schema-evolution"], env, timeout=120)
    assert evolved.returncode == 0, evolved.stderr.decode()
    body = client.get_object(Bucket=bucket, Key="lake/t/_v2/part-13-13.parquet")["Body"].read()
    assert pq.read_table(io.BytesIO(body)).to_pylist() == [{"id": 13, "qty": 13, "ok": True, "note": "new"}]
