"""A real outage: the endpoint stops answering mid-run (connections refused) and comes back; the
run ends with every file uploaded and nothing listed as failed (issue: an outage costs time, not files)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from s3pump.jobs.generate import generate
from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all


@pytest.mark.e2e
def test_endpoint_down_for_8_seconds_loses_no_file(s3env: S3Env, warm_bucket: str, tmp_path: Path,
                                                   state_dir: Path) -> None:
    src = tmp_path / "src"
    generate(src, count=300, size_bytes=16 * 1024, seed=5)
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(delay_s={"PutObject": 0.05}))
    port = proxy.start()
    env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_MAX_ATTEMPTS": "3",
           "S3PUMP_BACKOFF_MAX": "0.2", "S3PUMP_RETRY_BUDGET": "50"}
    failed_list = tmp_path / "failed.jsonl"
    cli = subprocess.Popen([sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{warm_bucket}/o/", "--json",
                            "--no-progress", "--concurrency", "4", "--failed-list", str(failed_list)],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert cli.stdout is not None
        done = 0
        for line in cli.stdout:
            if json.loads(line)["event"] == "done":
                done += 1
                if done == 50:
                    break
        proxy.stop()  # the endpoint is gone: connections are refused
        time.sleep(8.0)
        proxy = FaultProxy(s3env.endpoint_url, FaultPlan(), port=port)  # back, on the same address
        proxy.start()
        out, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
        proxy.stop()
    assert cli.returncode == 0, err.decode()
    summary = json.loads(out.decode().splitlines()[-1])
    assert summary["files_failed"] == 0 and summary["retries"] > 0
    assert len(list_all(s3env.boto(), warm_bucket, "o/")) == 300
    assert not failed_list.exists()
