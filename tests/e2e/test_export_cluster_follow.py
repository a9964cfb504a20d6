"""``export --cluster --follow``: rows inserted in rounds while it runs are exported by the workers;
SIGINT stops it as one process's ``--follow`` stops (exit 0, checkpoint saved); the objects hold each
source row once, and a rerun without ``--follow`` adds nothing. And the cluster's cuts at Hive partition
boundaries: fewer objects than one process, the same rows."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from s3pump.jobs.export import export_table  # noqa: E402
from tests.conftest import S3Env  # noqa: E402
from tests.e2e.localcluster import local_cluster_client  # noqa: E402
from tests.e2e.test_export_cli import make_events_db  # noqa: E402
from tests.e2e.test_export_cluster import checkpoint, data_objects, read_rows  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def client(s3env: S3Env) -> Iterator[Any]:
    """One LocalCluster of 2 worker processes for the module's runs (each run would start its own)."""
    with local_cluster_client(s3env) as c:
        yield c


def _wait(what: str, ok: Callable[[], bool], p: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert p.poll() is None, f"exited while waiting for {what}: {p.stderr.read().decode() if p.stderr else ''}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("dedup", [False, True], ids=["plain", "dedup"])
def test_follow_on_the_cluster_exports_each_new_row_once_and_stops_on_sigint(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, client: Any, dedup: bool) -> None:
    db = tmp_path / "events.sqlite"
    make_events_db(db, 300)
    env = {**s3env.env(state_dir), "S3PUMP_EXPORT_RANGE_ROWS": "100"}
    args = ["export", str(db), f"s3://{bucket}/f/", "--table", "events", "--partition-by", "time:ts:day",
            "--batch-rows", "100", "--cluster", client.scheduler.address, "--json", "--no-progress",
            *(["--dedup"] * dedup)]

    def cursor() -> Any:
        cp = checkpoint(s3env, bucket, "f/")
        return cp and cp["cursor"]

    def reached(rows: int) -> Callable[[], bool]:
        return lambda: bool(cursor() == rows)

    p = subprocess.Popen([sys.executable, "-m", "s3pump", *args, "--follow", "--poll-interval", "0.3s"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait("the first 300 rows", reached(300), p)
        total = 300
        for n in (150, 30, 120):  # a writer appends rows in rounds while --follow runs
            make_events_db(db, n, start_id=total + 1)
            total += n
            _wait(f"rows up to {total}", reached(total), p)
        if dedup:  # an updated row is read again by the next pass and its object rewritten
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE events SET amount = 12345.5 WHERE id = 7")
            _wait("the updated row", lambda: 12345.5 in read_rows(s3env, bucket, "f/").column("amount").to_pylist(), p)
        os.kill(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 0, err.decode()  # as one process's --follow on a stop request
    assert "Traceback" not in err.decode(), err.decode()
    s = json.loads(out.decode().strip().splitlines()[-1])
    assert s["stopped"] and s["checkpoint"] == total and s["cluster"]["shards_failed"] == 0
    assert s["cluster"]["shards_done"] >= 6  # ranges of the first pass and of every poll

    rows = read_rows(s3env, bucket, "f/")
    assert rows.column("id").to_pylist() == list(range(1, total + 1))  # every source row, each once
    with sqlite3.connect(db) as conn:
        amounts = [a for (a,) in conn.execute("SELECT amount FROM events ORDER BY id")]
    assert rows.column("amount").to_pylist() == amounts
    cp = checkpoint(s3env, bucket, "f/")
    assert cp is not None and cp["cursor"] == total and cp["done"] == []
    if not dedup:
        assert cp["batches"] == [] and cp["rows_exported"] == total

    before = data_objects(s3env, bucket, "f/")
    again = export_table(str(db), "events", f"s3://{bucket}/f/", s3env.config(), batch_rows=100,  # no --follow
                         partition_by=["time:ts:day"], dedup=dedup, cluster=client, cluster_options={"range_rows": 100})
    assert again.ok and again.objects_written == 0 and again.rows_exported == 0
    assert data_objects(s3env, bucket, "f/") == before
    assert read_rows(s3env, bucket, "f/").column("id").to_pylist() == list(range(1, total + 1))


def test_cuts_at_day_boundaries_write_fewer_objects_than_one_process(s3env: S3Env, bucket: str, tmp_path: Path,
                                                                    client: Any) -> None:
    """Partitioned by day on the cursor column (``--cursor-column ts --partition-by time:ts:day``, ~2,335 rows
    a day): one process's 2,500-row batches straddle each day boundary (8 objects); the cluster ends its cuts
    at the boundaries (5 objects, one cut per day). The same rows, each once; a one-process rerun adds nothing."""
    db = tmp_path / "events.sqlite"
    make_events_db(db, 10_000)
    kw: dict[str, Any] = {"cursor_column": "ts", "batch_rows": 2_500, "partition_by": ["time:ts:day"]}
    single = export_table(str(db), "events", f"s3://{bucket}/one", s3env.config(), **kw)
    assert single.ok and single.objects_written == len(data_objects(s3env, bucket, "one/")) == 8
    two = export_table(str(db), "events", f"s3://{bucket}/two", s3env.config(), cluster=client,
                       cluster_options={"range_rows": 5_000}, **kw)
    assert two.ok and two.rows_exported == 10_000
    objects = data_objects(s3env, bucket, "two/")
    assert len(objects) == two.objects_written == 5 < single.objects_written
    rows = read_rows(s3env, bucket, "two/")
    assert rows.column("id").to_pylist() == list(range(1, 10_001))  # every row, each once
    assert rows.equals(read_rows(s3env, bucket, "one/"))
    again = export_table(str(db), "events", f"s3://{bucket}/two", s3env.config(), **kw)  # one process
    assert again.ok and again.objects_written == 0 and data_objects(s3env, bucket, "two/") == objects
