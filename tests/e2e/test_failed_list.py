"""A server that dies mid-run: the failed files are listed, written to the failed-list, and uploaded
by --from-list once the server is back."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import pytest

from s3pump.devserver import start_server, stop_server
from s3pump.jobs.generate import generate
from tests.conftest import S3Env, list_all, run_cli


@pytest.mark.e2e
def test_server_dies_mid_run_then_from_list_completes(tmp_path: Path) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="s3pump-dying-"))
    server, proc = start_server(data_dir)
    try:
        env_helper = S3Env(server)
        client = env_helper.boto()
        client.create_bucket(Bucket="dying")
        src = tmp_path / "src"
        generate(src, count=200, size_bytes=64 * 1024, seed=3)
        files = {p.relative_to(src).as_posix(): p for p in src.rglob("*") if p.is_file()}
        state = tmp_path / "state"
        # the server stays dead past the outage tolerance (shortened here, default 60 s): files fail
        env = {**env_helper.env(state), "S3PUMP_MAX_ATTEMPTS": "3", "S3PUMP_BACKOFF_MAX": "0.2",
               "S3PUMP_OUTAGE_TOLERANCE": "2s"}
        failed_list = tmp_path / "failed.jsonl"
        cli = subprocess.Popen(
            [sys.executable, "-m", "s3pump", "upload", str(src), "s3://dying/p/", "--json", "--no-progress",
             "--concurrency", "2", "--failed-list", str(failed_list)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert cli.stdout is not None
        done_before_kill = 0
        for line in cli.stdout:
            if json.loads(line)["event"] == "done":
                done_before_kill += 1
                if done_before_kill == 60:
                    stop_server(proc, grace_s=0)  # SIGKILL: the server is gone mid-run
                    break
        rest, err = cli.communicate(timeout=300)
        events = [json.loads(x) for x in rest.decode().splitlines()]
        summary = events[-1]
        assert cli.returncode == 1, err.decode()
        assert summary["files_failed"] > 0
        assert summary["files_done"] + summary["files_failed"] == len(files)
        assert "Traceback" not in err.decode() and "failed files written to" in err.decode()
        failed = [json.loads(x) for x in failed_list.read_text().splitlines()]
        assert len(failed) == summary["files_failed"]
        assert {f["key"] for f in failed} <= {f"p/{k}" for k in files}

        # the server comes back on the same ports and data: a rerun with --from-list finishes the job
        server2, proc = start_server(data_dir, ports=server.ports, access_key_id=server.access_key_id,
                                     secret_access_key=server.secret_access_key)
        r = run_cli(["upload", "--from-list", str(failed_list), "s3://dying/p/", "--json", "--no-progress"], env)
        assert r.returncode == 0, r.stderr.decode()
        rerun = [json.loads(x) for x in r.stdout.decode().splitlines()]
        assert {e["key"] for e in rerun if e["event"] == "done"} == {f["key"] for f in failed}
        c2 = boto3.client("s3", endpoint_url=server2.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=server2.access_key_id,
                          aws_secret_access_key=server2.secret_access_key)
        objects = list_all(c2, "dying", "p/")
        assert set(objects) == {f"p/{k}" for k in files}
        for rel, path in files.items():
            assert objects[f"p/{rel}"]["ETag"].strip('"') == hashlib.md5(path.read_bytes()).hexdigest()
    finally:
        stop_server(proc, grace_s=1)
        shutil.rmtree(data_dir, ignore_errors=True)
