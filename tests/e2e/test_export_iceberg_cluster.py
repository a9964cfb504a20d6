"""``export --table-format iceberg --cluster`` (issue 29): the workers write the data files, the coordinator
alone commits them, one append per range in cursor order; read back with pyiceberg row for row."""

from __future__ import annotations

import decimal
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
