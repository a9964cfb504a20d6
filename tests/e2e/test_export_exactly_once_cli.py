"""``s3pump export`` stores each row once (issue 12 items 3, 4) and checks its input (issue 13): the real CLI
against SeaweedFS, killed with SIGKILL at random moments while a writer appends rows."""

from __future__ import annotations

import io
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli
from tests.e2e.test_export_cli import CHINOOK, make_events_db, summary

pytestmark = pytest.mark.e2e


def stored_ids(client: Any, bucket: str, prefix: str) -> list[int]:
    ids: list[int] = []
    for key in list_all(client, bucket, prefix):
        if key.endswith(".parquet"):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            ids += pq.read_table(io.BytesIO(body), columns=["id"])["id"].to_pylist()
    return ids


def no_open_uploads(client: Any, bucket: str) -> bool:
    return not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.parametrize("seed,dedup", [(0, False), pytest.param(1, False, marks=pytest.mark.slow), (2, True),
                                        pytest.param(3, True, marks=pytest.mark.slow)])
def test_sigkill_at_random_moments_with_appends_stores_each_row_once(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, seed: int, dedup: bool
) -> None:
    """--follow while a writer appends; SIGKILL right after a random data PUT (so often between a batch's
    objects and its checkpoint), append more, repeat; a final run must leave each row stored once."""
    rnd = random.Random(seed)
    db = tmp_path / "events.db"
    make_events_db(db, 10)
    next_id = 11
    client = s3env.boto()
    # each PUT takes >= 40 ms, so the test sees a data PUT answered before the next request is
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(delay_s={"PutObject": 0.04}), seed=seed)
    proxy.start()
    env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url}
    # qty = id % 97: about one object per row, several objects per batch
    args = [str(db), f"s3://{bucket}/k", "--table", "events", "--batch-rows", "7", "--partition-by",
            "column:qty", "--no-progress", *(["--dedup"] if dedup else [])]

    def data_puts() -> int:
        return sum(1 for e in list(proxy.log) if e.type == "PutObject" and e.key.startswith("k/events/")
                   and e.status == 200)

    def checkpoint() -> Any:
        try:
            body = client.get_object(Bucket=bucket, Key="k/_s3pump/state/events.json")["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return json.loads(body)["cursor"]

    try:
        for _round in range(4):
            cli = subprocess.Popen([sys.executable, "-m", "s3pump", "export", *args, "--follow",
                                    "--poll-interval", "0.1s", "--concurrency", "1"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while checkpoint() != next_id - 1 and time.monotonic() < deadline:  # caught up
                time.sleep(0.05)
            assert checkpoint() == next_id - 1
            n = rnd.randint(2, 6)  # a writer appends: the next --follow batch is partial (< 7 rows)
            make_events_db(db, n, start_id=next_id)
            next_id += n
            target = data_puts() + rnd.randint(1, n)
            while data_puts() < target and time.monotonic() < deadline:
                time.sleep(0.002)
            cli.send_signal(signal.SIGKILL)  # between the batch's objects and its checkpoint, mostly
            cli.wait()
            n = rnd.randint(1, 6)
            make_events_db(db, n, start_id=next_id)  # and more rows before the rerun
            next_id += n
        done = run_cli(["export", *args, "--json"], env)
    finally:
        proxy.stop()
    assert done.returncode == 0, done.stderr.decode()
    ids = stored_ids(client, bucket, "k/events/")
    assert sorted(ids) == list(range(1, next_id)), (
        f"{len(ids)} rows stored for {next_id - 1} source rows; twice: {sorted({i for i in ids if ids.count(i) > 1})}")
    assert no_open_uploads(client, bucket)


def test_issue_example_dedup_150_rows_batch_100_append_10(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "events.db"
    make_events_db(db, 150)
    env = s3env.env(state_dir)
    client = s3env.boto()
    args = ["export", str(db), f"s3://{bucket}/d", "--table", "events", "--batch-rows", "100", "--dedup", "--json",
            "--no-progress"]
    assert run_cli(args, env).returncode == 0
    make_events_db(db, 10, start_id=151)
    again = run_cli(args, env)
    assert again.returncode == 0, again.stderr.decode()
    assert sorted(list_all(client, bucket, "d/events/")) == [
        "d/events/part-1-100.parquet", "d/events/part-101-150.parquet", "d/events/part-151-160.parquet"]
    assert sorted(stored_ids(client, bucket, "d/events/")) == list(range(1, 161))
    assert no_open_uploads(client, bucket)


def test_null_cursor_column_is_one_line_exit_2_never_a_loop(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "n.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE n (id INT PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO n VALUES (NULL, ?)", [(str(i),) for i in range(12)])
    conn.executemany("INSERT INTO n VALUES (?, 'x')", [(i,) for i in range(1, 5)])
    conn.commit()
    conn.close()
    p = run_cli(["export", str(db), f"s3://{bucket}/n", "--table", "n", "--batch-rows", "10"],
                s3env.env(state_dir), timeout=60)
    err = p.stderr.decode().strip()
    assert p.returncode == 2 and len(err.splitlines()) == 1, err
    assert "cursor column id of table n is NULL in 12 rows" in err and "Traceback" not in err
    assert list_all(s3env.boto(), bucket) == {}


def test_time_partition_on_numeric_column_is_one_line_exit_2(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    p = run_cli(["export", str(CHINOOK), f"s3://{bucket}/x", "--table", "Invoice", "--partition-by",
                 "time:Total:day"], s3env.env(state_dir), timeout=60)
    err = p.stderr.decode().strip()
    assert p.returncode == 2 and len(err.splitlines()) == 1, err
    assert "column Total is declared NUMERIC(10,2), which holds no dates or times" in err
    assert list_all(s3env.boto(), bucket) == {}


def test_dry_run_prints_the_objects_it_would_write_and_writes_nothing(
    s3env: S3Env, bucket: str, state_dir: Path
) -> None:
    args = ["export", str(CHINOOK), f"s3://{bucket}/lake", "--table", "invoice", "--partition-by",
            "time:InvoiceDate:month", "--batch-rows", "200", "--no-progress"]
    p = run_cli([*args, "--dry-run"], s3env.env(state_dir), timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    lines = p.stdout.decode().splitlines()
    assert lines and all(line.startswith("(dryrun) export: Invoice rows InvoiceId ") for line in lines)
    planned = [line.rsplit(" to ", 1)[1] for line in lines]
    assert f"s3://{bucket}/lake/Invoice/year=2021/month=01/part-1-200.parquet" in planned
    assert list_all(s3env.boto(), bucket) == {}
    j = run_cli([*args, "--dry-run", "--json"], s3env.env(state_dir), timeout=60)
    rep = summary(j)
    assert rep["dry_run"] is True and [f"s3://{bucket}/{o['key']}" for o in rep["would_write"]] == planned
    real = run_cli([*args, "--json"], s3env.env(state_dir), timeout=60)
    assert real.returncode == 0
    written = sorted(json.loads(line)["key"] for line in real.stdout.decode().splitlines()
                     if json.loads(line).get("event") == "done")
    assert sorted(f"s3://{bucket}/{k}" for k in written) == sorted(planned)
