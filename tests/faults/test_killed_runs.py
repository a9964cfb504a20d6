"""Issue 24, runs that were killed or stopped, against SeaweedFS through the real CLI:

* ``sync`` and ``stream`` SIGKILLed while a multipart upload is open: the next run of the command
  (for a stream: the next stream to that key, a different stream) and ``s3pump cleanup`` with its
  default ``--older-than 24h`` abort it at once; a live run of the same command, started meanwhile,
  keeps its upload and finishes;
* ``upload`` Ctrl-C'd after some files are done, some of those objects deleted behind its back: the
  rerun uploads them again (it does not trust its journal over the bucket), exit 0, the counts right.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli
from tests.faults.conftest import MIB

#: slow enough that a 20 MiB run is still sending when it is killed, fast enough for a test
BWLIMIT = "2MiB"


def _uploads(client: Any, bucket: str) -> list[tuple[str, str]]:
    return [(u["Key"], u["UploadId"]) for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def _start(verb: str, data_path: Path, bucket: str, env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
    """``sync DIR s3://bucket/d/`` (DIR holds ``data_path``) or ``stream s3://bucket/d/big.bin < data_path``."""
    if verb == "sync":
        args = ["sync", str(data_path.parent), f"s3://{bucket}/d/"]
        with open(os.devnull, "rb") as stdin:
            return _popen(args, env, stdin, *extra)
    with open(data_path, "rb") as stdin:  # the child has its own copy of the descriptor
        return _popen(["stream", f"s3://{bucket}/d/big.bin"], env, stdin, *extra)


def _popen(args: list[str], env: dict[str, str], stdin: IO[bytes], *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "s3pump", *args, "--part-size", "5MiB", "--no-progress", *extra],
                            env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_uploads(client: Any, bucket: str, proc: subprocess.Popen[bytes], count: int) -> list[tuple[str, str]]:
    """Poll ListMultipartUploads until ``count`` uploads are open (``proc`` still running)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before its upload was open: "
                        f"{proc.stderr.read().decode() if proc.stderr else ''}")
        uploads = _uploads(client, bucket)
        if len(uploads) >= count:
            return uploads
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no multipart upload was opened")


@pytest.mark.e2e
@pytest.mark.parametrize("after", ["rerun", "cleanup"])
@pytest.mark.parametrize("verb", ["sync", "stream"])
def test_sigkill_mid_multipart_then_next_run_or_cleanup_aborts_it(
        tmp_path: Path, s3env: S3Env, bucket: str, state_dir: Path, verb: str, after: str) -> None:
    rng = random.Random(24)
    env = s3env.env(state_dir)
    client = s3env.boto()
    # a live run of the same command (a sync of the same tree; a stream to the same key), running throughout:
    # its upload is its own, which no other run (each sweeps what dead runs left) and no cleanup touches
    live_data = tmp_path / "live" / "big.bin"
    live_data.parent.mkdir()
    live_data.write_bytes(rng.randbytes(20 * MIB + 3))  # 20 s at 1 MiB/s: live until the end of the checks (5-10 s)
    live = _start(verb, live_data, bucket, env, "--bwlimit", "1MiB")
    try:
        [(key, live_id)] = _wait_uploads(client, bucket, live, 1)
        assert key == "d/big.bin"
        killed_data = tmp_path / "killed" / "big.bin"
        killed_data.parent.mkdir()
        killed_data.write_bytes(rng.randbytes(20 * MIB + 7))
        killed = _start(verb, killed_data, bucket, env, "--bwlimit", BWLIMIT)
        [killed_id] = {u for _, u in _wait_uploads(client, bucket, killed, 2)} - {live_id}
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert set(_uploads(client, bucket)) == {(key, killed_id), (key, live_id)}  # the kill left it open
        if after == "rerun":
            rerun_data = tmp_path / "rerun" / "big.bin"
            rerun_data.parent.mkdir()
            rerun_data.write_bytes(rng.randbytes(11 * MIB + 5))
            rerun = _start(verb, rerun_data if verb == "stream" else killed_data, bucket, env)
            _, err = rerun.communicate(timeout=300)
            assert rerun.returncode == 0, err.decode()[-2000:]
            expect = rerun_data if verb == "stream" else killed_data
            assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == expect.read_bytes()
        else:
            dry = run_cli(["cleanup", f"s3://{bucket}/", "--dry-run", "--json"], env)  # says so, aborts nothing
            assert dry.returncode == 0, dry.stderr.decode()
            would = [json.loads(line) for line in dry.stdout.decode().splitlines()]
            assert [(w["event"], w["upload_id"]) for w in would] == [("would_abort", killed_id)]
            assert len(_uploads(client, bucket)) == 2
            r = run_cli(["cleanup", f"s3://{bucket}/"], env)  # the default --older-than 24h
            assert r.returncode == 0, r.stderr.decode()
        open_now = {u for _, u in _uploads(client, bucket)}
        assert killed_id not in open_now, f"the killed {verb}'s upload is still open after the {after}"
        assert open_now == {live_id} and live.poll() is None, "the live run's upload was touched"
        _, err = live.communicate(timeout=300)
        assert live.returncode == 0, err.decode()[-2000:]
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
    assert _uploads(client, bucket) == []
    # the live run finished last: its bytes
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == live_data.read_bytes()
    assert not list((state_dir / "journals").glob("*.sqlite")), "a finished run's journal was left behind"


def _done_in_journal(state_dir: Path) -> set[str]:
    [journal] = (state_dir / "journals").glob("upload-*.sqlite")
    with sqlite3.connect(str(journal)) as db:
        return {k for (k,) in db.execute("SELECT key FROM files WHERE status='done'")}


@pytest.mark.e2e
def test_upload_rerun_after_ctrl_c_uploads_the_done_objects_deleted_meanwhile(
        tmp_path: Path, s3env: S3Env, bucket: str, state_dir: Path) -> None:
    rng = random.Random(117)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {f"{'sub/' if i % 3 == 0 else ''}f{i:03d}.txt": rng.randbytes(rng.randrange(1, 30_000))
             for i in range(60)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(delay_s={"PutObject": 0.2}))  # slow: time to interrupt
    proxy.start()
    try:
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url}  # the rerun's too (one journal)
        args = ["upload", str(src), f"s3://{bucket}/u/", "--no-progress", "--concurrency", "2"]
        proc = subprocess.Popen([sys.executable, "-m", "s3pump", *args], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while sum(e.type == "PutObject" and e.status == 200 for e in proxy.log) < 20:
            assert proc.poll() is None and time.monotonic() < deadline, "the upload ended before the Ctrl-C"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err.decode()
        client = s3env.boto()
        done = _done_in_journal(state_dir)
        assert len(done) >= 10 and set(list_all(client, bucket, "u/")) >= done
        deleted = sorted(done)[::2]  # by a person, a lifecycle rule, another tool
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in deleted]})
        proxy.plan = FaultPlan()
        r = run_cli([*args, "--json"], env)
    finally:
        proxy.stop()
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["event"] == "summary"
    assert summary["files_skipped"] == len(done) - len(deleted)
    assert summary["files_done"] == len(files) - len(done) + len(deleted)
    listed = list_all(client, bucket, "u/")
    assert set(listed) == {f"u/{name}" for name in files}
    for name, data in files.items():
        assert client.get_object(Bucket=bucket, Key=f"u/{name}")["Body"].read() == data, name
    v = run_cli(["verify", str(src), f"s3://{bucket}/u/"], s3env.env(state_dir))
    assert v.returncode == 0, (v.stdout + v.stderr).decode()[-2000:]
    assert not list((state_dir / "journals").glob("upload-*.sqlite")), "the finished run's journal was kept"
