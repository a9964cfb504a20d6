"""Issue 13: the object headers aws users set (--cache-control, --content-encoding,
--content-disposition, --content-language, --expires, --tagging) are stored with the object, on a
single PUT and on a multipart upload, for upload and for ``stream -`` (stdin, the aws s3 cp - habit)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from ..conftest import S3Env, run_cli

MIB = 2**20
FLAGS = ["--cache-control", "max-age=60", "--content-encoding", "identity", "--content-disposition",
         'attachment; filename="r.csv"', "--content-language", "de-CH", "--expires", "2030-01-02T03:04:05Z",
         "--tagging", "team=data&tier=gold"]


def _assert_headers(s3env: S3Env, bucket: str, key: str) -> None:
    client = s3env.boto()
    head = client.head_object(Bucket=bucket, Key=key)
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentEncoding"] == "identity"
    assert head["ContentDisposition"] == 'attachment; filename="r.csv"'
    assert head["ContentLanguage"] == "de-CH"
    expires = head.get("Expires") or head.get("ExpiresString")
    if isinstance(expires, dt.datetime):
        assert expires == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    else:
        assert expires == "Wed, 02 Jan 2030 03:04:05 GMT"
    tags = {t["Key"]: t["Value"] for t in client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}
    assert tags == {"team": "data", "tier": "gold"}


@pytest.mark.e2e
def test_upload_sends_object_headers(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "small.csv").write_bytes(b"a,b\n")
    (tmp_path / "src" / "big.csv").write_bytes(os.urandom(6 * MIB))
    env = {**s3env.env(state_dir), "S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB"}
    r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/h/", "--no-progress", *FLAGS], env)
    assert r.returncode == 0, r.stderr.decode()
    assert s3env.boto().head_object(Bucket=bucket, Key="h/big.csv")["ETag"].endswith('-2"')  # multipart
    for key in ("h/small.csv", "h/big.csv"):
        _assert_headers(s3env, bucket, key)


@pytest.mark.e2e
def test_stream_dash_reads_stdin_quietly_with_headers(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    data = os.urandom(100_000)
    r = run_cli(["stream", "-", f"s3://{bucket}/s.csv", "--quiet", *FLAGS], s3env.env(state_dir), input=data)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"" and r.stdout == b""  # --quiet: nothing but errors
    assert s3env.boto().get_object(Bucket=bucket, Key="s.csv")["Body"].read() == data
    _assert_headers(s3env, bucket, "s.csv")
    # the older form (destination only) still reads stdin
    r = run_cli(["stream", f"s3://{bucket}/t.csv"], s3env.env(state_dir), input=b"old form")
    assert r.returncode == 0, r.stderr.decode()
    assert s3env.boto().get_object(Bucket=bucket, Key="t.csv")["Body"].read() == b"old form"
    r = run_cli(["stream", "nosuch.bin", f"s3://{bucket}/u.csv"], s3env.env(state_dir))
    assert r.returncode == 2 and r.stderr.decode().splitlines() == ["s3pump: error: the path nosuch.bin does not exist"]
