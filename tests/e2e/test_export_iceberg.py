"""``s3pump export --table-format iceberg`` (issue 29): the real CLI into an Iceberg table on SeaweedFS,
read back with pyiceberg and with DuckDB's ``iceberg_scan`` (extension from PyPI, no download)."""

from __future__ import annotations

import decimal
import json
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3Env, list_all
from tests.e2e.test_export_cli import CHINOOK, export, make_events_db, summary

pytest.importorskip("pyiceberg")
pytestmark = pytest.mark.e2e


def load_table(s3env: S3Env, report: dict[str, Any]) -> Any:
    """The exported table, through the catalog the run printed (a reader's own pyiceberg)."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog("s3pump", uri=report["iceberg"]["catalog"], **{
        "s3.endpoint": s3env.endpoint_url, "s3.access-key-id": s3env.server.access_key_id,
        "s3.secret-access-key": s3env.server.secret_access_key, "s3.region": s3env.server.region})
    return catalog.load_table(report["iceberg"]["table"])


def duckdb_rows(s3env: S3Env, table: Any, order_by: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``'s current metadata file, by DuckDB's iceberg_scan."""
    import duckdb
    import duckdb_ext

    host = s3env.endpoint_url.split("://", 1)[1]
    with duckdb_ext.init(duckdb.connect()) as con:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("LOAD httpfs; LOAD avro; LOAD iceberg")
        con.execute(f"CREATE SECRET s (TYPE S3, KEY_ID '{s3env.server.access_key_id}', SECRET "
                    f"'{s3env.server.secret_access_key}', REGION '{s3env.server.region}', ENDPOINT '{host}', "
                    "URL_STYLE 'path', USE_SSL false)")
        return con.execute(f"SELECT * FROM iceberg_scan('{table.metadata_location}') ORDER BY {order_by}").fetchall()


def source_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def data_keys(s3env: S3Env, bucket: str, prefix: str) -> set[str]:
    return {f"s3://{bucket}/{k}" for k in list_all(s3env.boto(), bucket, prefix) if k.endswith(".parquet")}


def referenced(table: Any) -> set[str]:
    return {e.data_file.file_path for s in table.snapshots() for m in s.manifests(table.io)
            for e in m.fetch_manifest_entry(table.io, discard_deleted=False)}


def test_chinook_invoice_reads_back_row_for_row_then_a_rerun_adds_only_the_new_rows(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run through the API (in this process), the rerun through the CLI."""
    from s3pump.jobs.export import export_table

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    db = tmp_path / "chinook.sqlite"
    shutil.copy(CHINOOK, db)
    env = s3env.env(state_dir)
    args = [str(db), f"s3://{bucket}/lake", "--table", "Invoice", "--table-format", "iceberg",
            "--partition-by", "time:InvoiceDate:month", "--batch-rows", "150"]
    report = export_table(str(db), "Invoice", f"s3://{bucket}/lake", s3env.config(), table_format="iceberg",
                          partition_by=["time:InvoiceDate:month"], batch_rows=150)
    rep = report.to_json()
    assert rep["rows_exported"] == 412 and rep["format"] == "iceberg"
    assert rep["iceberg"]["location"] == f"s3://{bucket}/lake/Invoice"
    table = load_table(s3env, rep)
    # 3 batches, far below the target file size: one commit, when the run caught up
    assert [(s.summary["s3pump.cursor-after"], s.summary["s3pump.cursor-last"]) for s in table.snapshots()] == [
        ("null", "412")]
    assert {str(f.transform) for f in table.spec().fields} == {"month"}
    want = source_rows(db, "SELECT * FROM Invoice ORDER BY InvoiceId")
    got = table.scan().to_arrow().sort_by("InvoiceId")
    assert got.schema.field("Total").type.scale == 2 and str(got.schema.field("InvoiceDate").type) == "timestamp[us]"
    rows = [tuple(r.values()) for r in got.to_pylist()]
    assert len(rows) == 412
    for mine, theirs in zip(rows, want, strict=True):
        assert mine[0] == theirs[0] and mine[1] == theirs[1]
        assert mine[2].isoformat(sep=" ") == theirs[2]  # DATETIME text → timestamp[us], exact
        assert mine[3:8] == theirs[3:8]
        assert mine[8] == decimal.Decimal(str(theirs[8])).quantize(decimal.Decimal("0.01"))
    assert sum(r[8] for r in rows) == decimal.Decimal("2328.60")
    assert duckdb_rows(s3env, table, "InvoiceId") == rows
    # appended rows, rerun: only they are read and committed
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO Invoice VALUES (?, 2, '2026-01-0' || ?, 'a', 'b', NULL, 'c', NULL, ?)",
                     [(413 + i, i + 1, f"{i}.25") for i in range(3)])
    conn.commit()
    conn.close()
    p = export(args, env)
    assert p.returncode == 0, p.stderr.decode()
    assert summary(p)["rows_exported"] == 3
    assert summary(p)["iceberg"]["catalog"] == f"sqlite:///{state_dir}/iceberg/{bucket}/lake.db"
    table = load_table(s3env, rep)
    ids = table.scan().to_arrow()["InvoiceId"].to_pylist()
    assert sorted(ids) == list(range(1, 416))
    assert table.current_snapshot().summary["s3pump.cursor-after"] == "412"
    assert data_keys(s3env, bucket, "lake/Invoice/data/") == referenced(table)


@pytest.mark.parametrize("seed,runs", [(0, 3), pytest.param(1, 8, marks=pytest.mark.slow)])
def test_sigkill_at_random_moments_with_appends_commits_each_row_once(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, seed: int, runs: int
) -> None:
    """Runs SIGKILLed at random moments (right after their k-th data file landed, so mostly between a commit's
    data files and its catalog update), rows appended between; then a clean run: every row in the table once,
    and no data file that no snapshot references (the killed commits' files deleted by the next run)."""
    rnd = random.Random(seed)
    db = tmp_path / "events.db"
    make_events_db(db, 150)
    next_id = 151
    env = s3env.env(state_dir)
    client = s3env.boto()
    args = ["export", str(db), f"s3://{bucket}/k", "--table", "events", "--table-format", "iceberg",
            "--batch-rows", "30", "--partition-by", "column:entity", "--target-file-size", "2KiB", "--no-progress",
            "--json"]
    killed = 0
    for _ in range(runs):
        before = len(data_keys(s3env, bucket, "k/events/data/"))
        k = rnd.randint(1, 9)  # 5 data files (one per entity) per commit
        proc = subprocess.Popen([sys.executable, "-m", "s3pump", *args], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        while proc.poll() is None:
            keys = client.list_objects_v2(Bucket=bucket, Prefix="k/events/data/").get("Contents", [])
            if len(keys) >= before + k:
                proc.send_signal(signal.SIGKILL)
                killed += 1
                break
            time.sleep(0.02)
        proc.communicate(timeout=120)
        n = rnd.randint(1, 40)
        make_events_db(db, n, start_id=next_id)
        next_id += n
    assert killed >= runs - 1
    p = subprocess.run([sys.executable, "-m", "s3pump", *args], env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    table = load_table(s3env, summary(p))
    ids = table.scan().to_arrow()["id"].to_pylist()
    assert sorted(ids) == list(range(1, next_id)), "a row lost or stored twice"
    assert data_keys(s3env, bucket, "k/events/data/") == referenced(table)


def test_a_column_added_between_runs_is_an_iceberg_schema_update_read_by_both_readers(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs through the API (in this process: pyiceberg imported once), the refusal through the CLI."""
    from s3pump.jobs.export import export_table

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    db = tmp_path / "t.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, price NUMERIC(10,2), at DATETIME)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"{i}.10", f"2025-01-0{i} 10:00:00") for i in (1, 2)])
    conn.commit()
    env = s3env.env(state_dir)
    args = [str(db), f"s3://{bucket}/s", "--table", "t", "--table-format", "iceberg"]
    rep = export_table(str(db), "t", f"s3://{bucket}/s", s3env.config(), table_format="iceberg")
    assert rep.rows_exported == 2 and rep.iceberg is not None
    conn.execute("ALTER TABLE t ADD COLUMN note TEXT")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(3, "3.30", "2025-01-03 00:00:00", "new ✓")])
    conn.commit()
    rep = export_table(str(db), "t", f"s3://{bucket}/s", s3env.config(), table_format="iceberg")
    assert rep.rows_exported == 1
    table = load_table(s3env, {"iceberg": rep.iceberg})
    assert [f.name for f in table.schema().fields] == ["id", "price", "at", "note"]
    rows = [tuple(r.values()) for r in table.scan().to_arrow().sort_by("id").to_pylist()]
    d = decimal.Decimal
    assert [(r[0], r[1], r[3]) for r in rows] == [(1, d("1.10"), None), (2, d("2.10"), None), (3, d("3.30"), "new ✓")]
    assert duckdb_rows(s3env, table, "id") == rows
    # a dropped column stops the run with one line (exit 2), nothing committed
    conn.execute("ALTER TABLE t DROP COLUMN at")
    conn.execute("INSERT INTO t (id, price) VALUES (4, 4)")
    conn.commit()
    conn.close()
    snapshots = len(table.snapshots())
    p = export(args, env)
    assert p.returncode == 2
    err = p.stderr.decode().strip()
    assert err.count("\n") == 0 and "column at was dropped" in err and "--schema-evolution" in err, err
    assert len(load_table(s3env, {"iceberg": rep.iceberg}).snapshots()) == snapshots


def test_iceberg_refuses_flags_it_does_not_take(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    p = export([str(CHINOOK), f"s3://{bucket}/x", "--table", "Invoice", "--table-format", "iceberg", "--dedup"],
               s3env.env(state_dir))
    assert p.returncode == 2
    assert "--table-format iceberg with --dedup" in p.stderr.decode()
    assert json.dumps(list_all(s3env.boto(), bucket)) == "{}"


def test_target_file_size_is_met_by_the_parquet_bytes_written(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--target-file-size 96KiB: batches grouped into commits of about that many bytes of Parquet (the writer's
    bytes, calibrated on a sample and then on the files written): every data file but the last within ±20 %."""
    from s3pump.jobs.export import export_table

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    db = tmp_path / "events.db"
    make_events_db(db, 40_000)
    rep = export_table(str(db), "events", f"s3://{bucket}/f", s3env.config(), table_format="iceberg",
                       batch_rows=1000, target_file_size_bytes=96 * 1024)
    assert rep.rows_exported == 40_000
    table = load_table(s3env, {"iceberg": rep.iceberg})
    assert table.properties["write.target-file-size-bytes"] == str(96 * 1024)
    sizes = [e.data_file.file_size_in_bytes for s in table.snapshots() for m in s.manifests(table.io)
             for e in m.fetch_manifest_entry(table.io) if e.snapshot_id == s.snapshot_id]
    assert len(sizes) >= 4
    off = [n for n in sizes[:-1] if abs(n - 96 * 1024) > 0.2 * 96 * 1024]
    assert not off, f"data files off the 96 KiB target by more than 20 %: {sizes}"
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == list(range(1, 40_001))


def test_target_file_size_holds_in_every_partition_a_commit_crosses(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Partitioned by month, batches of 700 rows, 96 KiB files: at most one file per partition (its remainder)
    off the target by more than 20 %. Before: the commit that crossed into February began it with a 74 KiB file
    (the rest of that commit's budget) besides its 6 KiB remainder; with batches of 1,500 rows the first file
    was 127 KiB (the Arrow-to-Parquet ratio measured on the first batch alone)."""
    from s3pump.jobs.export import export_table

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    db = tmp_path / "events.db"
    make_events_db(db, 120_000)  # a row every 37 s from 2025-01-01: January (72,000 rows) and February
    rep = export_table(str(db), "events", f"s3://{bucket}/m", s3env.config(), table_format="iceberg",
                       batch_rows=700, target_file_size_bytes=96 * 1024, partition_by=["time:ts:month"])
    assert rep.rows_exported == 120_000
    table = load_table(s3env, {"iceberg": rep.iceberg})
    live = {t.file.file_path for t in table.scan().plan_files()}
    by_partition: dict[str, list[int]] = {}  # each partition's live files in commit order
    for snap in table.snapshots():
        for manifest in snap.manifests(table.io):
            for e in manifest.fetch_manifest_entry(table.io):
                if e.snapshot_id == snap.snapshot_id and e.data_file.file_path in live:
                    by_partition.setdefault(str(e.data_file.partition), []).append(e.data_file.file_size_in_bytes)
    assert len(by_partition) == 2 and all(len(sizes) >= 3 for sizes in by_partition.values()), by_partition
    for partition, sizes in by_partition.items():  # one file may be off: the partition's remainder
        off = [n for n in sizes if abs(n - 96 * 1024) > 0.2 * 96 * 1024]
        assert len(off) <= 1, f"{partition}: files off the 96 KiB target by more than 20 %: {sizes}"
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == list(range(1, 120_001))


def test_follow_commits_a_quiet_tables_rows_once_they_reach_max_file_age(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--follow polling every 0.1 s while a row arrives every 0.1 s: the rows are committed once the first
    of them is --max-file-age (0.5 s) old, not at every poll; a stop commits the rest; the small files are
    compacted (overwrite commits): at most 4 live data files. Every row once."""
    import threading

    from s3pump.events import BatchExported
    from s3pump.jobs.export import export_table

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    db = tmp_path / "events.db"
    make_events_db(db, 5)
    stop = threading.Event()
    out: list[Any] = []
    committed = threading.Event()
    thread = threading.Thread(target=lambda: out.append(export_table(
        str(db), "events", f"s3://{bucket}/w", s3env.config(), table_format="iceberg", follow=True,
        poll_interval_s=0.1, max_file_age_s=0.5, stop=stop,
        subscribers=[lambda e: committed.set() if isinstance(e, BatchExported) else None])))
    thread.start()
    assert committed.wait(120), "the first 5 rows were never committed while following"
    started = time.monotonic()
    for i in range(6, 36):
        make_events_db(db, 1, start_id=i)
        time.sleep(0.1)
    elapsed_s = time.monotonic() - started
    stop.set()
    thread.join(timeout=120)
    rep = out[0]
    table = load_table(s3env, {"iceberg": rep.iceberg})
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == list(range(1, rep.checkpoint + 1))
    assert rep.checkpoint >= 20  # most rows arrived while it followed (a loaded machine may miss the last)
    appends = [s for s in table.snapshots() if "s3pump.cursor-last" in s.summary.additional_properties]
    assert 1 <= len(appends) <= elapsed_s / 0.5 + 3, (len(appends), elapsed_s)  # not one per poll (about 30)
    if len(appends) >= 5:
        assert rep.iceberg["files_compacted"] >= 4
        assert any(s.summary.operation.value == "overwrite" for s in table.snapshots())
    assert len(list(table.scan().plan_files())) <= 4
    # the rows that arrived after its last poll: the next run, each row once
    export_table(str(db), "events", f"s3://{bucket}/w", s3env.config(), table_format="iceberg")
    table = load_table(s3env, {"iceberg": rep.iceberg})
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == list(range(1, 36))


def test_a_location_holding_a_table_of_another_catalog_is_refused_and_left_alone(
    s3env: S3Env, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun from another state directory (so another default catalog) must not create a second table
    over the first one's files (which would then be orphans to delete): one line, exit 2, nothing touched."""
    from s3pump.errors import UsageError
    from s3pump.jobs.export import export_table

    db = tmp_path / "events.db"
    make_events_db(db, 10)
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "a"))
    export_table(str(db), "events", f"s3://{bucket}/o", s3env.config(), table_format="iceberg")
    before = list_all(s3env.boto(), bucket)
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "b"))
    with pytest.raises(UsageError, match=r"already holds an Iceberg table .* --catalog-uri"):
        export_table(str(db), "events", f"s3://{bucket}/o", s3env.config(), table_format="iceberg")
    assert list_all(s3env.boto(), bucket).keys() == before.keys()


def test_batches_read_on_a_wrong_guess_that_the_table_is_new_are_dropped(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batches are read while the table opens when the catalog has no such table yet
    (export/iceberg_reads.py). Forced on a rerun (as if another writer created the table meanwhile), what was read
    from the start is dropped: the rerun commits only the rows after the table's cursor, each once."""
    import s3pump.export.iceberg as iceberg
    from s3pump.jobs.export import export_table

    monkeypatch.setenv("S3PUMP_STATE_DIR", str(state_dir))
    db = tmp_path / "events.db"
    make_events_db(db, 500)
    dest = f"s3://{bucket}/guess"
    first = export_table(str(db), "events", dest, s3env.config(), table_format="iceberg", batch_rows=40,
                         partition_by=["column:entity"]).to_json()
    assert first["rows_exported"] == 500
    guessed: list[bool] = []
    real = iceberg.table_is_new
    monkeypatch.setattr(iceberg, "table_is_new", lambda *a: guessed.append(real(*a)) or True)
    make_events_db(db, 70, start_id=501)
    second = export_table(str(db), "events", dest, s3env.config(), table_format="iceberg", batch_rows=40,
                          partition_by=["column:entity"]).to_json()
    assert guessed == [False]  # the real guess on a rerun: the table exists
    assert second["rows_exported"] == 70 and second["rows_read"] == 70
    table = load_table(s3env, second)
    assert sorted(table.scan().to_arrow()["id"].to_pylist()) == list(range(1, 571))
    assert table.current_snapshot().summary["s3pump.cursor-after"] == "500"


def test_a_data_file_that_cannot_be_stored_fails_the_run_and_commits_nothing(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    """Every data file's PUT answered 500 (the table's creation spared): the run ends in one line, exit 1,
    with no snapshot; the rerun commits every row once and deletes the files the failed run stored."""
    from s3pump.testing.faultproxy import FaultPlan, FaultProxy

    db = tmp_path / "chinook.sqlite"
    shutil.copy(CHINOOK, db)
    args = [str(db), f"s3://{bucket}/lake", "--table", "Invoice", "--table-format", "iceberg",
            "--partition-by", "time:InvoiceDate:month", "--batch-rows", "100"]  # early files between batches
    plan = FaultPlan(rates={"internal": 1.0}, only_types=frozenset({"PutObject"}), spare_first={"PutObject": 1})
    with FaultProxy(s3env.endpoint_url, plan, seed=7) as proxy:
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_MAX_ATTEMPTS": "2"}
        p = export(args, env)
        failed_puts = [e.key for e in proxy.log if e.type == "PutObject" and e.fault]
    err = [line for line in p.stderr.decode().splitlines() if line.strip()]
    assert p.returncode == 1, p.stderr.decode()
    assert len(failed_puts) >= 2 and all(k.endswith(".parquet") for k in failed_puts), failed_puts
    assert len(err) == 1 and "nothing was committed" in err[0] and "InternalError" in err[0], err
    assert err[0].count(".parquet") == 1, err  # the first file that failed, named once
    assert "Traceback" not in err[0] and "AWS_ERROR" not in err[0]
    catalog_uri = f"sqlite:///{state_dir}/iceberg/{bucket}/lake.db"
    table = load_table(s3env, {"iceberg": {"catalog": catalog_uri, "table": "s3pump.Invoice"}})
    assert table.current_snapshot() is None
    again = export(args, s3env.env(state_dir))
    assert again.returncode == 0, again.stderr.decode()
    assert summary(again)["rows_exported"] == 412
    table = load_table(s3env, summary(again))
    assert sorted(table.scan().to_arrow()["InvoiceId"].to_pylist()) == list(range(1, 413))
    assert data_keys(s3env, bucket, "lake/Invoice/data/") == referenced(table)


def test_metadata_and_data_requests_answered_with_transient_errors_are_retried_and_the_table_is_exact(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    """A fifth of every request (data files, metadata files, manifests, their reads, the listing) answered 500
    or 503 SlowDown: the run's retry policy retries them all (the metadata goes through the run's store), and
    the table holds every row once with no file left that no snapshot references."""
    from s3pump.testing.faultproxy import FaultPlan, FaultProxy

    db = tmp_path / "chinook.sqlite"
    shutil.copy(CHINOOK, db)
    args = [str(db), f"s3://{bucket}/lake", "--table", "Invoice", "--table-format", "iceberg",
            "--partition-by", "time:InvoiceDate:month", "--batch-rows", "100", "--target-file-size", "1MiB"]
    plan = FaultPlan(rates={"internal": 0.1, "slowdown": 0.1}, spare_first={"HeadBucket": 1})
    with FaultProxy(s3env.endpoint_url, plan, seed=11) as proxy:  # begin's requests come in one order: with this
        # seed, the table's creation meets a fault (its metadata file's GET); 10 attempts: no request runs out of them
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_MAX_ATTEMPTS": "10"}
        p = export(args, env)
        faulted = [(e.type, e.key) for e in proxy.log if e.fault]
    assert p.returncode == 0, p.stderr.decode()
    assert summary(p)["rows_exported"] == 412 and summary(p)["retries"] > 0
    # among the requests retried: the metadata's own (metadata files, manifest lists, manifests), and data files
    assert any(key.endswith((".metadata.json", ".avro")) for _type, key in faulted), faulted
    assert any(key.endswith(".parquet") for _type, key in faulted), faulted
    table = load_table(s3env, summary(p))
    assert sorted(table.scan().to_arrow()["InvoiceId"].to_pylist()) == list(range(1, 413))
    assert data_keys(s3env, bucket, "lake/Invoice/data/") == referenced(table)


def test_every_object_of_the_table_carries_the_runs_object_attributes(
    s3env: S3Env, bucket: str, state_dir: Path
) -> None:
    """``--metadata`` (and so ``--acl``, ``--sse``, ``--storage-class``: the same attributes) on the data files, the
    metadata files and the manifests alike; each with its own content type."""
    p = export([str(CHINOOK), f"s3://{bucket}/lake", "--table", "Invoice", "--table-format", "iceberg",
                "--partition-by", "time:InvoiceDate:month", "--metadata", "team=lake", "--metadata", "tier=gold"],
               s3env.env(state_dir))
    assert p.returncode == 0, p.stderr.decode()
    client = s3env.boto()
    keys = list_all(client, bucket, "lake/Invoice/")
    kinds = {"parquet": "application/vnd.apache.parquet", "json": "application/json", "avro": None}
    seen = set()
    for key in keys:
        kind = key.rsplit(".", 1)[-1]
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"] == {"team": "lake", "tier": "gold"}, key
        if kinds[kind] is not None:
            assert head["ContentType"] == kinds[kind], key
        seen.add(kind)
    assert seen == {"parquet", "json", "avro"}
