"""``export --cluster``: a generated table exported on a Dask LocalCluster against the test SeaweedFS.

Each test reads the objects back and compares them row for row (and key for key) with a single-process
export of the same table: no row missing, none stored twice. The kill test SIGKILLs the coordinator and its
workers once some ranges are stored, appends rows, reruns, and compares again.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

distributed = pytest.importorskip("distributed")

from s3pump.errors import WorkerMismatchError  # noqa: E402
from s3pump.jobs.export import export_table  # noqa: E402
from tests.conftest import S3Env, list_all, run_cli  # noqa: E402
from tests.e2e.localcluster import local_cluster_client  # noqa: E402
from tests.e2e.test_export_cli import make_events_db  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def data_objects(s3env: S3Env, bucket: str, prefix: str) -> dict[str, str]:
    """key (relative to ``prefix``) -> ETag of every data object (no state, no dead-letter queue)."""
    return {k[len(prefix):]: o["ETag"] for k, o in list_all(s3env.boto(), bucket, prefix).items()
            if "/_s3pump/" not in k and "/_dlq/" not in k}


def read_rows(s3env: S3Env, bucket: str, prefix: str) -> pa.Table:
    """Every row of every Parquet object under ``prefix``, sorted by id."""
    s3 = s3env.boto()
    tables = [pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=prefix + k)["Body"].read()))
              for k in sorted(data_objects(s3env, bucket, prefix))]
    return pa.concat_tables(tables).sort_by("id")


def checkpoint(s3env: S3Env, bucket: str, prefix: str, table: str = "events") -> dict[str, Any] | None:
    try:
        body = s3env.boto().get_object(Bucket=bucket, Key=f"{prefix}_s3pump/state/{table}.json")["Body"].read()
    except s3env.boto().exceptions.NoSuchKey:
        return None
    return json.loads(body)


def summary(proc: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return next(rec for rec in lines if rec.get("event") == "summary")


def assert_same_export(s3env: S3Env, bucket: str, one: str, two: str, rows: int) -> None:
    """``two`` holds the objects of ``one`` (keys and ETags) and the same rows, each once: ids 1..rows."""
    assert data_objects(s3env, bucket, two) == data_objects(s3env, bucket, one)
    a, b = read_rows(s3env, bucket, one), read_rows(s3env, bucket, two)
    assert b.num_rows == rows and b.column("id").to_pylist() == list(range(1, rows + 1))  # each row once
    assert b.equals(a)


def export_args(db: Path, dest: str, *extra: str) -> list[str]:
    return ["export", str(db), dest, "--table", "events", "--partition-by", "time:ts:day", "--json",
            "--no-progress", *extra]


@pytest.mark.parametrize("rows, batch_rows, range_rows", [
    (50_000, 5_000, 10_000),
    pytest.param(1_000_000, 100_000, 100_000, marks=pytest.mark.slow),
], ids=["50k-rows", "1M-rows"])
def test_cluster_export_equals_single_process_row_for_row(s3env: S3Env, bucket: str, state_dir: Path,
                                                          tmp_path: Path, rows: int, batch_rows: int,
                                                          range_rows: int) -> None:
    """``export --cluster local:2`` of a generated table: the same keys, ETags and rows as a single-process
    export; the checkpoint ends at the last row with no cut left."""
    db = tmp_path / "events.sqlite"
    make_events_db(db, rows)
    env = {**s3env.env(state_dir), "S3PUMP_EXPORT_RANGE_ROWS": str(range_rows)}
    single = export_table(str(db), "events", f"s3://{bucket}/one", s3env.config(), batch_rows=batch_rows,
                          partition_by=["time:ts:day"])
    assert single.ok
    r = run_cli(export_args(db, f"s3://{bucket}/two", "--batch-rows", str(batch_rows), "--cluster", "local:2"), env)
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert "Traceback" not in err and " INFO " not in err, err
    assert_same_export(s3env, bucket, "one/", "two/", rows)
    s = summary(r)
    assert s["rows_exported"] == rows and s["rows_failed"] == 0 and s["checkpoint"] == rows
    assert s["objects_written"] == single.objects_written == len(data_objects(s3env, bucket, "two/"))
    c = s["cluster"]
    ranges = -(-rows // range_rows)
    assert c["workers"] == 2 and c["shards_planned"] == c["shards_done"] == ranges and c["shards_failed"] == 0
    assert sum(w["files"] for w in c["per_worker"]) == s["objects_written"]
    events = Counter(json.loads(x)["event"] for x in r.stdout.decode().splitlines()[:-1])
    assert events["done"] == s["objects_written"]  # each object's --json line, replayed from its range
    assert "cluster: 2 workers; ranges" in err
    cp = checkpoint(s3env, bucket, "two/")
    assert cp is not None and cp["cursor"] == rows and cp["batches"] == [] and cp["done"] == []
    assert cp["rows_exported"] == rows



def test_coordinator_killed_then_rerun_with_appended_rows_stores_each_row_once(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, client: Any) -> None:
    """SIGKILL the coordinator once some ranges are stored and others not (its ranges already running on
    the workers finish by themselves); append rows; the same command again finishes the recorded cuts under
    their keys and exports the new rows: the result equals a single-process export of the final table, key
    for key and row for row. (The coordinator reaches the module's cluster by its scheduler address.)"""
    db = tmp_path / "events.sqlite"
    make_events_db(db, 20_000)
    env = {**s3env.env(state_dir), "S3PUMP_EXPORT_RANGE_ROWS": "2000"}
    args = export_args(db, f"s3://{bucket}/two", "--batch-rows", "2000", "--cluster", client.scheduler.address)
    slow = {**env, "S3PUMP_WORKER_BWLIMIT": "40KiB"}  # a range (~40 KB) takes about 1 s on its worker
    p = subprocess.Popen([sys.executable, "-m", "s3pump", *args], env=slow, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:  # some range stored: the cursor moved, or a cut is done out of order
            cp = checkpoint(s3env, bucket, "two/")
            if cp is not None and (cp["cursor"] is not None or cp["done"]):
                break
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read().decode() if p.stderr else ""
            time.sleep(0.05)
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    killed = checkpoint(s3env, bucket, "two/")
    assert killed is not None and len(killed["batches"]) == 10 - (killed["cursor"] or 0) // 2000
    assert 0 < len(killed["batches"]) - len(killed["done"]) < 10, killed  # killed with cuts unfinished
    make_events_db(db, 1_000, start_id=20_001)

    r = run_cli(args, env)
    assert r.returncode == 0, r.stderr.decode()
    s = summary(r)
    assert s["checkpoint"] == 21_000 and s["rows_failed"] == 0
    assert s["cluster"]["shards_planned"] == len(killed["batches"]) - len(killed["done"]) + 1  # + the new rows
    single = export_table(str(db), "events", f"s3://{bucket}/one", s3env.config(), batch_rows=2000,
                          partition_by=["time:ts:day"])
    assert single.ok
    assert_same_export(s3env, bucket, "one/", "two/", 21_000)
    cp = checkpoint(s3env, bucket, "two/")
    assert cp is not None and cp["batches"] == [] and cp["done"] == []


@pytest.fixture(scope="module")
def client(s3env: S3Env) -> Iterator[object]:
    """A LocalCluster of 2 worker processes whose environment holds the credentials; its Client."""
    with local_cluster_client(s3env) as c:
        yield c


def spy(client: Any, monkeypatch: pytest.MonkeyPatch, before_run: Any = None) -> list[bytes]:
    """Pickle every payload sent through ``client``; ``before_run(args)`` is called before ``client.run``."""
    sent: list[bytes] = []
    for name in ("submit", "run", "register_plugin"):
        original = getattr(client, name)

        def wrapper(*args: object, _original: object = original, _name: str = name, **kwargs: object) -> object:
            sent.append(pickle.dumps((args, kwargs)))
            if _name == "run" and before_run is not None:
                before_run(args)
            return _original(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(client, name, wrapper)
    return sent


def test_no_secret_in_any_task_payload(s3env: S3Env, bucket: str, tmp_path: Path, client: Any,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The coordinator's config holds the secret; nothing it sends to the cluster does. The API's
    ``cluster=`` takes a ready Client. A bad row goes to the dead-letter queue (written by the coordinator);
    the same export again writes nothing."""
    db = tmp_path / "events.sqlite"
    make_events_db(db, 3_000)
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:  # a bad row: its range's worker hands it back
        conn.execute("UPDATE events SET qty = 'many' WHERE id = 1234")
    sent = spy(client, monkeypatch)
    report = export_table(str(db), "events", f"s3://{bucket}/x", s3env.config(), batch_rows=500,
                          cluster=client, cluster_options={"range_rows": 1000})
    assert report.rows_exported == 2_999 and report.rows_failed == 1 and report.checkpoint == 3_000
    assert report.cluster is not None and report.cluster["shards_done"] == 3
    assert sent and not any(s3env.server.secret_access_key.encode() in p for p in sent)
    assert read_rows(s3env, bucket, "x/").column("id").to_pylist() == [i for i in range(1, 3_001) if i != 1234]
    [entry] = report.dlq_entries  # written by the coordinator, where a single-process export puts it
    dlq = list_all(s3env.boto(), bucket, "x/_dlq/events/")
    assert len(dlq) == 1 and entry.endswith(next(iter(dlq)))
    body = json.loads(s3env.boto().get_object(Bucket=bucket, Key=next(iter(dlq)))["Body"].read())
    assert [r["cursor"] for r in body["rows"]] == [1234] and (body["first"], body["last"]) == (1001, 1500)
    etags = data_objects(s3env, bucket, "x/")

    again = export_table(str(db), "events", f"s3://{bucket}/x", s3env.config(), batch_rows=500,
                         cluster=client, cluster_options={"range_rows": 1000})
    assert again.ok and again.rows_exported == 0 and again.objects_written == 0 and again.checkpoint == 3_000
    assert again.cluster is not None and again.cluster["shards_planned"] == 0  # nothing to do: no task sent
    assert data_objects(s3env, bucket, "x/") == etags


@pytest.mark.parametrize("change", ["moved", "stale-copy"])
def test_a_worker_that_cannot_read_the_database_stops_the_run_before_anything_is_written(
        s3env: S3Env, bucket: str, tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """After the coordinator opened and planned the table, the path changes under it (as on a node that does
    not share it): the file is gone, or another copy with fewer rows is there. One WorkerMismatchError
    (exit 2) naming the worker and why; no object, no checkpoint."""
    db = tmp_path / "events.sqlite"
    make_events_db(db, 1_000)

    def swap(args: Any) -> None:
        db.rename(tmp_path / "elsewhere.sqlite")  # the coordinator keeps reading its open file
        if change == "stale-copy":
            make_events_db(db, 500)

    spy(client, monkeypatch, before_run=swap)
    with pytest.raises(WorkerMismatchError) as e:
        export_table(str(db), "events", f"s3://{bucket}/x", s3env.config(), batch_rows=500, cluster=client)
    msg = str(e.value)
    assert msg.startswith("worker tcp://") and "cannot export the table" in msg and "\n" not in msg
    if change == "moved":
        assert f"{db}: no such SQLite file" in msg
    else:
        assert f"{db}: table events ends at id 500, before the 1000 the coordinator planned" in msg
    assert e.value.exit_code == 2
    assert list_all(s3env.boto(), bucket, "x/") == {}


def test_from_start_on_the_cluster_rewrites_and_deletes_the_superseded_objects(
        s3env: S3Env, bucket: str, tmp_path: Path, client: Any) -> None:
    """An export in batches of 300, then ``--from-start`` on the cluster in batches of 1,000: the objects
    of the first batching are deleted once the cluster run completes; each row is stored once."""
    db = tmp_path / "events.sqlite"
    make_events_db(db, 3_000)
    first = export_table(str(db), "events", f"s3://{bucket}/x", s3env.config(), batch_rows=300)
    assert first.ok and first.objects_written == 10
    old = set(data_objects(s3env, bucket, "x/"))
    report = export_table(str(db), "events", f"s3://{bucket}/x", s3env.config(), batch_rows=1000,
                          from_start=True, cluster=client, cluster_options={"range_rows": 1000})
    assert report.ok and report.rows_exported == 3_000 and report.checkpoint == 3_000
    assert sorted(report.deleted) == sorted(f"x/{k}" for k in old)
    assert set(data_objects(s3env, bucket, "x/")) == {f"events/part-{i}-{i + 999}.parquet" for i in (1, 1001, 2001)}
    assert read_rows(s3env, bucket, "x/").column("id").to_pylist() == list(range(1, 3_001))
    cp = checkpoint(s3env, bucket, "x/")
    assert cp is not None and cp["superseded"] is None and cp["batches"] == []


def test_dedup_on_the_cluster_writes_what_one_process_writes_and_a_rerun_adds_no_duplicate(
        s3env: S3Env, bucket: str, tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``export --dedup`` of a SQLite table partitioned by day, in one process and on ``local:2``: the
    same keys, ETags and rows. Two rows then change and rows are appended; both export again: the
    cluster rewrites the same objects as one process (only those holding changed or new rows) and
    skips the rest, each row stored once. A third run on the cluster finds nothing changed: no object
    written, no row stored twice."""
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    db = tmp_path / "events.sqlite"
    make_events_db(db, 3_000)
    kw: dict[str, Any] = {"batch_rows": 500, "partition_by": ["time:ts:day"], "dedup": True}
    on_cluster: dict[str, Any] = {"cluster": client, "cluster_options": {"range_rows": 1000}}

    def both() -> tuple[Any, Any]:
        one = export_table(str(db), "events", f"s3://{bucket}/one", s3env.config(), **kw)
        two = export_table(str(db), "events", f"s3://{bucket}/two", s3env.config(), **kw, **on_cluster)
        assert one.ok and two.ok
        assert data_objects(s3env, bucket, "two/") == data_objects(s3env, bucket, "one/")
        assert read_rows(s3env, bucket, "two/").equals(read_rows(s3env, bucket, "one/"))
        return one, two

    one, two = both()
    assert two.cluster is not None and two.cluster["shards_done"] == 3
    assert two.objects_written == one.objects_written and two.rows_exported == one.rows_exported == 3_000
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE events SET qty = qty + 1000 WHERE id IN (7, 2222)")
    make_events_db(db, 100, start_id=3_001)
    one, two = both()
    assert two.objects_written == one.objects_written and 2 < two.objects_written < 8  # changed and new groups
    assert two.objects_skipped == one.objects_skipped > 0 and two.rows_unchanged == one.rows_unchanged
    assert read_rows(s3env, bucket, "two/").column("id").to_pylist() == list(range(1, 3_101))  # each row once
    again = export_table(str(db), "events", f"s3://{bucket}/two", s3env.config(), **kw, **on_cluster)
    assert again.ok and again.objects_written == 0 and again.rows_unchanged == 3_100
    assert read_rows(s3env, bucket, "two/").column("id").to_pylist() == list(range(1, 3_101))


@pytest.mark.slow  # two clusters' start and a worker restart: ~60 s on the loaded 2-core machine
def test_a_worker_killed_mid_export_loses_and_duplicates_nothing(s3env: S3Env, bucket: str, state_dir: Path,
                                                                 tmp_path: Path) -> None:
    """SIGKILL one of ``local:2``'s workers once ranges are running: Dask runs its range again (the same cuts,
    the same keys); the run ends complete and equals a single-process export row for row."""
    from tests.e2e.test_cluster import _worker_pids

    db = tmp_path / "events.sqlite"
    make_events_db(db, 20_000)
    env = {**s3env.env(state_dir), "S3PUMP_EXPORT_RANGE_ROWS": "2000", "S3PUMP_WORKER_BWLIMIT": "20KiB"}
    args = export_args(db, f"s3://{bucket}/two", "--batch-rows", "2000", "--cluster", "local:2")
    p = subprocess.Popen([sys.executable, "-m", "s3pump", *args], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while checkpoint(s3env, bucket, "two/") is None:  # the plan is saved: ranges go out now
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read().decode() if p.stderr else ""
            time.sleep(0.05)
        time.sleep(0.5)
        victims = _worker_pids(p.pid)
        assert len(victims) == 2
        os.kill(victims[0], signal.SIGKILL)
        out, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 0, err.decode()
    s = json.loads(out.decode().strip().splitlines()[-1])
    assert s["rows_exported"] == 20_000 and s["checkpoint"] == 20_000 and s["cluster"]["shards_failed"] == 0
    single = export_table(str(db), "events", f"s3://{bucket}/one", s3env.config(), batch_rows=2000,
                          partition_by=["time:ts:day"])
    assert single.ok
    assert_same_export(s3env, bucket, "one/", "two/", 20_000)
    cp = checkpoint(s3env, bucket, "two/")
    assert cp is not None and cp["batches"] == [] and cp["done"] == []


@pytest.mark.slow  # a throttled cluster run, then a rerun: ~60 s on the loaded 2-core machine
def test_sigint_finishes_the_ranges_in_flight_and_a_rerun_completes(s3env: S3Env, bucket: str, state_dir: Path,
                                                                     tmp_path: Path) -> None:
    """The first SIGINT submits no more ranges; those in flight finish and are checkpointed; exit 130. The
    same command again exports the rest: equal to a single-process export, each row once."""
    db = tmp_path / "events.sqlite"
    make_events_db(db, 20_000)
    env = {**s3env.env(state_dir), "S3PUMP_EXPORT_RANGE_ROWS": "2000"}
    args = export_args(db, f"s3://{bucket}/two", "--batch-rows", "2000", "--cluster", "local:2")
    p = subprocess.Popen([sys.executable, "-m", "s3pump", *args], env={**env, "S3PUMP_WORKER_BWLIMIT": "20KiB"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while checkpoint(s3env, bucket, "two/") is None:  # the plan is saved: ranges go out now
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read().decode() if p.stderr else ""
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err.decode()
    s = json.loads(out.decode().strip().splitlines()[-1])
    assert s["stopped"] and s["cluster"]["shards_failed"] == 0 and 0 < s["cluster"]["shards_done"] < 10
    cp = checkpoint(s3env, bucket, "two/")
    assert cp is not None and cp["rows_exported"] == s["rows_exported"] > 0
    assert len(cp["batches"]) - len(cp["done"]) == 10 - s["cluster"]["shards_done"]  # the rest, recorded

    r = run_cli(args, env)
    assert r.returncode == 0, r.stderr.decode()
    assert summary(r)["cluster"]["shards_done"] == 10 - s["cluster"]["shards_done"]
    single = export_table(str(db), "events", f"s3://{bucket}/one", s3env.config(), batch_rows=2000,
                          partition_by=["time:ts:day"])
    assert single.ok
    assert_same_export(s3env, bucket, "one/", "two/", 20_000)


@pytest.mark.parametrize("fmt", ["jsonl", "protobuf"])
def test_other_formats_on_the_cluster_write_what_one_process_writes(s3env: S3Env, bucket: str, tmp_path: Path,
                                                                    client: Any, fmt: str) -> None:
    """JSON Lines and protobuf objects from the workers: the keys and bytes of a single-process export
    (the protobuf schema written once, by the coordinator)."""
    db = tmp_path / "events.sqlite"
    make_events_db(db, 2_000)
    kw: dict[str, Any] = {"batch_rows": 500, "partition_by": ["column:entity"], "format": fmt}
    single = export_table(str(db), "events", f"s3://{bucket}/one", s3env.config(), **kw)
    report = export_table(str(db), "events", f"s3://{bucket}/two", s3env.config(), cluster=client,
                          cluster_options={"range_rows": 1000}, **kw)
    assert single.ok and report.ok and report.rows_exported == single.rows_exported == 2_000
    assert report.cluster is not None and report.cluster["shards_done"] == 2
    one, two = data_objects(s3env, bucket, "one/"), data_objects(s3env, bucket, "two/")
    assert two == one
    schema = {k for k in two if k.startswith("_schema/")}
    assert schema == ({"_schema/events.proto"} if fmt == "protobuf" else set())
    assert len(two) - len(schema) == report.objects_written == 20


def test_an_evolved_schema_exported_on_the_cluster_lands_under_its_version(s3env: S3Env, bucket: str,
                                                                            tmp_path: Path, client: Any) -> None:
    """Issue 25: a column added between runs, then ``--schema-evolution --cluster``: the workers name the new
    objects for version 2 (``events/_v2/…``, metadata ``s3pump-schema-version: 2``), as a single-process
    export of the same two runs does: the same keys and bytes; the version-1 objects stay as they were."""
    kw: dict[str, Any] = {"batch_rows": 500, "partition_by": ["column:entity"]}
    for prefix, cluster in (("one", None), ("two", client)):
        db = tmp_path / f"{prefix}.sqlite"
        make_events_db(db, 1_000)
        first = export_table(str(db), "events", f"s3://{bucket}/{prefix}", s3env.config(), cluster=cluster,
                             cluster_options={"range_rows": 500} if cluster else None, **kw)
        assert first.ok and first.rows_exported == 1_000
        conn = sqlite3.connect(db)
        conn.execute("ALTER TABLE events ADD COLUMN note TEXT")
        conn.execute("INSERT INTO events SELECT id + 1000, ts, entity, name, amount, qty, 'note-' || id FROM events")
        conn.commit()
        conn.close()
        evolved = export_table(str(db), "events", f"s3://{bucket}/{prefix}", s3env.config(), cluster=cluster,
                               cluster_options={"range_rows": 500} if cluster else None, schema_evolution=True,
                               **kw)
        assert evolved.ok and evolved.rows_exported == 1_000, evolved
    one, two = data_objects(s3env, bucket, "one/"), data_objects(s3env, bucket, "two/")
    assert two == one
    v2 = sorted(k for k in two if k.startswith("events/_v2/"))
    assert len(v2) == 10 and "events/_v2/entity=entity-0/part-1001-1500.parquet" in v2
    assert len(two) - len(v2) == 10 and not any("_v" in k for k in set(two) - set(v2))
    s3 = s3env.boto()
    head = s3.head_object(Bucket=bucket, Key="two/" + v2[0])
    assert head["Metadata"]["s3pump-schema-version"] == "2"
    body = s3.get_object(Bucket=bucket, Key="two/" + v2[0])["Body"].read()
    assert "note" in pq.read_table(io.BytesIO(body)).column_names
    cp = checkpoint(s3env, bucket, "two/")
    assert cp is not None and cp["schema_version"] == 2 and cp["cursor"] == 2_000 and cp["batches"] == []
