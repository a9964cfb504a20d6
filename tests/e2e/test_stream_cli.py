"""End to end: the real `s3pump stream` CLI against SeaweedFS. Every failure case checks that
no object and no multipart upload (ListMultipartUploads) remain."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3pump.jobs.stream import stream
from s3pump.sources.stdin import PartSchedule
from tests.conftest import S3Env, list_all, run_cli

pytestmark = pytest.mark.e2e

MIB = 2**20
CHINOOK = Path(__file__).resolve().parents[3] / "shared" / "data" / "Chinook_Sqlite.sqlite"
if not CHINOOK.exists():
    CHINOOK = Path("/work/shared/data/Chinook_Sqlite.sqlite")


def _uploads(s3env: S3Env, bucket: str) -> list[dict]:
    return s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def _assert_nothing_left(s3env: S3Env, bucket: str) -> None:
    assert list_all(s3env.boto(), bucket) == {}
    assert _uploads(s3env, bucket) == []


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "s3pump", *args]


@pytest.mark.skipif(not CHINOOK.exists(), reason="Chinook sample database not available")
def test_chinook_dump_through_gzip(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """The issue's pipeline: a SQL dump of Chinook | gzip | s3pump stream; the object's SHA-256
    equals the pipeline's own output (tee'd to a local file)."""
    local = tmp_path / "chinook.sql.gz"
    dump = (f"import sqlite3, sys; c = sqlite3.connect({str(CHINOOK)!r}); "
            "[sys.stdout.write(line + '\\n') for line in c.iterdump()]")
    pipeline = (f"set -o pipefail; {sys.executable} -c \"{dump}\" | gzip | tee {local} | "
                f"{sys.executable} -m s3pump stream s3://{bucket}/backups/chinook.sql.gz --json "
                "--part-size 5MiB --sha256")
    proc = subprocess.run(["bash", "-c", pipeline], env=s3env.env(state_dir), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    expected = hashlib.sha256(local.read_bytes()).hexdigest()
    body = s3env.boto().get_object(Bucket=bucket, Key="backups/chinook.sql.gz")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == expected == report["sha256"]
    head = s3env.boto().head_object(Bucket=bucket, Key="backups/chinook.sql.gz")
    assert head["Metadata"]["sha256"] == expected
    assert head["ETag"].strip('"') == report["etag"]
    assert _uploads(s3env, bucket) == []


def test_multipart_stream_roundtrip(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    data = os.urandom(17 * MIB + 5)
    proc = run_cli(["stream", f"s3://{bucket}/s.bin", "--part-size", "5MiB", "--json", "--metadata", "team=db",
                    "--content-type", "application/octet-stream", "--sha256", "--md5"], s3env.env(state_dir),
                   input=data)
    assert proc.returncode == 0, proc.stderr.decode()
    report = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert report["parts"] == 4 and report["bytes"] == len(data)
    assert report["part_sizes"] == [{"size_bytes": 5 * MIB, "count": 4}]
    client = s3env.boto()
    assert client.get_object(Bucket=bucket, Key="s.bin")["Body"].read() == data
    head = client.head_object(Bucket=bucket, Key="s.bin")
    assert head["Metadata"] == {"team": "db", "md5": hashlib.md5(data).hexdigest(),
                                "sha256": hashlib.sha256(data).hexdigest()}
    assert head["ContentType"] == "application/octet-stream"
    assert head["ETag"].strip('"') == report["etag"] and report["etag"].endswith("-4")
    assert _uploads(s3env, bucket) == []


def test_empty_stdin_is_a_zero_byte_object(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    proc = run_cli(["stream", f"s3://{bucket}/empty", "--sha256"], s3env.env(state_dir), input=b"")
    assert proc.returncode == 0, proc.stderr.decode()
    head = s3env.boto().head_object(Bucket=bucket, Key="empty")
    assert head["ContentLength"] == 0
    assert head["Metadata"]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_input_fifo_and_spool_dir(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    data = os.urandom(12 * MIB)
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    spool = tmp_path / "spool"
    proc = subprocess.Popen(_cli("stream", f"s3://{bucket}/f.bin", "--input", str(fifo), "--part-size", "5MiB",
                                 "--spool-dir", str(spool)),
                            env=s3env.env(state_dir), stderr=subprocess.PIPE)
    with open(fifo, "wb") as f:
        f.write(data)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert s3env.boto().get_object(Bucket=bucket, Key="f.bin")["Body"].read() == data
    assert list(spool.iterdir()) == []  # every spool file deleted (and the run's own directory)


def test_expected_size_mismatch_aborts(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    proc = run_cli(["stream", f"s3://{bucket}/short", "--part-size", "5MiB", "--expected-size", "12MiB"],
                   s3env.env(state_dir), input=os.urandom(11 * MIB))
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "expected 12582912" in err and "Traceback" not in err
    _assert_nothing_left(s3env, bucket)


def test_producer_killed_mid_stream_leaves_nothing(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    """The producer dies (SIGKILL) after 11 MiB of 20: s3pump sees the pipe end short of
    --expected-size and aborts."""
    producer = subprocess.Popen(
        [sys.executable, "-c", "import os, signal, sys; sys.stdout.buffer.write(os.urandom(11 * 2**20)); "
         "sys.stdout.flush(); os.kill(os.getpid(), signal.SIGKILL)"], stdout=subprocess.PIPE)
    assert producer.stdout is not None
    proc = subprocess.run(_cli("stream", f"s3://{bucket}/dump", "--part-size", "5MiB", "--expected-size", "20MiB"),
                          stdin=producer.stdout, env=s3env.env(state_dir), capture_output=True, timeout=60)
    producer.stdout.close()
    assert producer.wait() == -signal.SIGKILL
    assert proc.returncode == 1, proc.stderr.decode()
    assert b"nothing was stored" in proc.stderr
    _assert_nothing_left(s3env, bucket)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_stream_aborts(s3env: S3Env, bucket: str, state_dir: Path, sig: signal.Signals) -> None:
    """Ctrl-C / SIGTERM once the multipart upload exists and parts went up: exit 130, no object,
    no multipart upload left."""
    proc = subprocess.Popen(_cli("stream", f"s3://{bucket}/live", "--part-size", "5MiB"), stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=s3env.env(state_dir))
    assert proc.stdin is not None
    proc.stdin.write(os.urandom(16 * MIB))  # 3 full parts; the stream stays open
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not _uploads(s3env, bucket) and time.monotonic() < deadline:
        time.sleep(0.1)
    uploads = _uploads(s3env, bucket)
    assert uploads, "the multipart upload never started"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait for at least one part on the server
        parts = s3env.boto().list_parts(Bucket=bucket, Key="live", UploadId=uploads[0]["UploadId"])
        if parts.get("Parts"):
            break
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    proc.stdin.close()
    assert proc.returncode == 130, err.decode()
    assert b"cancelled" in err
    _assert_nothing_left(s3env, bucket)


def test_growing_part_sizes_on_s3(s3env: S3Env, bucket: str) -> None:
    """The growth schedule on a real server, scaled: 5 MiB parts, doubling after part 2 (a test-only
    PartSchedule); 4 parts hold 38 MiB where fixed 5 MiB parts would hold 20 MiB."""
    schedule = PartSchedule(start_bytes=5 * MIB, flat_parts=2, double_every_parts=1, max_parts=4)
    assert schedule.capacity_bytes() == 40 * MIB
    data = os.urandom(38 * MIB)
    report = stream(io.BytesIO(data), f"s3://{bucket}/grow.bin", s3env.config(concurrency=4), schedule=schedule,
                    md5=True)
    assert report.part_sizes == [(5 * MIB, 2), (10 * MIB, 1), (20 * MIB, 1)] and report.parts == 4
    client = s3env.boto()
    assert client.get_object(Bucket=bucket, Key="grow.bin")["Body"].read() == data
    assert client.head_object(Bucket=bucket, Key="grow.bin")["Metadata"]["md5"] == hashlib.md5(data).hexdigest()
    with pytest.raises(Exception, match="expected-size"):
        stream(io.BytesIO(os.urandom(41 * MIB)), f"s3://{bucket}/over.bin", s3env.config(concurrency=4),
               schedule=schedule)
    assert "over.bin" not in list_all(client, bucket) and _uploads(s3env, bucket) == []
