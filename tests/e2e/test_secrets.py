"""Secrets never leak: a ``--debug --json`` run (with retries, a failed file, a multipart upload
and a kept journal) and a run that fails on its credentials are searched for the access key ID,
the secret key and the session token in stderr (logs, tracebacks), stdout (--json), the resume
journal and the failed-list. None may appear.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli

SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLExSESSIONxTOKENxVALUEx0123456789"


def _leaks(blob: bytes, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value.encode() in blob]


def _files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.e2e
def test_debug_json_run_leaks_no_credentials(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(20):
        (src / f"f{i}.txt").write_bytes(os.urandom(1000 + i))
    (src / "big.bin").write_bytes(os.urandom(11 * 1024 * 1024))  # multipart: journaled parts
    secrets = {"access key ID": s3env.server.access_key_id, "secret key": s3env.server.secret_access_key}
    with FaultProxy(s3env.endpoint_url, FaultPlan.uniform(0.2), seed=5) as proxy:
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_REQUEST_TIMEOUT": "3s",
               "S3PUMP_PART_SIZE": "5MiB", "S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_BACKOFF_MAX": "0.2"}
        # a missing path makes the run end with a failure, so the journal is kept for inspection
        r = run_cli(["upload", str(tmp_path / "missing"), str(src), f"s3://{bucket}/s/", "--debug", "--json",
                     "--no-progress"], env)
        assert proxy.fault_counts(), "no fault was injected: no retry or error path was logged"
    assert r.returncode == 1, r.stderr.decode()[-2000:]
    assert len(list_all(s3env.boto(), bucket, "s/")) == 21
    assert b"DEBUG" in r.stderr or b"INFO" in r.stderr, "the --debug run logged nothing: the check proves nothing"
    journals = list((state_dir / "journals").glob("*.sqlite*"))
    assert journals, "the journal was not kept"
    assert not _leaks(r.stderr, secrets), r.stderr.decode()[-3000:]
    assert not _leaks(r.stdout, secrets)
    for path, blob in _files_under(state_dir).items():  # journal (+ WAL) and failed-list
        assert not _leaks(blob, secrets), f"{path} holds a credential"


@pytest.mark.e2e
def test_failed_credentials_run_leaks_nothing(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """A session token (SeaweedFS has no STS, so the request is refused) and --debug: the error
    path with its traceback must not carry the token, the secret key or the access key ID."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    secrets = {"access key ID": s3env.server.access_key_id, "secret key": s3env.server.secret_access_key,
               "session token": SESSION_TOKEN}
    env = {**s3env.env(state_dir), "AWS_SESSION_TOKEN": SESSION_TOKEN}
    r = run_cli(["upload", str(src), f"s3://{bucket}/t/", "--debug", "--json", "--no-progress"], env)
    assert r.returncode == 2, r.stderr.decode()[-2000:]
    assert b"Traceback" in r.stderr, "--debug should log the traceback (redacted)"
    assert not _leaks(r.stderr, secrets), r.stderr.decode()[-3000:]
    assert not _leaks(r.stdout, secrets)
    for path, blob in _files_under(state_dir).items():
        assert not _leaks(blob, secrets), f"{path} holds a credential"
