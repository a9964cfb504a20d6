"""``ulimit -n 32``: the run says what ran out (open files, ``ulimit -n``), once, exit 2 (issue 24),
not a misleading "cannot write the failed-list ... writable directory"."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from s3pump.jobs.generate import generate
from tests.conftest import S3Env


def _limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))


@pytest.mark.e2e
@pytest.mark.parametrize("job", ["upload", "sync"])
def test_ulimit_n_32_is_one_line_naming_open_files(s3env: S3Env, bucket: str, tmp_path: Path, state_dir: Path,
                                                  job: str) -> None:
    src = tmp_path / "src"
    generate(src, count=120, size_bytes=2048, seed=7)
    (src / "big.bin").write_bytes(b"\x03" * (12 * 1024 * 1024))
    args = [job, str(src), f"s3://{bucket}/o/", "--no-progress"]
    r = subprocess.run([sys.executable, "-m", "s3pump", *args], env=s3env.env(state_dir), capture_output=True,
                       timeout=120, preexec_fn=_limit_open_files)
    err = r.stderr.decode()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert r.returncode == 2, err
    assert len(lines) == 1, err
    assert "open files" in lines[0] and "ulimit -n" in lines[0] and "32" in lines[0], lines[0]
    assert "failed-list" not in err and "writable directory" not in err
    assert "Traceback" not in err and "AWS_ERROR" not in err
