"""Bad input: each case prints a one-line error naming the thing, exits with its documented code
(docs/faults.md), prints no traceback, and does not stop the other files.

Per-file cases (exit 1, the rest of the tree is uploaded): a missing path, an unreadable file, a
directory symlink loop, an over-long key, a non-UTF-8 file name. Run-wide cases (exit 2, or 1 for
an unreachable endpoint; nothing is written): a missing bucket, bad credentials, an expired
session token, an invalid destination prefix, an unreachable endpoint.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Three good files: a.txt, sub/b.txt, sub/deeper/c.txt."""
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"a" * 10)
    (src / "sub" / "b.txt").write_bytes(b"b" * 20)
    (src / "sub" / "deeper" / "c.txt").write_bytes(b"c" * 30)
    return src


GOOD = {"a.txt", "sub/b.txt", "sub/deeper/c.txt"}


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if line.startswith(("failed ", "s3pump: error:")) and not line.startswith("failed files written")]


def _assert_good_uploaded(s3env: S3Env, bucket: str, prefix: str, src: Path) -> None:
    objects = list_all(s3env.boto(), bucket, prefix)
    for rel in GOOD:
        key = f"{prefix}{rel}"
        assert key in objects, f"{key} was not uploaded: {sorted(objects)}"
        body = s3env.boto().get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == (src / rel).read_bytes()


def _upload(s3env: S3Env, state_dir: Path, *args: str, env: dict[str, str] | None = None,
            **popen: object) -> tuple[int, str]:
    r = run_cli(["upload", *args, "--no-progress"], env or s3env.env(state_dir))
    err = r.stderr.decode(errors="replace")
    _no_traceback(err)
    return r.returncode, err


# ---------------------------------------------------------------- per file: exit 1, others uploaded
@pytest.mark.e2e
def test_missing_path(s3env: S3Env, bucket: str, state_dir: Path, tree: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    code, err = _upload(s3env, state_dir, str(missing), str(tree), f"s3://{bucket}/m/")
    assert code == 1, err
    assert _error_lines(err) == [f"failed {missing}: no such file or directory"], err
    _assert_good_uploaded(s3env, bucket, "m/", tree)


@pytest.mark.e2e
def test_directory_symlink_loop(s3env: S3Env, bucket: str, state_dir: Path, tree: Path) -> None:
    loop = tree / "sub" / "deeper" / "loop"
    os.symlink("../..", loop)  # points back at the root: following it would never end
    code, err = _upload(s3env, state_dir, "--follow-symlinks", str(tree), f"s3://{bucket}/l/")
    assert code == 1, err
    assert _error_lines(err) == [f"failed {loop}: directory symlink loop (already visited); skipped"], err
    _assert_good_uploaded(s3env, bucket, "l/", tree)
    assert set(list_all(s3env.boto(), bucket, "l/")) == {f"l/{k}" for k in GOOD}


@pytest.mark.e2e
def test_over_long_key(s3env: S3Env, bucket: str, state_dir: Path, tree: Path) -> None:
    deep = tree
    for ch in "vwxyz":  # 5 directories of 250 bytes: a key over S3's 1,024 bytes
        deep = deep / (ch * 250)
    deep.mkdir(parents=True)
    (deep / "long.txt").write_bytes(b"L")
    code, err = _upload(s3env, state_dir, str(tree), f"s3://{bucket}/k/")
    assert code == 1, err
    lines = _error_lines(err)
    assert len(lines) == 1 and lines[0].startswith(f"failed {deep / 'long.txt'}: key 'k/vvvv"), err
    assert "bytes; S3 allows at most 1024" in lines[0]
    _assert_good_uploaded(s3env, bucket, "k/", tree)


@pytest.mark.e2e
def test_non_utf8_file_name(s3env: S3Env, bucket: str, state_dir: Path, tree: Path) -> None:
    bad = os.path.join(os.fsencode(tree), b"caf\xe9.txt")  # Latin-1 name: not UTF-8
    with open(bad, "wb") as f:
        f.write(b"x")
    code, err = _upload(s3env, state_dir, str(tree), f"s3://{bucket}/u/")
    assert code == 1, err
    assert _error_lines(err) == [
        f"failed {tree}/caf\\xe9.txt: key 'u/caf\\xe9.txt' is not valid UTF-8; rename the file"
    ], err
    _assert_good_uploaded(s3env, bucket, "u/", tree)


#: As root, chmod 000 does not stop reading (CAP_DAC_OVERRIDE). Root's run of the CLI therefore
#: drops the two capabilities that bypass file modes, so the mode bits hold as for any user.
_NO_DAC_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-dac_override,-dac_read_search"]


@pytest.mark.e2e
@pytest.mark.parametrize("size", [100, 6 * 1024 * 1024], ids=["single-put", "multipart"])
def test_unreadable_file(s3env: S3Env, bucket: str, state_dir: Path, tree: Path, size: int) -> None:
    secret = tree / "sub" / "secret.bin"
    secret.write_bytes(os.urandom(size))
    secret.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        prefix = _NO_DAC_OVERRIDE
    env = {**s3env.env(state_dir), "S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB"}
    r = subprocess.run(
        [*prefix, sys.executable, "-m", "s3pump", "upload", str(tree), f"s3://{bucket}/r/", "--no-progress"],
        env=env, capture_output=True, timeout=120,
    )
    err = r.stderr.decode(errors="replace")
    _no_traceback(err)
    assert r.returncode == 1, err
    lines = _error_lines(err)
    assert len(lines) == 1 and lines[0].startswith(f"failed {secret}: "), err
    assert "ermission" in lines[0] or "NO_PERMISSION" in lines[0], lines[0]
    assert stat.S_IMODE(secret.stat().st_mode) == 0
    _assert_good_uploaded(s3env, bucket, "r/", tree)
    assert "r/sub/secret.bin" not in list_all(s3env.boto(), bucket, "r/")
    assert s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


# ---------------------------------------------------------------- run-wide: nothing written
def _assert_nothing_written(s3env: S3Env, bucket: str) -> None:
    assert list_all(s3env.boto(), bucket) == {}
    assert s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.e2e
def test_missing_bucket(s3env: S3Env, state_dir: Path, tree: Path) -> None:
    code, err = _upload(s3env, state_dir, str(tree), "s3://no-such-bucket-here/p/")
    assert code == 2, err
    assert _error_lines(err) == ["s3pump: error: s3://no-such-bucket-here: NoSuchBucket (Not Found); create the "
                                 "bucket, check its name, or pass --embedded"], err


@pytest.mark.e2e
@pytest.mark.parametrize(("var", "value", "code_name"), [
    ("AWS_SECRET_ACCESS_KEY", "not-the-secret-key-at-all", "SignatureDoesNotMatch"),
    ("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000", "InvalidAccessKeyId"),
])
def test_bad_credentials(s3env: S3Env, bucket: str, state_dir: Path, tree: Path, var: str, value: str,
                         code_name: str) -> None:
    env = {**s3env.env(state_dir), var: value}
    code, err = _upload(s3env, state_dir, str(tree), f"s3://{bucket}/c/", env=env)
    assert code == 2, err
    lines = _error_lines(err)
    assert len(lines) == 1 and lines[0].startswith(f"s3pump: error: s3://{bucket}: {code_name} "), err
    assert "check the credentials" in lines[0] or "AWS_ACCESS_KEY_ID" in lines[0], lines[0]
    assert value not in err
    _assert_nothing_written(s3env, bucket)


@pytest.mark.e2e
def test_expired_session_token(s3env: S3Env, bucket: str, state_dir: Path, tree: Path) -> None:
    """SeaweedFS has no STS, so the proxy answers every request as AWS answers one signed with an
    expired session token: 400 ExpiredToken."""
    with FaultProxy(s3env.endpoint_url, FaultPlan.single("expired_token", 1.0)) as proxy:
        env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url,
               "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEXPIREDxTOKENxVALUE"}
        code, err = _upload(s3env, state_dir, str(tree), f"s3://{bucket}/t/", env=env)
    assert code == 2, err
    lines = _error_lines(err)
    assert len(lines) == 1 and lines[0].startswith(f"s3pump: error: s3://{bucket}: ExpiredToken "), err
    assert "refresh" in lines[0] or "credentials" in lines[0], lines[0]
    assert "FwoGZXIvYXdzEXPIREDxTOKENxVALUE" not in err
    _assert_nothing_written(s3env, bucket)


@pytest.mark.e2e
def test_invalid_destination_prefix(s3env: S3Env, bucket: str, state_dir: Path, tree: Path) -> None:
    code, err = _upload(s3env, state_dir, str(tree), f"s3://{bucket}/a/../b/")
    assert code == 2, err
    assert _error_lines(err) == [f"s3pump: error: s3://{bucket}/a/../b/: the prefix is not a valid key: key "
                                 "'a/../b' has a '.' or '..' segment; rename the path"], err
    _assert_nothing_written(s3env, bucket)


@pytest.mark.timing
@pytest.mark.e2e
def test_unreachable_endpoint(s3env: S3Env, bucket: str, state_dir: Path, tree: Path) -> None:
    env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "S3PUMP_MAX_ATTEMPTS": "2",
           "S3PUMP_CONNECT_TIMEOUT": "2s"}
    t0 = time.monotonic()
    code, err = _upload(s3env, state_dir, str(tree), f"s3://{bucket}/e/", env=env)
    elapsed = time.monotonic() - t0
    assert code == 2, err  # issue 13: a refused endpoint is a configuration error, said in one line
    assert err.strip().splitlines() == [
        "s3pump: error: the endpoint http://127.0.0.1:9 refused the connection; check "
        "--endpoint-url/the profile's endpoint_url and that the server is up"], err
    assert elapsed < 10, elapsed
    _assert_nothing_written(s3env, bucket)


@pytest.mark.e2e
def test_cleanup_cli_aborts_orphaned_uploads(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    client = s3env.boto()
    orphan = client.create_multipart_upload(Bucket=bucket, Key="o/orphan.bin")["UploadId"]
    client.upload_part(Bucket=bucket, Key="o/orphan.bin", UploadId=orphan, PartNumber=1, Body=b"x" * 100)
    other = client.create_multipart_upload(Bucket=bucket, Key="keep/other.bin")["UploadId"]
    r = run_cli(["cleanup", f"s3://{bucket}/o/", "--older-than", "1h"], s3env.env(state_dir))
    assert r.returncode == 0, r.stderr.decode()
    assert b"aborted 0 multipart upload(s); kept 1" in r.stderr  # too recent
    r = run_cli(["cleanup", f"s3://{bucket}/o/", "--older-than", "0s", "--json"], s3env.env(state_dir))
    assert r.returncode == 0, r.stderr.decode()
    assert f'"upload_id": "{orphan}"'.encode() in r.stdout
    left = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    assert left == {other}  # outside the prefix: untouched
    client.abort_multipart_upload(Bucket=bucket, Key="keep/other.bin", UploadId=other)
    r = run_cli(["cleanup", "s3://no-such-bucket-here/", "--older-than", "0s"], s3env.env(state_dir))
    assert r.returncode == 2 and b"NoSuchBucket" in r.stderr and b"Traceback" not in r.stderr


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a local disk that fills up (needs root and mount; skipped otherwise)."""
    d = tmp_path / "tiny"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


@pytest.mark.e2e
def test_full_spool_disk(s3env: S3Env, bucket: str, state_dir: Path, tiny_disk: Path) -> None:
    """``stream --spool-dir`` on a disk that fills: one line naming the spool dir, exit 1, no object,
    no open multipart upload."""
    data = os.urandom(24 * 1024 * 1024)
    r = run_cli(["stream", f"s3://{bucket}/s/full.bin", "--spool-dir", str(tiny_disk), "--no-progress"],
                s3env.env(state_dir), input=data)
    err = r.stderr.decode(errors="replace")
    _no_traceback(err)
    assert r.returncode == 1, err
    lines = _error_lines(err)
    assert len(lines) == 1 and str(tiny_disk) in lines[0], err
    assert "No space left on device" in lines[0] or "space" in lines[0].lower(), lines[0]
    _assert_nothing_written(s3env, bucket)
