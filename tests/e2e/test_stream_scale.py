"""Acceptance scale (slow): a 4 GiB generated stream through the real CLI, peak RSS measured
(VmHWM of the s3pump process), in RAM and with --spool-dir. Run with: pytest -n 0 -m slow
tests/e2e/test_stream_scale.py. S3PUMP_STREAM_TEST_BYTES shrinks the stream for a quick check."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from s3pump.jobs.stream import STREAM_DEFAULT_CONCURRENCY
from s3pump.testing.measure import run_measured
from tests.conftest import S3Env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MIB = 2**20
SIZE = int(os.environ.get("S3PUMP_STREAM_TEST_BYTES", 4 * 1024 * MIB))
BLOCK = 64 * MIB
PRODUCER = (
    "import random, sys\n"
    "n = int(sys.argv[1]); block = random.Random(7).randbytes(64 * 2**20); out = sys.stdout.buffer\n"
    "while n > 0:\n"
    "    k = min(n, len(block)); out.write(block[:k] if k < len(block) else block); n -= k\n"
)


def _expected_sha256(size: int) -> str:
    import random

    block = random.Random(7).randbytes(BLOCK)
    h = hashlib.sha256()
    while size > 0:
        k = min(size, BLOCK)
        h.update(block[:k] if k < BLOCK else block)
        size -= k
    return h.hexdigest()


def _stream_measured(s3env: S3Env, state_dir: Path, url: str, *extra: str):
    producer = subprocess.Popen([sys.executable, "-c", PRODUCER, str(SIZE)], stdout=subprocess.PIPE)
    out = state_dir / "report.json"
    try:
        with open(out, "wb") as f:
            m = run_measured([sys.executable, "-m", "s3pump", "stream", url, "--json", "--no-progress", "--sha256",
                              *extra],
                             env=s3env.env(state_dir), stdin=producer.stdout, stdout=f)
    finally:
        assert producer.stdout is not None
        producer.stdout.close()
        producer.wait()
    assert m.returncode == 0, m.stderr.decode()[-2000:]
    return m, json.loads(out.read_text().strip().splitlines()[-1])


@pytest.mark.timeout(1200)
def test_4gib_stream_in_ram_within_bound(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    m, report = _stream_measured(s3env, state_dir, f"s3://{bucket}/big")
    bound = STREAM_DEFAULT_CONCURRENCY * 8 * MIB + 64 * MIB
    print(f"\n4 GiB stream (RAM): {m.wall_s:.1f} s, {SIZE / m.wall_s / 1e6:.1f} MB/s, cpu {m.cpu_s:.1f} s, "
          f"peak RSS {m.peak_rss_mb:.0f} MiB (c x P + 64 MiB = {bound / MIB:.0f} MiB)")
    assert report["bytes"] == SIZE and report["sha256"] == _expected_sha256(SIZE)
    head = s3env.boto().head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == SIZE and head["Metadata"]["sha256"] == report["sha256"]
    assert s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert m.peak_rss_bytes <= bound  # the bound: concurrency x part size + 64 MiB


@pytest.mark.timeout(1200)
def test_4gib_stream_spooled_under_128_mib(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    m, report = _stream_measured(s3env, state_dir, f"s3://{bucket}/big-spooled", "--spool-dir", str(spool))
    print(f"\n4 GiB stream (--spool-dir): {m.wall_s:.1f} s, {SIZE / m.wall_s / 1e6:.1f} MB/s, cpu {m.cpu_s:.1f} s, "
          f"peak RSS {m.peak_rss_mb:.0f} MiB (target <= 128 MiB)")
    assert report["bytes"] == SIZE and report["spooled"]
    assert s3env.boto().head_object(Bucket=bucket, Key="big-spooled")["ContentLength"] == SIZE
    assert list(spool.iterdir()) == []
    assert m.peak_rss_bytes <= 128 * MIB
