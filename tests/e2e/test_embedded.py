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


@pytest.mark.timing
@pytest.mark.e2e
def test_embedded_says_what_it_started_info_env_and_clean_stop(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_"))}
    env.update(S3PUMP_EMBEDDED_DIR=str(tmp_path / "embedded"), S3PUMP_STATE_DIR=str(tmp_path / "state"),
               HOME=str(tmp_path / "home"))
    (tmp_path / "a.txt").write_text("alpha")
    state = None
    try:
        r = run_cli(["upload", str(tmp_path / "a.txt"), "s3://demo/a.txt", "--embedded", "--no-progress"], env)
        assert r.returncode == 0, r.stderr.decode()
        state = json.loads((tmp_path / "embedded" / "server.json").read_text())
        err = r.stderr.decode()
        assert (f"s3pump: started the embedded S3 server at {state['endpoint_url']}; keys in "
                f"{tmp_path / 'embedded' / 'server.json'} (or: s3pump serve --info); stop it with: "
                "s3pump serve --stop-embedded") in err, err
        info = run_cli(["serve", "--info"], env)
        assert info.returncode == 0
        assert f"endpoint:   {state['endpoint_url']}" in info.stdout.decode()
        assert f"secret key: {state['secret_access_key']}" in info.stdout.decode()
        exports = run_cli(["serve", "--env"], env).stdout.decode()
        assert f"export AWS_ACCESS_KEY_ID={state['access_key_id']}\n" in exports
        # the export lines are enough for the next command (here: ls, through a shell's eval)
        shell = subprocess.run(["sh", "-c", f'eval "$({sys.executable} -m s3pump serve --env)"; '
                                f'{sys.executable} -m s3pump ls s3://demo/'], env=env, capture_output=True,
                               timeout=120)
        assert shell.returncode == 0 and shell.stdout.decode().endswith(" 5 a.txt\n"), shell.stderr.decode()
        # serve on the same data directory while the embedded server runs: refused (exit 2)
        busy = run_cli(["serve"], env, timeout=60)
        assert busy.returncode == 2 and "already runs" in busy.stderr.decode()
    finally:
        t0 = time.monotonic()
        stop = run_cli(["serve", "--stop-embedded"], env)
        elapsed = time.monotonic() - t0
    lines = stop.stderr.decode().splitlines()
    assert stop.returncode == 0 and len(lines) == 2, lines
    assert lines[0].startswith(f"stopping the embedded S3 server at {state['endpoint_url']}")
    assert lines[1].startswith("stopped the embedded S3 server in "), lines
    assert elapsed < 5  # SIGTERM, SIGKILL after a 2 s grace (SeaweedFS's own shutdown takes 15 s)
    assert not _pid_alive(state["pid"])
    assert run_cli(["serve", "--info"], env).returncode == 1
