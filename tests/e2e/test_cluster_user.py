"""``--cluster tcp://...`` on a cluster the user started: ``dask scheduler`` and ``dask worker``
processes of their own (other directories, other environments), a worker joining mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from s3pump.testing.faultproxy import FaultProxy  # noqa: E402
from tests.conftest import S3Env, run_cli  # noqa: E402
from tests.e2e.usercluster import env_credentials, file_credentials, user_cluster  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _objects(s3env: S3Env, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    from tests.conftest import list_all

    return {k[len(prefix):]: (o["Size"], o["ETag"]) for k, o in list_all(s3env.boto(), bucket, prefix).items()}


class _GatedProxy(FaultProxy):
    """Holds every request of ``held`` types (PutObject) until :attr:`gate` is set (counting those
    that arrived)."""

    def __init__(self, upstream: str, held: frozenset[str] = frozenset({"PutObject"})) -> None:
        super().__init__(upstream)
        self.gate = threading.Event()
        self.held = held
        self.puts_seen = 0

    async def _forward(self, head: bytes, body: bytes, method: str, fault: str | None, rtype: str,
                       *rest: Any) -> Any:
        if rtype in self.held:
            self.puts_seen += 1
            while not self.gate.is_set():
                await asyncio.sleep(0.02)
        return await super()._forward(head, body, method, fault, rtype, *rest)


def test_a_user_started_scheduler_and_a_worker_joining_mid_run_upload_what_one_process_does(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """A scheduler and a worker started as ``dask`` processes (the worker in another directory, its
    credentials in ``AWS_*``); the upload starts, its first PUTs held by a proxy; a second worker
    (credentials only in its HOME's ``~/.aws/credentials``) joins, then the PUTs go on. The joining
    worker gets shards; the objects equal a single-process upload's; the summary says the run
    started with 1 worker and 2 did shards."""
    rng = random.Random(30)
    root = tmp_path / "tree"
    for i in range(48):
        p = root / f"d{i % 4}" / f"f{i:03d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(20_000 + i))
    single = run_cli(["upload", str(root), f"s3://{bucket}/one/"], s3env.env(state_dir))
    assert single.returncode == 0, single.stderr.decode()
    with _GatedProxy(s3env.endpoint_url) as proxy, user_cluster(tmp_path / "dask") as cluster:
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_SHARD_FILES": "3"}
        first, _ = cluster.worker("w1", env_credentials(s3env))
        coordinator = subprocess.Popen(
            [sys.executable, "-m", "s3pump", "upload", str(root), f"s3://{bucket}/two/", "--cluster",
             cluster.address, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while not proxy.puts_seen:  # the run has started: its first shard is uploading
                assert coordinator.poll() is None and time.monotonic() < deadline, cluster.log("w1")
                time.sleep(0.05)
            second, _ = cluster.worker("w2", file_credentials(s3env, tmp_path / "home2"))
            with distributed.Client(cluster.address, timeout=20) as watcher:
                watcher.wait_for_workers(2, timeout=30)
            proxy.gate.set()
            out, err = coordinator.communicate(timeout=60)
        finally:
            proxy.gate.set()
            if coordinator.poll() is None:
                coordinator.kill()
                coordinator.wait()
    assert coordinator.returncode == 0, err.decode() + cluster.log("w2")
    two = _objects(s3env, bucket, "two/")
    assert two == _objects(s3env, bucket, "one/") and len(two) == 48
    c = json.loads(out.decode().strip().splitlines()[-1])["cluster"]
    assert c["workers"] == 1  # when the run started
    rows = {row["worker"]: row for row in c["per_worker"]}
    assert set(rows) == {first, second}, rows
    assert rows[second]["shards"] >= 1 and rows[second]["files"] >= 1  # the joining worker did shards
    assert sum(r["files"] for r in rows.values()) == 48 and c["shards_failed"] == 0


def _shards_on(watcher: Any) -> dict[str, list[str]]:
    """Worker address -> the s3pump upload shards it is processing (running or queued there)."""
    return {w: [k for k in keys if str(k).startswith("s3pump-upload-shard")]
            for w, keys in watcher.processing().items()}


def _open_under(pid: int, directory: Path) -> bool:
    """Whether process ``pid`` has a file under ``directory`` open."""
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith(f"{directory}/"):
                    return True
    return False


def test_a_worker_killed_mid_run_leaves_and_the_other_redoes_its_shard(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """Two ``dask worker`` processes of a user-started cluster each take a shard (a 6 MiB multipart
    file and small ones; the proxy holds their PUTs and parts, so both are mid-shard with a multipart
    upload open); one is SIGKILLed by PID. The run still ends with exit 0: the dead worker's shard
    is run again by the other, the objects equal a single-process upload's, no file failed, and no
    multipart upload is left open (the one the dead worker created is aborted by the final sweep)."""
    rng = random.Random(31)
    root = tmp_path / "tree"
    for i in range(3):
        p = root / "big" / f"b{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(6 * 1024 * 1024 + i))
    for i in range(12):
        p = root / "small" / f"s{i:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(1000 + i))
    multipart = {"S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB"}
    single = run_cli(["upload", str(root), f"s3://{bucket}/one/"], {**s3env.env(state_dir), **multipart})
    assert single.returncode == 0, single.stderr.decode()
    held = frozenset({"PutObject", "UploadPart"})
    with _GatedProxy(s3env.endpoint_url, held) as proxy, user_cluster(tmp_path / "dask") as cluster:
        env = {**s3env.env(state_dir), **multipart, "AWS_ENDPOINT_URL": proxy.endpoint_url}
        first, _ = cluster.worker("w1", env_credentials(s3env))
        second, victim = cluster.worker("w2", env_credentials(s3env))
        with distributed.Client(cluster.address, timeout=20) as watcher:
            watcher.wait_for_workers(2, timeout=30)
            coordinator = subprocess.Popen(
                [sys.executable, "-m", "s3pump", "upload", str(root), f"s3://{bucket}/two/", "--cluster",
                 cluster.address, "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                deadline = time.monotonic() + 60
                # both workers took a shard, and the victim is sending a large file's parts (held)
                while not (all(_shards_on(watcher).get(w) for w in (first, second))
                           and _open_under(victim.pid, root / "big")
                           and s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads")):
                    assert coordinator.poll() is None and time.monotonic() < deadline, (
                        _shards_on(watcher), cluster.log("w2"))
                    time.sleep(0.05)
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(10)
                while len(watcher.scheduler_info()["workers"]) > 1:  # the scheduler saw it leave
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                proxy.gate.set()
                out, err = coordinator.communicate(timeout=90)
            finally:
                proxy.gate.set()
                if coordinator.poll() is None:
                    coordinator.kill()
                    coordinator.wait()
    assert coordinator.returncode == 0, err.decode() + cluster.log("w1")
    two = _objects(s3env, bucket, "two/")
    assert two == _objects(s3env, bucket, "one/") and len(two) == 15
    s = json.loads(out.decode().strip().splitlines()[-1])
    assert s["files_failed"] == 0 and s["files_done"] == 15
    c = s["cluster"]
    assert c["workers"] == 2 and c["shards_failed"] == 0
    assert {row["worker"] for row in c["per_worker"]} == {first}  # the survivor did every shard
    assert s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.slow  # a second scheduler and worker: ~15 s on the loaded 2-core machine
def test_a_user_started_tls_cluster_with_certificates_from_dask_config(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """docs/cluster.md's TLS recipe: ``dask scheduler --protocol tls`` and ``dask worker`` with
    certificates of the user's CA; s3pump reaches ``tls://`` with its client certificate from Dask's
    configuration (``DASK_DISTRIBUTED__COMM__TLS__*``): the upload works. Without them: one line
    saying what to set, exit 2 (was: a TypeError traceback from Dask, exit 1)."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pki = tmp_path / "pki"
    pki.mkdir()
    ca.cert_pem.write_to_path(str(pki / "ca.pem"))
    cert.private_key_pem.write_to_path(str(pki / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(pki / "cert.pem"))
    tls = ["--tls-ca-file", str(pki / "ca.pem"), "--tls-cert", str(pki / "cert.pem"), "--tls-key", str(pki / "key.pem")]
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(5):
        (root / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1))
    env = {**s3env.env(state_dir), "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(pki / "ca.pem"),
           "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(pki / "cert.pem"),
           "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(pki / "key.pem"),
           "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "true"}
    with user_cluster(tmp_path / "dask", tls) as cluster:
        assert cluster.address.startswith("tls://")
        cluster.worker("w1", env_credentials(s3env))
        r = run_cli(["upload", str(root), f"s3://{bucket}/t/", "--cluster", cluster.address, "--json"], env,
                    timeout=90)
        assert r.returncode == 0, r.stderr.decode() + cluster.log("w1")
        plain = {k: v for k, v in env.items() if not k.startswith("DASK_")}
        refused = run_cli(["upload", str(root), f"s3://{bucket}/u/", "--cluster", cluster.address], plain,
                          timeout=90)
    assert sorted(_objects(s3env, bucket, "t/")) == [f"f{i}.txt" for i in range(5)]
    err = refused.stderr.decode()
    assert refused.returncode == 2 and "Traceback" not in err, err
    assert f"--cluster {cluster.address}: a tls:// scheduler needs this process's certificates" in err
    assert _objects(s3env, bucket, "u/") == {}
