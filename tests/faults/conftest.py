"""Fixtures of the fault suites: the fault-injecting proxy in front of the session's SeaweedFS,
a mixed-size source tree, and the end-state check (every object byte-identical, no multipart
upload left behind)."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all

MIB = 1024 * 1024
#: Part size and multipart threshold of the fault suites: files over 5 MiB go multipart.
PART_SIZE = "5MiB"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory of this test's own (``S3PUMP_STATE_DIR``): journals, locks, failed-lists."""
    d = tmp_path / "state"
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(d))
    return d


@pytest.fixture
def faultproxy(s3env: S3Env) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of the session's SeaweedFS, injecting nothing until a test
    sets ``faultproxy.plan``. Its ``log`` records every request."""
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(), seed=random.randrange(2**32))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def proxied_env(s3env: S3Env, proxy: FaultProxy, state_dir: Path, **extra: str) -> dict[str, str]:
    """CLI environment that reaches SeaweedFS through ``proxy``, with short timeouts and backoffs
    so stalls and retries cost seconds, and multipart above 5 MiB."""
    env = s3env.env(state_dir)
    env.update(
        AWS_ENDPOINT_URL=proxy.endpoint_url,
        S3PUMP_REQUEST_TIMEOUT="3s",
        S3PUMP_BACKOFF_BASE="0.05",
        S3PUMP_BACKOFF_MAX="0.5",
        S3PUMP_PART_SIZE=PART_SIZE,
        S3PUMP_MULTIPART_THRESHOLD=PART_SIZE,
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Tree:
    root: Path
    files: dict[str, Path]  # relative POSIX path -> file

    @property
    def multipart(self) -> list[str]:
        return [k for k, p in self.files.items() if p.stat().st_size > 5 * MIB]


def make_tree(root: Path, count: int, max_size_bytes: int, *, large: int, seed: int = 0) -> Tree:
    """``count`` files in subdirectories of 50: a few empty, ``large`` of them between 5 MiB
    and ``max_size_bytes`` (multipart), the rest log-uniform from 1 B to 1 MiB."""
    rng = random.Random(seed)
    files: dict[str, Path] = {}
    sizes = [0, 0, 0]
    sizes += [rng.randint(5 * MIB + 1, max_size_bytes) for _ in range(large)]
    while len(sizes) < count:
        sizes.append(int(2 ** rng.uniform(0, 20)))
    rng.shuffle(sizes)
    for i, size in enumerate(sizes):
        rel = f"d{i // 50:03d}/f{i:05d}.bin"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        files[rel] = path
    return Tree(root, files)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def assert_all_uploaded(s3env: S3Env, bucket: str, prefix: str, tree: Tree) -> None:
    """Every file is an object (read back straight from SeaweedFS, not through the proxy) whose
    SHA-256 equals the local file's; there is no other object; no multipart upload is open."""
    client = s3env.boto()
    objects = list_all(client, bucket, prefix)
    expected = {f"{prefix}{rel}" for rel in tree.files}
    assert set(objects) == expected, (
        f"missing {sorted(expected - set(objects))[:10]}, extra {sorted(set(objects) - expected)[:10]}"
    )
    for rel, path in tree.files.items():
        body = client.get_object(Bucket=bucket, Key=f"{prefix}{rel}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == sha256_file(path), f"{rel}: content differs"
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uploads == [], f"multipart uploads left behind: {uploads}"


def keys_with_fault(proxy: FaultProxy) -> int:
    return len({e.key for e in proxy.log if e.fault})


def file_sizes(tree: Tree) -> dict[str, int]:
    return {rel: os.path.getsize(p) for rel, p in tree.files.items()}


@pytest.fixture
def big_bucket(s3env: S3Env) -> Iterator[str]:
    """A fresh bucket that is deleted afterwards, objects and all. An acceptance-scale test
    writes about a GiB; SeaweedFS frees a bucket's volumes only when the bucket (its collection)
    is deleted, and a session of such tests would otherwise run out of writable volumes."""
    import uuid

    name = f"big-{uuid.uuid4().hex[:12]}"
    client = s3env.boto()
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        keys = list(list_all(client, name))
        for i in range(0, len(keys), 1000):
            client.delete_objects(Bucket=name, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]],
                                                       "Quiet": True})
        for u in client.list_multipart_uploads(Bucket=name).get("Uploads", []):
            client.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
        client.delete_bucket(Bucket=name)
