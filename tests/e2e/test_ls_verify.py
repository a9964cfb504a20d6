"""Issue 13: ``s3pump ls`` prints what ``aws s3 ls`` prints; ``s3pump verify`` proves a tree
arrived intact and catches a changed byte (single-part and multipart), a missing and an extra object."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ..conftest import S3Env, run_cli

MIB = 2**20


def _aws(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    import subprocess
    import sys

    aws = shutil.which("aws", path=os.path.dirname(sys.executable))
    assert aws, "the aws cli (test extra) is not installed next to this interpreter"
    r = subprocess.run([aws, "s3", *args], env=env, capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode()


@pytest.mark.e2e
def test_ls_prints_as_aws_s3_ls(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    client = s3env.boto()
    for key, size in (("d/a.txt", 1), ("d/b.txt", 10), ("d/sub/c.bin", 3 * MIB // 2), ("top.txt", 2048)):
        client.put_object(Bucket=bucket, Key=key, Body=b"x" * size)
    env = s3env.env(state_dir)
    for args in ([f"s3://{bucket}/d/"], [f"s3://{bucket}/d"], [f"s3://{bucket}"], [f"s3://{bucket}/d/a"],
                 ["--recursive", "--human-readable", "--summarize", f"s3://{bucket}/"],
                 ["--recursive", f"s3://{bucket}/d/sub"], [f"s3://{bucket}/nothing-here/"]):
        aws_code, aws_out = _aws(["ls", *args], env)
        r = run_cli(["ls", *args], env)
        assert (r.returncode, r.stdout.decode()) == (aws_code, aws_out), (args, r.stderr.decode())
    assert _aws(["ls", f"s3://{bucket}/nothing-here/"], env)[0] == 1  # the exit code compared above
    # the bucket list: ours is the aws cli's (the listing holds this test's bucket)
    r = run_cli(["ls"], env)
    assert r.returncode == 0 and r.stdout.decode() == _aws(["ls"], env)[1]
    assert f" {bucket}\n" in r.stdout.decode()
    r = run_cli(["ls", "--recursive", "--json", "--summarize", f"s3://{bucket}/d/"], env)
    events = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert [(e["event"], e.get("key"), e.get("size")) for e in events[:-1]] == [
        ("object", "d/a.txt", 1), ("object", "d/b.txt", 10), ("object", "d/sub/c.bin", 3 * MIB // 2)]
    assert events[-1] == {"event": "summary", "objects": 3, "bytes": 1 + 10 + 3 * MIB // 2}


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.e2e
def test_verify_catches_changed_missing_and_extra(s3env: S3Env, bucket: str, state_dir: Path,
                                                  tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "small.txt").write_bytes(b"hello verify\n")
    (src / "sub" / "big.bin").write_bytes(os.urandom(12 * MIB))  # s3pump multipart: 3 parts of 5 MiB
    (src / "other.bin").write_bytes(os.urandom(13 * MIB))  # another tool's multipart: 6 MiB parts
    (src / "gone.txt").write_bytes(b"will be deleted remotely\n")
    env = {**s3env.env(state_dir), "S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB"}
    r = run_cli(["upload", str(src), f"s3://{bucket}/t/", "--no-progress", "--exclude", "other.bin"], env)
    assert r.returncode == 0, r.stderr.decode()
    client = s3env.boto()
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="t/other.bin")["UploadId"]
    data = (src / "other.bin").read_bytes()
    parts = []
    for n, off in enumerate(range(0, len(data), 6 * MIB), 1):
        etag = client.upload_part(Bucket=bucket, Key="t/other.bin", UploadId=upload_id, PartNumber=n,
                                  Body=data[off:off + 6 * MIB])["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    client.complete_multipart_upload(Bucket=bucket, Key="t/other.bin", UploadId=upload_id,
                                     MultipartUpload={"Parts": parts})
    etags = {k: client.head_object(Bucket=bucket, Key=f"t/{k}")["ETag"] for k in ("sub/big.bin", "other.bin")}
    assert etags["sub/big.bin"].endswith('-3"') and etags["other.bin"].endswith('-3"'), etags

    r = run_cli(["verify", str(src), f"s3://{bucket}/t/"], env)
    assert r.returncode == 0, (r.stdout.decode(), r.stderr.decode())
    assert "4 match, 0 missing, 0 different, 0 unverified, 0 extra" in r.stderr.decode()

    _flip_byte(src / "small.txt", 3)
    _flip_byte(src / "sub" / "big.bin", 7 * MIB + 5)
    _flip_byte(src / "other.bin", 12 * MIB + 1)
    client.delete_object(Bucket=bucket, Key="t/gone.txt")
    client.put_object(Bucket=bucket, Key="t/sub/extra.txt", Body=b"only remote")
    for args in ([], ["--download"]):
        r = run_cli(["verify", str(src), f"s3://{bucket}/t/", "--json", *args], env)
        assert r.returncode == 1, r.stderr.decode()
        events = [json.loads(line) for line in r.stdout.decode().splitlines()]
        got = {(e["event"], e["key"]) for e in events if e["event"] != "summary"}
        assert got == {("missing", "t/gone.txt"), ("different", "t/small.txt"), ("different", "t/sub/big.bin"),
                       ("different", "t/other.bin"), ("extra", "t/sub/extra.txt")}, events
        assert events[-1]["matched"] == 0 and not events[-1]["ok"]
    r = run_cli(["verify", str(src), f"s3://{bucket}/t/"], env)
    assert r.returncode == 1
    assert f"missing: s3://{bucket}/t/gone.txt: no such object" in r.stdout.decode()
    assert f"extra: s3://{bucket}/t/sub/extra.txt" in r.stdout.decode()


@pytest.mark.e2e
def test_verify_missing_directory_is_usage_error(s3env: S3Env, bucket: str, state_dir: Path,
                                                 tmp_path: Path) -> None:
    r = run_cli(["verify", str(tmp_path / "nope"), f"s3://{bucket}/t/"], s3env.env(state_dir))
    assert r.returncode == 2
    assert r.stderr.decode().strip() == f"s3pump: error: the path {tmp_path / 'nope'} does not exist"
