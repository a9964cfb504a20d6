"""``s3pump cleanup --iceberg`` (issue 29): the files under an Iceberg table that no snapshot references
(a killed export's data file and manifest, planted here) are listed and deleted once older than --older-than;
nothing a snapshot references is touched, and the table still reads back equal to its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import S3Env, list_all, run_cli
from tests.e2e.test_export_cli import make_events_db
from tests.e2e.test_export_iceberg import load_table, referenced, source_rows

pytest.importorskip("pyiceberg")
pytestmark = pytest.mark.e2e


def test_cleanup_iceberg_lists_then_deletes_exactly_the_unreferenced_files_past_the_grace_period(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3pump.jobs.export import export_table

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    db = tmp_path / "events.db"
    make_events_db(db, 90)
    rep = export_table(str(db), "events", f"s3://{bucket}/c", s3env.config(), table_format="iceberg",
                       batch_rows=30, partition_by=["column:entity"])
    make_events_db(db, 10, start_id=91)  # a second commit: two snapshots, manifests shared between them
    export_table(str(db), "events", f"s3://{bucket}/c", s3env.config(), table_format="iceberg",
                 batch_rows=30, partition_by=["column:entity"])
    table = load_table(s3env, {"iceberg": rep.iceberg})
    s3 = s3env.boto()
    before = list_all(s3, bucket, "c/")
    data = sorted(k for k in before if k.endswith(".parquet"))
    manifest = next(k for k in before if k.startswith("c/events/metadata/") and k.endswith("-m0.avro"))
    # what a killed run leaves: a data file and a manifest written, never committed
    orphans = {"c/events/data/entity=x/00000-0-killed.parquet", "c/events/metadata/killed-m0.avro"}
    for key, copied in zip(sorted(orphans), (data[0], manifest), strict=True):
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": copied})
    env = s3env.env(state_dir)
    url = f"s3://{bucket}/c"

    def cleanup(*extra: str) -> tuple[list[dict[str, str]], str]:
        p = run_cli(["cleanup", url, "--iceberg", "--json", *extra], env)
        assert p.returncode == 0, p.stderr.decode()
        return [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()], p.stderr.decode()

    # the grace period (--older-than, 24h by default): a young unreferenced file may be a running export's
    lines, err = cleanup("--dry-run")
    assert lines == [] and "kept 2 newer than 24h" in err, err
    lines, err = cleanup("--dry-run", "--older-than", "0s")
    assert sorted(x["key"] for x in lines) == sorted(f"s3://{bucket}/{k}" for k in orphans)
    assert {x["event"] for x in lines} == {"would_delete"} and "would delete 2 unreferenced Iceberg file(s)" in err
    assert list_all(s3, bucket, "c/").keys() == before.keys() | orphans  # a dry run deletes nothing
    lines, err = cleanup("--older-than", "0s")
    assert sorted(x["key"] for x in lines) == sorted(f"s3://{bucket}/{k}" for k in orphans)
    assert {x["event"] for x in lines} == {"deleted"}, lines
    assert list_all(s3, bucket, "c/").keys() == before.keys()  # exactly the orphans gone
    assert {f"s3://{bucket}/{k}" for k in data} == referenced(table)
    table = load_table(s3env, {"iceberg": rep.iceberg})
    got = [tuple(r.values()) for r in table.scan().to_arrow().sort_by("id").to_pylist()]
    want = source_rows(db, "SELECT id, ts, entity, name, amount, qty FROM events ORDER BY id")
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in got] == [(w[0], w[2], w[3], w[4], w[5]) for w in want]
    assert [r[1].isoformat(sep=" ") for r in got] == [w[1] for w in want]
