"""End to end: the real `s3pump upload` CLI against SeaweedFS."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sysconfig
from pathlib import Path

import pytest

from s3pump.jobs.generate import generate
from tests.conftest import S3Env, list_all, run_cli

MIB = 2**20


def regular_files(root: Path, *, skip_dir: str | None = None) -> dict[str, Path]:
    """relpath -> path of every regular file, not following symlinks (what s3pump uploads)."""
    out = {}
    for dirpath, dirnames, names in os.walk(root):
        if skip_dir and Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d != skip_dir]
        for n in names:
            p = Path(dirpath) / n
            if stat.S_ISREG(os.lstat(p).st_mode):
                out[p.relative_to(root).as_posix()] = p
    return out


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_tree(s3env: S3Env, bucket: str, prefix: str, files: dict[str, Path]) -> None:
    objects = list_all(s3env.boto(), bucket, prefix)
    assert len(objects) == len(files)
    single_part = 0
    for rel, path in files.items():
        obj = objects[f"{prefix}{rel}"]
        assert obj["Size"] == path.stat().st_size, rel
        etag = obj["ETag"].strip('"')
        if "-" not in etag:
            assert etag == md5_file(path), rel
            single_part += 1
    assert single_part > 0.9 * len(files)
    assert not s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads")


def _upload_stdlib(s3env: S3Env, bucket: str, state_dir: Path, *, whole: bool) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    args = ["upload", str(stdlib), f"s3://{bucket}/stdlib/", "--no-progress", "--json"]
    if not whole:
        args += ["--exclude", "site-packages/*"]
    files = regular_files(stdlib, skip_dir=None if whole else "site-packages")
    assert len(files) > 1000
    r = run_cli(args, s3env.env(state_dir), timeout=900)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    lines = [json.loads(x) for x in r.stdout.decode().splitlines()]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["files_done"] == len(files)
    assert summary["files_failed"] == 0
    assert sum(1 for x in lines if x["event"] == "done") == len(files)
    check_tree(s3env, bucket, "stdlib/", files)


@pytest.mark.e2e
def test_upload_stdlib(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    """The interpreter's standard library (its own modules; site-packages in the slow variant)."""
    _upload_stdlib(s3env, bucket, state_dir, whole=False)


@pytest.mark.e2e
@pytest.mark.slow
def test_upload_stdlib_whole_directory(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    """Literally the whole sysconfig stdlib directory, site-packages included (tens of thousands of files)."""
    _upload_stdlib(s3env, bucket, state_dir, whole=True)


@pytest.mark.e2e
def test_upload_100mib_multipart_roundtrip(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    generate(tmp_path / "src", count=1, size_bytes=100 * MIB, seed=7)
    path = next((tmp_path / "src").iterdir())
    r = run_cli(["upload", str(path), f"s3://{bucket}/big.bin", "--part-size", "8MiB", "--no-progress"],
                s3env.env(state_dir))
    assert r.returncode == 0, r.stderr.decode()
    client = s3env.boto()
    head = client.head_object(Bucket=bucket, Key="big.bin", ChecksumMode="ENABLED")
    assert head["ETag"].strip('"').endswith("-13")  # 100 MiB / 8 MiB parts
    assert head["ChecksumCRC32C"]  # every part carried a CRC32C
    client.download_file(bucket, "big.bin", str(tmp_path / "back.bin"))
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert sha(tmp_path / "back.bin") == sha(path)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.e2e
def test_attributes_and_metadata(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"  # not tmp_path itself: the state dir (journal, failed-list) lives there
    src.mkdir()
    (src / "page.html").write_text("<p>hi</p>")
    (src / "data.bin").write_bytes(b"\0" * 10)
    r = run_cli(["upload", str(src), f"s3://{bucket}/site", "--metadata", "owner=data-team",
                 "--storage-class", "STANDARD", "--no-progress"], s3env.env(state_dir))
    assert r.returncode == 0, r.stderr.decode()
    client = s3env.boto()
    html = client.head_object(Bucket=bucket, Key="site/page.html")
    mtime_ns = (src / "page.html").stat().st_mtime_ns  # and the file's mtime, as rclone stores it
    assert html["ContentType"] == "text/html" and html["Metadata"] == {
        "owner": "data-team", "mtime": f"{mtime_ns // 10**9}.{mtime_ns % 10**9:09d}"}
    assert client.head_object(Bucket=bucket, Key="site/data.bin")["ContentType"] == "application/octet-stream"
    r = run_cli(["upload", str(src / "data.bin"), f"s3://{bucket}/typed.bin", "--content-type", "x/y",
                 "--no-progress"], s3env.env(state_dir))
    assert client.head_object(Bucket=bucket, Key="typed.bin")["ContentType"] == "x/y"


@pytest.mark.e2e
def test_bad_input_one_line_errors(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("ok")
    env = s3env.env(state_dir)
    # missing bucket: exit 2, one line naming the bucket, no traceback, nothing uploaded
    r = run_cli(["upload", str(tmp_path), "s3://no-such-bucket-zz/x", "--no-progress"], env)
    err = r.stderr.decode()
    assert r.returncode == 2 and "no-such-bucket-zz" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    # bad credentials: exit 2
    bad = {**env, "AWS_SECRET_ACCESS_KEY": "wrong-secret-wrong-secret"}
    r = run_cli(["upload", str(tmp_path), f"s3://{bucket}/x", "--no-progress"], bad)
    err = r.stderr.decode()
    assert r.returncode == 2 and "credentials" in err.lower() and "Traceback" not in err
    assert "wrong-secret" not in err
    # not an S3 URL: exit 2
    r = run_cli(["upload", str(tmp_path), "/tmp/dest", "--no-progress"], env)
    assert r.returncode == 2 and "not an S3 URL" in r.stderr.decode()
    # a missing path among good ones: exit 1, the path named, the good file still uploaded
    r = run_cli(["upload", str(tmp_path / "ok.txt"), str(tmp_path / "missing.txt"), f"s3://{bucket}/m/",
                 "--no-progress"], env)
    assert r.returncode == 1 and "missing.txt" in r.stderr.decode() and "Traceback" not in r.stderr.decode()
    assert set(list_all(s3env.boto(), bucket, "m/")) == {"m/ok.txt"}
    # the only path missing: a usage error as in the aws cli (issue 13): exit 2, one line, nothing sent
    r = run_cli(["upload", str(tmp_path / "missing.txt"), f"s3://{bucket}/n/", "--no-progress"], env)
    assert r.returncode == 2, r.stderr.decode()
    assert r.stderr.decode().strip().splitlines() == [
        f"s3pump: error: the path {tmp_path / 'missing.txt'} does not exist"]
    assert set(list_all(s3env.boto(), bucket, "n/")) == set()
    # unreachable endpoint: one line naming it, exit 2 (a configuration error, issue 13)
    r = run_cli(["upload", str(tmp_path), f"s3://{bucket}/x", "--no-progress",
                 "--endpoint-url", "http://127.0.0.1:9"], env)
    assert r.returncode == 2 and "Traceback" not in r.stderr.decode() and "127.0.0.1:9" in r.stderr.decode()
    assert len(r.stderr.decode().strip().splitlines()) == 1


@pytest.mark.e2e
def test_dry_run_sends_nothing(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    generate(tmp_path / "src", count=25, size_bytes=100)
    r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/d/", "--dry-run", "--json", "--no-progress"],
                s3env.env(state_dir))
    assert r.returncode == 0
    events = [json.loads(x) for x in r.stdout.decode().splitlines()]
    assert sum(1 for e in events if e["event"] == "skipped") == 25
    assert list_all(s3env.boto(), bucket, "d/") == {}
