"""Issue 26: ``stream`` sends a Content-Type from the key's name (its help says ``[default: from the
name]``; it sent none), and a compressed file's type is its compression's: ``x.tar.gz`` is
``application/gzip``, on a single PUT and a multipart upload, for ``stream`` and ``upload``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..conftest import S3Env, run_cli

MIB = 2**20


@pytest.mark.parametrize("size", [1000, 20 * MIB], ids=["single-put", "multipart"])
@pytest.mark.parametrize(("key", "flag", "expected"), [
    ("backups/db.tar.gz", None, "application/gzip"),
    ("backups/dump.sql.bz2", None, "application/x-bzip2"),
    ("site/index.html", None, "text/html"),
    ("data/blob", None, "application/octet-stream"),
    ("backups/db.tar.gz", "application/x-custom", "application/x-custom"),
])
def test_stream_content_type(s3env: S3Env, bucket: str, state_dir: Path, size: int, key: str, flag: str | None,
                             expected: str) -> None:
    args = ["stream", f"s3://{bucket}/{key}", "--no-progress"] + (["--content-type", flag] if flag else [])
    p = run_cli(args, s3env.env(state_dir), input=os.urandom(size))
    assert p.returncode == 0, p.stderr.decode()
    head = s3env.boto().head_object(Bucket=bucket, Key=key)
    assert head["ContentType"] == expected and head["ContentLength"] == size


def test_upload_content_type_of_compressed_files(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for name in ("a.tar.gz", "b.txt", "c.json.xz"):
        (d / name).write_bytes(b"x")
    p = run_cli(["upload", str(d), f"s3://{bucket}/u/", "--no-progress"], s3env.env(state_dir))
    assert p.returncode == 0, p.stderr.decode()
    client = s3env.boto()
    names = ("a.tar.gz", "b.txt", "c.json.xz")
    got = {n: client.head_object(Bucket=bucket, Key=f"u/{n}")["ContentType"] for n in names}
    assert got == {"a.tar.gz": "application/gzip", "b.txt": "text/plain", "c.json.xz": "application/x-xz"}
