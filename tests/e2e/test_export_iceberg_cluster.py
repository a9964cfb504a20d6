"""``export --table-format iceberg --cluster`` (issue 29): the workers write the data files, the coordinator
alone commits them, one append per range in cursor order; read back with pyiceberg row for row."""

from __future__ import annotations

import decimal
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyiceberg")
distributed = pytest.importorskip("distributed")

from tests.conftest import S3Env, run_cli  # noqa: E402
from tests.e2e.localcluster import local_cluster_client  # noqa: E402
from tests.e2e.test_export_cli import CHINOOK, summary  # noqa: E402
from tests.e2e.test_export_iceberg import data_keys, load_table, referenced, source_rows  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def client(s3env: S3Env) -> Iterator[Any]:
    """A LocalCluster of 2 worker processes whose environment holds the credentials; its Client."""
    with local_cluster_client(s3env) as c:
        yield c


def test_workers_write_the_data_files_and_the_coordinator_commits_each_range_in_cursor_order(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: Any
) -> None:
    """Chinook ``Invoice`` (412 rows) in 5 ranges of 2 cuts of 50 rows: 5 appends whose cursor ranges follow
    each other; the coordinator never writes a data file (its writer fails the test), the worker processes
    did; the rows read back equal SQLite's; a rerun through the CLI on the same cluster adds nothing."""
    from s3pump.export import iceberg, iceberg_write
    from s3pump.jobs.export import export_table

    def no_writes(*a: object, **k: object) -> None:
        raise AssertionError("the coordinator wrote a data file: writing belongs on the workers")

    monkeypatch.setattr(iceberg_write, "data_files", no_writes)
    monkeypatch.setattr(iceberg, "data_files", no_writes)
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    db = tmp_path / "chinook.sqlite"
    shutil.copy(CHINOOK, db)
    rep = export_table(str(db), "Invoice", f"s3://{bucket}/lake", s3env.config(), table_format="iceberg",
                       partition_by=["time:InvoiceDate:month"], batch_rows=50, cluster=client,
                       cluster_options={"range_rows": 100})
    assert rep.ok and rep.rows_exported == 412 and rep.checkpoint == 412, rep
    table = load_table(s3env, {"iceberg": rep.iceberg})
    assert [(s.summary["s3pump.cursor-after"], s.summary["s3pump.cursor-last"]) for s in table.snapshots()] == [
        ("null", "100"), ("100", "200"), ("200", "300"), ("300", "400"), ("400", "412")]
    c = rep.cluster
    assert c is not None and c["workers"] == 2 and c["shards_done"] == 5 and c["shards_failed"] == 0
    assert c["pids"] and os.getpid() not in c["pids"]
    assert set(c["pids"]) <= set(client.run(os.getpid).values())
    files = data_keys(s3env, bucket, "lake/Invoice/data/")
    assert files == referenced(table) and sum(w["files"] for w in c["per_worker"]) == len(files) == rep.objects_written
    want = source_rows(db, "SELECT * FROM Invoice ORDER BY InvoiceId")
    got = [tuple(r.values()) for r in table.scan().to_arrow().sort_by("InvoiceId").to_pylist()]
    assert len(got) == 412
    for mine, theirs in zip(got, want, strict=True):
        assert mine[0:2] == theirs[0:2] and mine[2].isoformat(sep=" ") == theirs[2] and mine[3:8] == theirs[3:8]
        assert mine[8] == decimal.Decimal(str(theirs[8])).quantize(decimal.Decimal("0.01"))
    # the same command again (the CLI, on the same workers): the table's cursor is at the end, nothing added
    p = run_cli(["export", str(db), f"s3://{bucket}/lake", "--table", "Invoice", "--table-format", "iceberg",
                 "--partition-by", "time:InvoiceDate:month", "--batch-rows", "50", "--cluster",
                 client.scheduler.address, "--json", "--no-progress"], s3env.env(state_dir))
    assert p.returncode == 0, p.stderr.decode()
    assert summary(p)["rows_exported"] == 0 and summary(p)["checkpoint"] == 412
    again = load_table(s3env, {"iceberg": rep.iceberg})
    assert len(again.snapshots()) == 5 and data_keys(s3env, bucket, "lake/Invoice/data/") == files


@pytest.mark.slow  # about 20 s on 2 cores (two CLI runs, 10 commits): run with -m slow
def test_coordinator_killed_mid_run_then_rerun_commits_each_row_once_in_cursor_order(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, client: Any
) -> None:
    """SIGKILL the coordinator once 2 ranges are committed (its ranges in flight finish on the workers: written,
    never committed); the same command again continues from the table's cursor and deletes those files: every
    row once, the snapshots' cursor ranges chained from the first row to the last, no unreferenced data file."""
    import signal
    import subprocess
    import sys
    import time

    from tests.e2e.test_export_cli import make_events_db

    db = tmp_path / "events.db"
    make_events_db(db, 1000)
    env = {**s3env.env(state_dir), "S3PUMP_EXPORT_RANGE_ROWS": "100"}
    args = [sys.executable, "-m", "s3pump", "export", str(db), f"s3://{bucket}/k", "--table", "events",
            "--table-format", "iceberg", "--batch-rows", "50", "--cluster", client.scheduler.address, "--json",
            "--no-progress"]
    s3 = s3env.boto()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None:
            listed = s3.list_objects_v2(Bucket=bucket, Prefix="k/events/metadata/").get("Contents", [])
            # created, its properties set, then one per commit: the 5th is written once the 2nd commit is done
            if sum(o["Key"].endswith(".metadata.json") for o in listed) >= 5:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, "the run finished before the kill"
    deadline = time.monotonic() + 60  # the killed run's ranges still running on the workers finish
    while any(client.run(lambda dask_worker: len(dask_worker.state.executing)).values()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    p = subprocess.run(args, env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    rep = summary(p)
    table = load_table(s3env, rep)
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == list(range(1, 1001)), "a row lost or stored twice"
    chain = [(s.summary["s3pump.cursor-after"], s.summary["s3pump.cursor-last"]) for s in table.snapshots()]
    assert chain[0][0] == "null" and chain[-1][1] == "1000" and len(chain) == 10
    assert all(a[1] == b[0] for a, b in itertools.pairwise(chain)), chain
    assert rep["rows_exported"] <= 800 and rep["deleted"], rep  # it continued, and deleted the killed run's files
    assert data_keys(s3env, bucket, "k/events/data/") == referenced(table)
