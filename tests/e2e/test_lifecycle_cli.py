"""``s3pump lifecycle``, ``mb``/``rb``/``versioning`` and version IDs, end to end: the real CLI
against SeaweedFS and against moto (server mode, SigV4 checked), read back with boto3."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.motoserver import MotoEnv

pytestmark = pytest.mark.e2e

UNRELATED = [
    {"ID": "logs-expiry", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 90}},
    {"ID": "tmp-cleanup", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
]


@pytest.fixture(params=["seaweedfs", "moto"])
def server(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("s3env" if request.param == "seaweedfs" else "moto_env")


@pytest.fixture
def new_bucket(server: Any) -> str:
    name = f"l-{uuid.uuid4().hex[:12]}"
    server.boto().create_bucket(Bucket=name)
    return name


def rules_of(server: Any, bucket: str) -> list[dict[str, Any]]:
    client = server.boto()
    try:
        return list(client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])
    except client.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
        return []


def by_id(rules: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["ID"]: r for r in rules}


def test_lifecycle_adds_and_removes_its_rule_and_keeps_two_unrelated_ones(
    server: Any, new_bucket: str, state_dir: Path
) -> None:
    env = server.env(state_dir)
    server.boto().put_bucket_lifecycle_configuration(Bucket=new_bucket, LifecycleConfiguration={"Rules": UNRELATED})
    before = by_id(rules_of(server, new_bucket))
    url = f"s3://{new_bucket}/exports/"
    flags = ["--expire-after", "365d", "--noncurrent-expire-after", "30d", "--abort-incomplete-multipart-after", "7d"]
    if isinstance(server, MotoEnv):
        flags += ["--transition", "STANDARD_IA:30d", "--transition", "GLACIER:90d"]  # SeaweedFS has none

    dry = run_cli(["lifecycle", url, *flags, "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert b"+ s3pump:exports/" in dry.stdout and b"(2 other rules unchanged)" in dry.stdout
    assert by_id(rules_of(server, new_bucket)) == before  # --dry-run changed nothing

    added = run_cli(["lifecycle", url, *flags, "--json"], env)
    assert added.returncode == 0, added.stderr
    report = json.loads(added.stdout)
    assert report["written"] and len(report["after"]) == 3
    held = by_id(rules_of(server, new_bucket))
    assert set(held) == {"logs-expiry", "tmp-cleanup", "s3pump:exports/"}
    assert {k: held[k] for k in before} == before  # the two unrelated rules, exactly as they were
    mine = held["s3pump:exports/"]
    assert mine["Filter"] == {"Prefix": "exports/"} and mine["Expiration"] == {"Days": 365}
    assert mine["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert mine["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    if isinstance(server, MotoEnv):
        assert mine["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"},
                                       {"Days": 90, "StorageClass": "GLACIER"}]

    again = run_cli(["lifecycle", url, *flags], env)  # a rerun is idempotent: nothing written
    assert again.returncode == 0 and b"unchanged" in again.stderr

    show = run_cli(["lifecycle", f"s3://{new_bucket}/exports/2025/"], env)
    assert show.returncode == 0 and show.stdout.decode().startswith("s3pump:exports/")

    dry_remove = run_cli(["lifecycle", url, "--remove", "--dry-run"], env)
    assert dry_remove.returncode == 0 and b"- s3pump:exports/" in dry_remove.stdout
    assert len(rules_of(server, new_bucket)) == 3

    removed = run_cli(["lifecycle", url, "--remove"], env)
    assert removed.returncode == 0, removed.stderr
    assert by_id(rules_of(server, new_bucket)) == before


@pytest.fixture
def listener() -> Iterator[tuple[str, list[int]]]:
    """An endpoint that counts the connections made to it (and answers none)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    stop.set()
    t.join()
    sock.close()


@pytest.mark.parametrize("flags", [
    ["--expire-after", "0d"],
    ["--transition", "STANDARD_IA:10d"],
    ["--transition", "GLACIER:30d", "--transition", "STANDARD_IA:60d"],
    ["--transition", "FROZEN:40d"],
    ["--expire-after", "30d", "--transition", "GLACIER:30d"],
    ["--remove", "--expire-after", "3d"],
])
def test_an_invalid_rule_is_refused_before_any_request(
    flags: list[str], listener: tuple[str, list[int]], state_dir: Path, tmp_path: Path
) -> None:
    endpoint, accepted = listener
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
           "S3PUMP_STATE_DIR": str(state_dir), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = run_cli(["lifecycle", "s3://bucket/p/", *flags, "--endpoint-url", endpoint], env, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("s3pump: error: ") and b"Traceback" not in r.stderr
    db = tmp_path / "db.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE t (id INTEGER PRIMARY KEY)").connection.commit()
    items = [f"{f.lstrip('-')}={v}" for f, v in zip(flags[::2], flags[1::2], strict=False)]
    if "--remove" not in flags:  # export --lifecycle refuses the same rules, also before any request
        e = run_cli(["export", str(db), "s3://bucket/p", "--table", "t", "--endpoint-url", endpoint,
                     *[a for i in items for a in ("--lifecycle", i)]], env, timeout=60)
        assert e.returncode == 2 and len(e.stderr.decode().strip().splitlines()) == 1, e.stderr
    assert accepted == []  # not one connection


def test_seaweedfs_refuses_transitions_in_one_line_and_changes_nothing(
    s3env: Any, bucket: str, state_dir: Path
) -> None:
    env = s3env.env(state_dir)
    s3env.boto().put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": UNRELATED})
    r = run_cli(["lifecycle", f"s3://{bucket}/x/", "--transition", "GLACIER:30d"], env)
    assert r.returncode == 2 and b"NotImplemented" in r.stderr and len(r.stderr.splitlines()) == 1
    assert by_id(rules_of(s3env, bucket)) == by_id(UNRELATED)


def test_mb_versioning_rb(server: Any, state_dir: Path) -> None:
    env = server.env(state_dir)
    name = f"m-{uuid.uuid4().hex[:12]}"
    made = run_cli(["mb", f"s3://{name}", "--versioning"], env)
    assert made.returncode == 0 and made.stdout == f"make_bucket: {name}\n".encode(), made.stderr
    status = run_cli(["versioning", f"s3://{name}", "--json"], env)
    assert json.loads(status.stdout) == {"event": "versioning", "bucket": name, "status": "Enabled"}
    assert server.boto().get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    again = run_cli(["mb", f"s3://{name}"], env)
    assert again.returncode == 1 and b"BucketAlreadyExists" in again.stderr
    suspended = run_cli(["versioning", f"s3://{name}", "--suspend"], env)
    assert suspended.stdout == f"s3://{name}: versioning Suspended\n".encode()
    client = server.boto()
    client.put_object(Bucket=name, Key="a", Body=b"1")
    refused = run_cli(["rb", f"s3://{name}"], env)
    assert refused.returncode == 1 and b"BucketNotEmpty" in refused.stderr
    client.head_bucket(Bucket=name)  # still there, with its object
    assert client.get_object(Bucket=name, Key="a")["Body"].read() == b"1"
    removed = run_cli(["rb", f"s3://{name}", "--force"], env)
    assert removed.returncode == 0 and removed.stdout == f"remove_bucket: {name}\n".encode(), removed.stderr
    assert name not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    plain = f"m-{uuid.uuid4().hex[:12]}"
    assert run_cli(["mb", f"s3://{plain}"], env).returncode == 0
    assert run_cli(["versioning", f"s3://{plain}"], env).stdout == f"s3://{plain}: versioning never enabled\n".encode()
    assert run_cli(["rb", f"s3://{plain}"], env).stdout == f"remove_bucket: {plain}\n".encode()


def versions_of(server: Any, bucket: str, key: str) -> set[str]:
    resp = server.boto().list_object_versions(Bucket=bucket, Prefix=key)
    return {v["VersionId"] for v in resp.get("Versions", []) if v["Key"] == key}


def test_reexport_of_a_changed_partition_leaves_two_versions_named_in_the_events(
    server: Any, new_bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    env = server.env(state_dir)
    server.boto().put_bucket_versioning(Bucket=new_bucket, VersioningConfiguration={"Status": "Enabled"})
    server.boto().put_bucket_lifecycle_configuration(Bucket=new_bucket, LifecycleConfiguration={"Rules": UNRELATED})
    db = tmp_path / "db.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, kind TEXT, note TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(1, "a", "x"), (2, "b", "y"), (3, "a", "z")])
    conn.commit()
    args = ["export", str(db), f"s3://{new_bucket}/lake", "--table", "t", "--format", "jsonl", "--dedup",
            "--partition-by", "column:kind", "--json", "--no-progress",
            "--lifecycle", "expire-after=365d", "--lifecycle", "noncurrent-expire-after=30d"]
    first = run_cli(args, env)
    assert first.returncode == 0, first.stderr
    conn.execute("UPDATE t SET note = 'changed' WHERE id = 3")
    conn.commit()
    second = run_cli(args, env)
    assert second.returncode == 0, second.stderr
    done = [json.loads(line) for line in (first.stdout + second.stdout).splitlines()]
    done = [e for e in done if e.get("event") == "done" and "/kind=a/" in e["key"]]
    assert len(done) == 2 and done[0]["key"] == done[1]["key"] and done[0]["key"].startswith("lake/t/")
    ids = {e["version_id"] for e in done}
    assert len(ids) == 2 and versions_of(server, new_bucket, done[0]["key"]) == ids
    checkpoint = json.loads(server.boto().get_object(Bucket=new_bucket, Key="lake/_s3pump/state/t.json")["Body"].read())
    assert checkpoint["versions"][done[0]["key"]] == done[1]["version_id"]
    held = by_id(rules_of(server, new_bucket))  # the rule for lake/t/, installed once, the others kept
    assert set(held) == {"logs-expiry", "tmp-cleanup", "s3pump:lake/t/"}
    assert held["s3pump:lake/t/"]["Filter"] == {"Prefix": "lake/t/"}


def test_upload_and_stream_report_version_ids(server: Any, new_bucket: str, state_dir: Path,
                                              tmp_path: Path) -> None:
    env = server.env(state_dir)
    server.boto().put_bucket_versioning(Bucket=new_bucket, VersioningConfiguration={"Status": "Enabled"})
    f = tmp_path / "f.txt"
    seen: list[str] = []
    for body in (b"one", b"two"):
        f.write_bytes(body)
        up = run_cli(["upload", str(f), f"s3://{new_bucket}/u/f.txt", "--json", "--no-progress"], env)
        assert up.returncode == 0, up.stderr
        seen += [e["version_id"] for e in map(json.loads, up.stdout.splitlines()) if e.get("event") == "done"]
        st = run_cli(["stream", f"s3://{new_bucket}/s/obj", "--json", "--no-progress"], env, input=body * 1000)
        assert st.returncode == 0, st.stderr
        seen.append(json.loads(st.stdout)["version_id"])
    assert all(seen) and len(set(seen)) == 4
    assert versions_of(server, new_bucket, "u/f.txt") == {seen[0], seen[2]}
    assert versions_of(server, new_bucket, "s/obj") == {seen[1], seen[3]}


def test_a_multipart_stream_leaves_one_version(server: Any, new_bucket: str, state_dir: Path) -> None:
    """A multipart stream gets its md5 metadata (--md5) by a copy onto itself after completion; in a
    versioned bucket that copy is a second version of the same bytes. Only the final one stays."""
    env = server.env(state_dir)
    server.boto().put_bucket_versioning(Bucket=new_bucket, VersioningConfiguration={"Status": "Enabled"})
    body = bytes(range(256)) * (44 * 1024)  # 11 MiB: three 5 MiB parts
    st = run_cli(["stream", f"s3://{new_bucket}/big", "--part-size", "5MiB", "--json", "--no-progress", "--md5"],
                 env,
                 input=body)
    assert st.returncode == 0, st.stderr
    report = json.loads(st.stdout)
    assert report["parts"] == 3 and report["version_id"]
    assert versions_of(server, new_bucket, "big") == {report["version_id"]}
    obj = server.boto().get_object(Bucket=new_bucket, Key="big", VersionId=report["version_id"])
    assert obj["Body"].read() == body and obj["Metadata"]["md5"] == report["md5"]
