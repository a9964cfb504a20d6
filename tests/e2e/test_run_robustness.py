"""Issue 12, run robustness through the real CLI: two sources mapping to one key (item 5), a closed
stdout under ``--json`` (item 8), and local files that cannot be written or a closed stdin (item 11).

Each case ends with one line on stderr (no traceback), its documented exit code, only correct
objects, and no multipart upload left open.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import S3Env, list_all, run_cli

MIB = 1024 * 1024


def _err_lines(stderr: bytes) -> list[str]:
    text = stderr.decode(errors="replace")
    assert "Traceback" not in text, text
    return [line for line in text.splitlines() if line.startswith("s3pump: error:")]


def _no_open_uploads(s3env: S3Env, bucket: str) -> None:
    assert s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def _objects_match(s3env: S3Env, bucket: str, prefix: str, files: dict[str, Path]) -> set[str]:
    """Every object under ``prefix`` is byte-identical to its file; returns the relative keys present."""
    client = s3env.boto()
    present = set()
    for key in list_all(client, bucket, prefix):
        rel = key[len(prefix):]
        assert rel in files, f"unexpected object {key}"
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(files[rel].read_bytes()).digest(), key
        present.add(rel)
    return present


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator:
    """``mount_tmpfs(name, size="1m", ro=False)``: a small tmpfs (a disk that fills up, or a read-only
    one that refuses even root). Needs root and mount; skipped otherwise."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "1m", ro: bool = False) -> Path:
        d = tmp_path / name
        d.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], check=False)


# ---------------------------------------------------------------- item 5: two sources, one key
@pytest.mark.e2e
def test_two_sources_mapping_to_one_key_are_refused(s3env: S3Env, bucket: str, state_dir: Path,
                                                    tmp_path: Path) -> None:
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    (d1 / "sub").mkdir(parents=True)
    (d2 / "sub").mkdir(parents=True)
    (d1 / "x.txt").write_bytes(b"one")
    (d2 / "x.txt").write_bytes(b"two")
    (d1 / "sub" / "y.txt").write_bytes(b"y1")
    (d2 / "sub" / "y.txt").write_bytes(b"y2")
    (d1 / "only1.txt").write_bytes(b"1")
    (d2 / "only2.txt").write_bytes(b"2")
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "x.txt").write_bytes(b"three")  # a file root whose name is a directory root's relative path
    r = run_cli(["upload", str(d1), str(d2), str(loose / "x.txt"), f"s3://{bucket}/p/", "--no-progress"],
                s3env.env(state_dir))
    lines = _err_lines(r.stderr)
    assert r.returncode == 2, r.stderr.decode()
    assert lines == [
        f"s3pump: error: s3://{bucket}/p/sub/y.txt: {d1}/sub/y.txt and {d2}/sub/y.txt map to this key; "
        "upload them to different prefixes, or --exclude one; nothing was uploaded",
        f"s3pump: error: s3://{bucket}/p/x.txt: {d1}/x.txt and {d2}/x.txt and {loose}/x.txt map to this key; "
        "upload them to different prefixes, or --exclude one; nothing was uploaded",
    ], r.stderr.decode()
    assert list_all(s3env.boto(), bucket) == {}
    _no_open_uploads(s3env, bucket)
    # the same roots with the clash filtered out upload normally
    r = run_cli(["upload", str(d1), str(d2), f"s3://{bucket}/p/", "--no-progress", "--exclude", "x.txt",
                 "--exclude", "sub/*"], s3env.env(state_dir))
    assert r.returncode == 0, r.stderr.decode()
    assert set(list_all(s3env.boto(), bucket)) == {"p/only1.txt", "p/only2.txt"}


# ---------------------------------------------------------------- item 8: --json | head -1
@pytest.mark.e2e
def test_closed_stdout_does_not_stop_the_upload(s3env: S3Env, bucket: str, state_dir: Path,
                                                tmp_path: Path) -> None:
    """800 files write ~150 KB of JSON lines, more than a pipe and stdout's buffer hold, so the run
    surely writes after the reader left; the multipart files come last, in flight at that time."""
    src = tmp_path / "src"
    src.mkdir()
    files: dict[str, Path] = {}
    for i in range(800):
        p = src / f"f{i:04d}.txt"
        p.write_bytes(os.urandom(64 + i % 200))
        files[p.name] = p
    for i in range(3):
        p = src / f"z{i}.bin"
        p.write_bytes(os.urandom(6 * MIB + i))
        files[p.name] = p
    env = {**s3env.env(state_dir), "S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "s3pump", "upload", str(src), f"s3://{bucket}/j/", "--json", "--no-progress",
         "--concurrency", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    err = proc.stderr.read()
    code = proc.wait(timeout=300)
    assert first.startswith(b'{"event": "done"'), first
    assert _err_lines(err) == [], err.decode()
    assert code == 0, err.decode()
    assert b"stdout was closed by its reader (broken pipe)" in err, err.decode()
    assert b"uploaded 803 files" in err, err.decode()
    assert _objects_match(s3env, bucket, "j/", files) == set(files)
    _no_open_uploads(s3env, bucket)


# ---------------------------------------------------------------- item 11: local files, stdin
@pytest.mark.e2e
@pytest.mark.parametrize("var", ["S3PUMP_STATE_DIR", "XDG_STATE_HOME"])
def test_read_only_state_dir(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, mount_tmpfs,
                             var: str) -> None:
    ro = mount_tmpfs("ro-state", ro=True)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    env = {k: v for k, v in s3env.env(state_dir).items() if k != "S3PUMP_STATE_DIR"}
    env[var] = str(ro)
    state = ro if var == "S3PUMP_STATE_DIR" else ro / "s3pump"
    # the failed-list is checked first (its default is in the state dir) ...
    r = run_cli(["upload", str(src), f"s3://{bucket}/r/", "--no-progress"], env)
    assert r.returncode == 2, r.stderr.decode()
    assert _err_lines(r.stderr) == [
        f"s3pump: error: {state}/failed: cannot write the failed-list (Read-only file system); pass "
        "--failed-list with a file in a writable directory (or set S3PUMP_STATE_DIR)"], r.stderr.decode()
    # ... then the journal
    r = run_cli(["upload", str(src), f"s3://{bucket}/r/", "--no-progress", "--failed-list",
                 str(tmp_path / "failed.jsonl")], env)
    assert r.returncode == 2, r.stderr.decode()
    lines = _err_lines(r.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"s3pump: error: {state}/journals/upload-"), r.stderr.decode()
    assert lines[0].endswith(".sqlite: cannot write the resume journal (Read-only file system); set "
                             "S3PUMP_STATE_DIR to a writable directory"), lines[0]
    assert list_all(s3env.boto(), bucket) == {}
    _no_open_uploads(s3env, bucket)


@pytest.mark.e2e
def test_read_only_failed_list_directory(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path,
                                         mount_tmpfs) -> None:
    ro = mount_tmpfs("ro-lists", ro=True)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    r = run_cli(["upload", str(src), str(tmp_path / "missing"), f"s3://{bucket}/f/", "--no-progress",
                 "--failed-list", str(ro / "failed.jsonl")], s3env.env(state_dir))
    assert r.returncode == 2, r.stderr.decode()
    assert _err_lines(r.stderr) == [
        f"s3pump: error: {ro}: cannot write the failed-list (Read-only file system); pass --failed-list "
        "with a file in a writable directory (or set S3PUMP_STATE_DIR)"], r.stderr.decode()
    r = run_cli(["sync", str(src), f"s3://{bucket}/f/", "--no-progress", "--failed-list", str(ro / "failed.jsonl")],
                s3env.env(state_dir))
    assert r.returncode == 2, r.stderr.decode()
    assert _err_lines(r.stderr) == [
        f"s3pump: error: {ro}: cannot write the failed-list (Read-only file system); pass --failed-list "
        "with a file in a writable directory (or set S3PUMP_STATE_DIR)"], r.stderr.decode()
    assert list_all(s3env.boto(), bucket) == {}
    _no_open_uploads(s3env, bucket)


@pytest.mark.e2e
def test_journal_disk_fills_mid_run(s3env: S3Env, bucket: str, tmp_path: Path, mount_tmpfs) -> None:
    """Each journal commit appends at least one 4 KiB page to the WAL: 600 files outgrow a 1 MiB
    disk partway. The run stops with one line naming the journal, exit 2, every object that exists
    is its file's bytes, and the multipart uploads in flight were aborted."""
    state = mount_tmpfs("tiny-state", size="1m")
    src = tmp_path / "src"
    src.mkdir()
    files: dict[str, Path] = {}
    for i in range(600):
        p = src / f"f{i:04d}.bin"
        p.write_bytes(os.urandom(6 * MIB if i % 60 == 30 else 100 + i))  # a multipart file every 60
        files[p.name] = p
    env = {**S3Env.env(s3env, state), "S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB"}
    r = run_cli(["upload", str(src), f"s3://{bucket}/full/", "--no-progress", "--concurrency", "8",
                 "--failed-list", str(tmp_path / "failed.jsonl")], env)
    lines = _err_lines(r.stderr)
    assert r.returncode == 2, r.stderr.decode()
    assert len(lines) == 1 and lines[0].startswith(f"s3pump: error: {state}/journals/upload-"), r.stderr.decode()
    assert lines[0].endswith(".sqlite: cannot write the resume journal (database or disk is full); free space "
                             "on that filesystem, or set S3PUMP_STATE_DIR to a writable directory"), lines[0]
    present = _objects_match(s3env, bucket, "full/", files)
    assert 0 < len(present) < len(files), len(present)
    _no_open_uploads(s3env, bucket)


@pytest.mark.e2e
def test_stream_with_closed_stdin(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    r = subprocess.run(["sh", "-c", 'exec "$0" -m s3pump stream "$1" --no-progress <&-', sys.executable,
                        f"s3://{bucket}/s/x.bin"], env=s3env.env(state_dir), capture_output=True, timeout=60)
    assert r.returncode == 2, r.stderr.decode()
    assert _err_lines(r.stderr) == ["s3pump: error: stdin is closed; pipe the data in (cmd | s3pump stream ...) "
                                    "or pass --input FILE"], r.stderr.decode()
    assert list_all(s3env.boto(), bucket) == {}
    _no_open_uploads(s3env, bucket)
