"""The end-to-end form of issue 12, item 1, against SeaweedFS through the fault proxy: SIGKILL the
CLI mid-multipart, replace files by others of the same size and mtime (in place + ``os.utime``,
or a new inode renamed over the old; mtimes of 0 and not), rerun; repeat. Every object must be
some version its file had after each run, and the file's current bytes after the last; no
multipart upload may be left open.
"""

from __future__ import annotations

import os
import random
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
