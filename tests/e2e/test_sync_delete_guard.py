"""Issue 26: a guarded ``sync --delete``. ``--max-delete N|P%`` refuses a plan that deletes more
(exit 2, one line, nothing deleted); excluded keys are never deleted; a dry run says how many
objects it would delete and how many bytes they hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import S3Env, list_all, run_cli


def seed(s3env: S3Env, bucket: str, keys: list[str], size: int = 1000) -> None:
    client = s3env.boto()
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"o" * size)


@pytest.mark.parametrize("limit", ["10", "50%"])
def test_max_delete_refuses_a_plan_over_the_limit(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path,
                                                  limit: str) -> None:
    """11 of 20 objects have no local file: over 10, and over 50 %. Nothing is deleted."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(9):
        (src / f"keep{i}.txt").write_bytes(b"o" * 1000)
    seed(s3env, bucket, [f"p/keep{i}.txt" for i in range(9)] + [f"p/gone{i}.txt" for i in range(11)])
    before = sorted(list_all(s3env.boto(), bucket))
    p = run_cli(["sync", str(src), f"s3://{bucket}/p/", "--delete", "--max-delete", limit, "--no-progress"],
                s3env.env(state_dir))
    assert p.returncode == 2, p.stderr.decode()
    lines = [x for x in p.stderr.decode().splitlines() if x.startswith("s3pump: error")]
    assert len(lines) == 1 and "would delete 11 objects" in lines[0] and "--max-delete" in lines[0], p.stderr.decode()
    assert "Traceback" not in p.stderr.decode()
    assert sorted(list_all(s3env.boto(), bucket)) == before

    # at the limit, it deletes
    ok = run_cli(["sync", str(src), f"s3://{bucket}/p/", "--delete", "--max-delete", "11" if limit == "10" else "55%",
                  "--no-progress"], s3env.env(state_dir))
    assert ok.returncode == 0, ok.stderr.decode()
    assert sorted(list_all(s3env.boto(), bucket)) == [f"p/keep{i}.txt" for i in range(9)]


def test_excluded_keys_survive_delete(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    seed(s3env, bucket, ["p/a.txt", "p/old.txt", "p/logs/x.log", "p/cache.tmp"])
    p = run_cli(["sync", str(src), f"s3://{bucket}/p/", "--delete", "--exclude", "logs/*", "--exclude", "*.tmp",
                 "--no-progress"], s3env.env(state_dir))
    assert p.returncode == 0, p.stderr.decode()
    assert sorted(list_all(s3env.boto(), bucket)) == ["p/a.txt", "p/cache.tmp", "p/logs/x.log"]


def test_dry_run_says_how_many_deletes_and_bytes(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    seed(s3env, bucket, [f"p/gone{i}.bin" for i in range(3)], size=1024 * 1024)
    p = run_cli(["sync", str(src), f"s3://{bucket}/p/", "--delete", "--dry-run"], s3env.env(state_dir))
    assert p.returncode == 0, p.stderr.decode()
    assert "would delete 3 (3.0 MiB)" in p.stderr.decode(), p.stderr.decode()
    assert p.stdout.decode().count("(dry-run) delete: ") == 3
    assert len(list_all(s3env.boto(), bucket)) == 3
