"""Memory does not grow with the number of files: 1,000,000 zero-byte files planned (--dry-run)
and 100,000 uploaded for real, each under 200 MB peak RSS."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from s3pump.jobs.generate import generate
from s3pump.testing.measure import run_measured
from tests.conftest import S3Env, list_all

LIMIT_BYTES = 200 * 2**20


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("million")
    generate(root, count=1_000_000, size_bytes=0)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _upload(args: list[str], env: dict[str, str], out: Path) -> tuple[dict, float]:
    with open(out, "wb") as stdout:
        m = run_measured([sys.executable, "-m", "s3pump", "upload", *args, "--json", "--no-progress"],
                         env=env, stdout=stdout)
    assert m.returncode == 0, m.stderr.decode()[-2000:]
    with open(out, "rb") as f:
        f.seek(-4096, 2)
        summary = json.loads(f.read().splitlines()[-1])
    return summary, m.peak_rss_bytes


@pytest.mark.slow
@pytest.mark.e2e
def test_million_files_dry_run_bounded(million: Path, s3env: S3Env, bucket: str, state_dir: Path,
                                       tmp_path: Path) -> None:
    summary, peak = _upload([str(million), f"s3://{bucket}/m/", "--dry-run"], s3env.env(state_dir),
                            tmp_path / "out.jsonl")
    assert summary["files_skipped"] == 1_000_000 and summary["files_failed"] == 0
    print(f"1,000,000 files --dry-run: peak RSS {peak / 2**20:.1f} MB")
    assert peak <= LIMIT_BYTES


@pytest.mark.slow
@pytest.mark.e2e
def test_hundred_thousand_files_uploaded_bounded(million: Path, s3env: S3Env, bucket: str, state_dir: Path,
                                                 tmp_path: Path) -> None:
    subset = [str(million / f"d{i:05d}") for i in range(100)]  # 100 directories x 1,000 files
    summary, peak = _upload([*subset, f"s3://{bucket}/u/"], s3env.env(state_dir), tmp_path / "out.jsonl")
    assert summary["files_done"] == 100_000 and summary["files_failed"] == 0
    assert len(list_all(s3env.boto(), bucket, "u/")) == 100_000
    print(f"100,000 files uploaded: peak RSS {peak / 2**20:.1f} MB")
    assert peak <= LIMIT_BYTES
