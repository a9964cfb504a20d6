"""Issue 13: the aws cli's habits on the command line: filters in order, ``--dry-run`` lines,
usage errors with exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import S3Env, list_all, run_cli


def _tree(root: Path) -> None:
    for rel in ("a.txt", "b.log", "tmp/c.txt", "tmp/d.log", "sub/e.txt", "sub/tmp/f.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)


def _aws_dryrun(args: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    aws = shutil.which("aws", path=os.path.dirname(sys.executable))
    assert aws, "the aws cli (test extra) is not installed next to this interpreter"
    r = subprocess.run([aws, "s3", "cp", "--recursive", "--dryrun", *args], env=env, cwd=cwd,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return set(r.stdout.decode().splitlines())


@pytest.mark.e2e
@pytest.mark.parametrize("filters", [
    ["--exclude", "*", "--include", "*.txt"],
    ["--include", "*.txt", "--exclude", "tmp/*"],
    ["--exclude", "*.log", "--include", "tmp/*", "--exclude", "tmp/c.txt"],
    ["--exclude=*", "--include=sub/*"],
])
def test_filters_and_dry_run_lines_match_aws(filters: list[str], s3env: S3Env, bucket: str, state_dir: Path,
                                             tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    env = s3env.env(state_dir)
    expected = _aws_dryrun(["src", f"s3://{bucket}/p/", *filters], env, tmp_path)
    assert expected  # each case takes some files
    r = subprocess.run([sys.executable, "-m", "s3pump", "upload", "src", f"s3://{bucket}/p/", "--dry-run",
                        "--no-progress", *filters], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert set(r.stdout.decode().splitlines()) == expected
    # --json: the same uploads as events; and the real run uploads exactly those keys
    r = subprocess.run([sys.executable, "-m", "s3pump", "upload", "src", f"s3://{bucket}/p/", "--dry-run",
                        "--json", "--no-progress", *filters], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    events = [json.loads(line) for line in r.stdout.decode().splitlines()]
    planned = {f"(dryrun) upload: {e['source']} to s3://{bucket}/{e['key']}" for e in events
               if e.get("reason") == "dry-run"}
    assert planned == expected
    assert list_all(s3env.boto(), bucket) == {}
    r = subprocess.run([sys.executable, "-m", "s3pump", "upload", "src", f"s3://{bucket}/p/", "--no-progress",
                        *filters], env=env, cwd=tmp_path, capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert {f"s3://{bucket}/{k}" for k in list_all(s3env.boto(), bucket)} == {
        line.rsplit(" to ", 1)[1] for line in expected}


@pytest.mark.e2e
def test_usage_errors_exit_2_in_one_line(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    env = s3env.env(state_dir)
    (tmp_path / "f.txt").write_text("x")
    cases = [
        (["upload", "nosuchfile.txt", f"s3://{bucket}/x/"], "s3pump: error: the path nosuchfile.txt does not exist"),
        (["upload", str(tmp_path / "f.txt"), f"s3://{bucket}/x/", "--metadata", "foo"],
         "s3pump: error: --metadata 'foo': use key=value"),
        (["sync", str(tmp_path / "nodir"), f"s3://{bucket}/x/"],
         f"s3pump: error: the path {tmp_path / 'nodir'} does not exist"),
        (["generate", str(tmp_path / "f.txt"), "--count", "3"],
         f"s3pump: error: {tmp_path / 'f.txt'} exists and is not a directory; give a directory to write into"),
    ]
    for args, line in cases:
        r = subprocess.run([sys.executable, "-m", "s3pump", *args, *(["--no-progress"] if args[0] != "generate"
                                                                     else [])],
                           env=env, cwd=tmp_path, capture_output=True, timeout=120)
        assert r.returncode == 2, (args, r.stderr.decode())
        assert r.stderr.decode().splitlines() == [line], args
    assert list_all(s3env.boto(), bucket) == {}
    assert not (state_dir / "failed").exists()  # a usage error writes no failed-list
    r = run_cli(["upload", "--no-progress", str(tmp_path / "f.txt"), f"s3://{bucket}/ok.txt"], env)
    assert r.returncode == 0


@pytest.mark.e2e
def test_skipped_entries_counted_and_reported(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    import socket
    import stat

    src = tmp_path / "src"
    src.mkdir()
    (src / "real.txt").write_text("real")
    os.symlink(src / "real.txt", src / "link.txt")
    os.mkfifo(src / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock"))
    kinds = {"symlink", "fifo", "socket"}
    try:
        os.mknod(src / "dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        kinds.add("device")
    except PermissionError:
        pass  # no CAP_MKNOD here: the other kinds still prove the count
    try:
        r = run_cli(["upload", str(src), f"s3://{bucket}/s/", "--json", "--no-progress"], s3env.env(state_dir))
    finally:
        sock.close()
    assert r.returncode == 0, r.stderr.decode()
    events = [json.loads(line) for line in r.stdout.decode().splitlines()]
    skipped = {(e["source"], e["kind"]) for e in events if e["event"] == "skipped_entry"}
    names = {"symlink": "link.txt", "fifo": "pipe", "socket": "sock", "device": "dev"}
    assert skipped == {(str(src / names[k]), k) for k in kinds}
    lines = [line for line in r.stderr.decode().splitlines() if line.startswith("skipped ")]
    expected = ", ".join(f"1 {k}" + (" (not followed; --follow-symlinks follows them)" if k == "symlink" else "")
                         for k in sorted(kinds))
    assert lines == [f"skipped {expected}: not regular files"], r.stderr.decode()
    assert set(list_all(s3env.boto(), bucket)) == {"s/real.txt"}
    # sync says the same
    r = run_cli(["sync", str(src), f"s3://{bucket}/y/", "--no-progress"], s3env.env(state_dir))
    assert r.returncode == 0, r.stderr.decode()
    assert [line for line in r.stderr.decode().splitlines() if line.startswith("skipped ")] == lines
    assert set(list_all(s3env.boto(), bucket)) == {"s/real.txt", "y/real.txt"}
