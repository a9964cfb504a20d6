"""--embedded: the first command starts a local SeaweedFS and creates the bucket, the next reuses it,
`serve --stop-embedded` stops it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest

from s3pump.devserver import _pid_alive
from tests.conftest import run_cli


@pytest.mark.e2e
def test_embedded_start_reuse_stop(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_"))}
    env.update(S3PUMP_EMBEDDED_DIR=str(tmp_path / "embedded"), S3PUMP_STATE_DIR=str(tmp_path / "state"),
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha")
    (src / "b.txt").write_text("beta")
    try:
        r = run_cli(["upload", str(src), "s3://demo/x", "--embedded", "--no-progress"], env)
        assert r.returncode == 0, r.stderr.decode()
        state = json.loads((tmp_path / "embedded" / "server.json").read_text())
        assert _pid_alive(state["pid"])
        r2 = run_cli(["upload", str(src / "a.txt"), "s3://demo/again.txt", "--embedded", "--no-progress"], env)
        assert r2.returncode == 0, r2.stderr.decode()
        assert json.loads((tmp_path / "embedded" / "server.json").read_text())["pid"] == state["pid"]  # reused
        client = boto3.client("s3", endpoint_url=state["endpoint_url"], region_name="us-east-1",
                              aws_access_key_id=state["access_key_id"],
                              aws_secret_access_key=state["secret_access_key"])
        keys = {o["Key"] for o in client.list_objects_v2(Bucket="demo")["Contents"]}
        assert keys == {"x/a.txt", "x/b.txt", "again.txt"}
        assert client.get_object(Bucket="demo", Key="x/b.txt")["Body"].read() == b"beta"
    finally:
        stop = run_cli(["serve", "--stop-embedded"], env)
    assert stop.returncode == 0 and "stopped" in stop.stderr.decode()
    assert not _pid_alive(state["pid"])
