"""The end-to-end form of issue 12, item 1, against SeaweedFS through the fault proxy: SIGKILL the
CLI mid-multipart, replace files by others of the same size and mtime (in place + ``os.utime``,
or a new inode renamed over the old; mtimes of 0 and not), rerun; repeat. Every object must be
some version its file had after each run, and the file's current bytes after the last; no
multipart upload may be left open.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all
from tests.faults.conftest import MIB, proxied_env
from tests.faults.test_crash import _kill_when, _mid_multipart, _start


def _replace(path: Path, data: bytes, mtime_ns: int, how: str) -> None:
    if how == "inplace":
        with open(path, "r+b") as f:
            f.write(data)
    else:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.mark.e2e
def test_sigkill_and_same_size_same_mtime_replacements_never_mix_versions(
        tmp_path: Path, s3env: S3Env, faultproxy: FaultProxy, state_dir: Path, bucket: str) -> None:
    rng = random.Random(random.randrange(1000))
    src = tmp_path / "src"
    src.mkdir()
    versions: dict[str, list[bytes]] = {}
    mtimes: dict[str, int] = {}
    for i in range(3):
        name = f"big{i}.bin"
        versions[name] = [rng.randbytes(3 * 5 * MIB + rng.randrange(1, MIB))]
        mtimes[name] = 0 if i % 2 == 0 else 1_600_000_000_000_000_000
    for i in range(4):
        versions[f"small{i}.txt"] = [rng.randbytes(rng.randrange(1, 20_000))]
        mtimes[f"small{i}.txt"] = 0
    for name, (data,) in versions.items():
        (src / name).write_bytes(data)
        os.utime(src / name, ns=(mtimes[name], mtimes[name]))
    faultproxy.plan = FaultPlan(delay_s={"UploadPart": 0.25})
    env = proxied_env(s3env, faultproxy, state_dir)
    client = s3env.boto()

    def check_versions() -> None:
        for key in list_all(client, bucket, "k/"):
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert body in versions[key[2:]], f"{key} matches no version of its file"

    for _ in range(2):
        _kill_when(_start(src, bucket, env), faultproxy, _mid_multipart(state_dir))
        check_versions()
        for name in versions:
            if name.startswith("big") or rng.random() < 0.5:
                data = rng.randbytes(len(versions[name][0]))
                versions[name].append(data)
                _replace(src / name, data, mtimes[name], rng.choice(["inplace", "rename"]))
    faultproxy.plan = FaultPlan()
    final = _start(src, bucket, env)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()[-2000:]
    for name in versions:
        body = client.get_object(Bucket=bucket, Key=f"k/{name}")["Body"].read()
        assert body == (src / name).read_bytes(), f"k/{name}: not the file's current bytes"
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.e2e
def test_two_identical_uploads_at_once_second_refuses_first_finishes(
        tmp_path: Path, s3env: S3Env, faultproxy: FaultProxy, state_dir: Path, bucket: str) -> None:
    """Item 7 as the issue saw it: the same command twice at once. The second refuses with one line
    and exit 2 (it would share the first's journal); the first is not disturbed and ends with
    every object right."""
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(3)
    files = {f"big{i}.bin": rng.randbytes(2 * 5 * MIB + 1) for i in range(2)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    # the first run's parts are held 12 s: it is still running while the second starts (a few s)
    faultproxy.plan = FaultPlan(delay_s={"UploadPart": 12.0})
    env = proxied_env(s3env, faultproxy, state_dir, S3PUMP_REQUEST_TIMEOUT="60s")
    first = _start(src, bucket, env)
    try:
        deadline = time.monotonic() + 60
        while not any(e.type == "UploadPart" for e in faultproxy.log) and time.monotonic() < deadline:
            time.sleep(0.02)
        second = _start(src, bucket, env)
        _, err2 = second.communicate(timeout=120)
        assert second.returncode == 2, err2.decode()
        lines = [ln for ln in err2.decode().splitlines() if ln.strip()]
        assert len(lines) == 1 and "another s3pump run of the same command is running" in lines[0], lines
        assert first.poll() is None  # the refusal came while the first run was live
        faultproxy.plan = FaultPlan()
        _, err1 = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err1.decode()[-2000:]
    client = s3env.boto()
    for name, data in files.items():
        assert client.get_object(Bucket=bucket, Key=f"k/{name}")["Body"].read() == data
