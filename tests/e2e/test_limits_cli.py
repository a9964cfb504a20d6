"""--max-rps, --bwlimit, --progress plain and the Prometheus metrics, end to end.

Request rates are measured on the wire by a pass-through FaultProxy (no faults, a request log);
bandwidth from outside, as bytes over the CLI's wall time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3pump.devserver import pick_ports
from s3pump.jobs.generate import generate
from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli

pytestmark = pytest.mark.timing  # rates and deadlines on the wall clock: run serially (pyproject)

MIB = 2**20


@pytest.fixture
def recorder(s3env: S3Env) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan())
    proxy.start()
    yield proxy
    proxy.stop()


def put_rate(proxy: FaultProxy) -> tuple[int, float]:
    times = sorted(e.time_s for e in proxy.log if e.type == "PutObject")
    return len(times), (len(times) - 1) / (times[-1] - times[0])


def _rps(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, recorder: FaultProxy, count: int) -> None:
    generate(tmp_path / "src", count=count, size_bytes=16)
    env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": recorder.endpoint_url}
    r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/r/", "--max-rps", "200", "--no-progress"], env)
    assert r.returncode == 0, r.stderr.decode()
    n, rate = put_rate(recorder)
    print(f"{n} PutObject at {rate:.1f} requests/s")
    assert n == count
    assert 190 <= rate <= 210  # 200 +- 5 %
    assert len(list_all(s3env.boto(), bucket, "r/")) == count


@pytest.mark.e2e
def test_max_rps(s3env: S3Env, warm_bucket: str, state_dir: Path, tmp_path: Path, recorder: FaultProxy) -> None:
    _rps(s3env, warm_bucket, state_dir, tmp_path, recorder, 600)


@pytest.mark.e2e
@pytest.mark.slow
def test_max_rps_5000_files(s3env: S3Env, warm_bucket: str, state_dir: Path, tmp_path: Path,
                            recorder: FaultProxy) -> None:
    _rps(s3env, warm_bucket, state_dir, tmp_path, recorder, 5000)


def _bwlimit(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, small: int, large_bytes: int,
             *, outside: bool) -> None:
    """Upload ``small`` 1 MiB files and one ``large_bytes`` multipart file at --bwlimit 20M; the rate
    (over the CLI's wall time if ``outside``, else over the run's own elapsed time) is 20 MB/s +- 5 %."""
    generate(tmp_path / "src" / "many", count=small, size_bytes=MIB, seed=1)
    generate(tmp_path / "src" / "one", count=1, size_bytes=large_bytes, seed=2)
    total = small * MIB + large_bytes
    t0 = time.monotonic()
    r = run_cli(["upload", str(tmp_path / "src"), f"s3://{bucket}/bw/", "--bwlimit", "20M", "--no-progress",
                 "--json"], s3env.env(state_dir))
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    assert summary["bytes_done"] == total
    seconds = wall if outside else summary["elapsed_s"]
    rate = total / seconds
    print(f"{total / MIB:.0f} MiB in {seconds:.2f} s ({'wall' if outside else 'run'}): {rate / 1e6:.2f} MB/s")
    assert abs(rate - 20e6) <= 0.05 * 20e6
    objects = list_all(s3env.boto(), bucket, "bw/")
    assert len(objects) == small + 1
    assert any(o["ETag"].strip('"').endswith("-" + str(-(-large_bytes // (8 * MIB)))) for o in objects.values())


@pytest.mark.e2e
def test_bwlimit_small(s3env: S3Env, warm_bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """80 MiB in ~4 s: the CLI's start-up (~0.5 s, more on a busy machine) would dominate a wall-time
    measure, so this quick variant measures the run itself; the 400 MiB run below measures from outside."""
    _bwlimit(s3env, warm_bucket, state_dir, tmp_path, 40, 40 * MIB, outside=False)


@pytest.mark.e2e
@pytest.mark.slow
def test_bwlimit_400mib(s3env: S3Env, warm_bucket: str, state_dir: Path, tmp_path: Path) -> None:
    _bwlimit(s3env, warm_bucket, state_dir, tmp_path, 200, 200 * MIB, outside=True)


@pytest.mark.e2e
def test_metrics_scraped_during_run_match_summary(s3env: S3Env, warm_bucket: str, state_dir: Path,
                                                   tmp_path: Path) -> None:
    generate(tmp_path / "src", count=300, size_bytes=1000)
    port = pick_ports(1)[0]
    metrics_file = tmp_path / "metrics.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "s3pump", "upload", str(tmp_path / "src"), f"s3://{warm_bucket}/m/",
         "--max-rps", "100",
         "--metrics-port", str(port), "--metrics-file", str(metrics_file), "--progress", "plain"],
        env=s3env.env(state_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    scrapes = []
    deadline = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline and len(scrapes) < 2:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            time.sleep(0.2)
            continue
        done = [ln for ln in text.splitlines() if ln.startswith('s3pump_requests_total{operation="PutObject"')]
        if done:
            scrapes.append(float(done[0].rsplit(" ", 1)[1]))
            assert "s3pump_requests_in_flight" in text and "s3pump_concurrency_limit" in text
            assert "s3pump_request_duration_seconds_bucket" in text
            time.sleep(1.0)
        else:
            time.sleep(0.2)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert len(scrapes) == 2 and 0 < scrapes[0] < scrapes[1] < 300  # counters moving during the run
    final = json.loads(metrics_file.read_text())
    summary, metrics = final["summary"], final["metrics"]
    assert summary["files_done"] == 300
    assert metrics['s3pump_requests_total{operation="PutObject",status="200"}'] == summary["files_done"]
    assert metrics["s3pump_uploaded_bytes_total"] == summary["bytes_done"] == 300_000
    assert metrics['s3pump_objects_total{result="done"}'] == 300
    assert metrics["s3pump_request_duration_seconds_count"] == 300
    # --progress plain lines on stderr: files, bytes and a rate in the binary units of the sizes
    assert re.search(r"^s3pump: \d+/\d+\+? files, .*, [\d.]+ (B|KiB|MiB|GiB)/s, \d+ retries", err.decode(), re.M), \
        err.decode()
    assert os.path.getsize(metrics_file) > 0


def _files_per_s(s3env: S3Env, bucket: str, state_dir: Path, src: Path, proxy: FaultProxy, concurrency: str,
                 prefix: str) -> tuple[float, int, int]:
    """One upload through ``proxy``: (files/s over the run, PutObject requests, SlowDown answers)."""
    env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": proxy.endpoint_url, "S3PUMP_RETRY_BUDGET": "1000000",
           "S3PUMP_MAX_ATTEMPTS": "100", "S3PUMP_BACKOFF_BASE": "0.02", "S3PUMP_BACKOFF_MAX": "0.2"}
    proxy.log.clear()
    r = run_cli(["upload", str(src), f"s3://{bucket}/{prefix}/", "--concurrency", concurrency, "--no-progress",
                 "--json"], env)
    assert r.returncode == 0, r.stderr.decode()
    summary = json.loads(r.stdout.decode().splitlines()[-1])
    puts = [e for e in proxy.log if e.type == "PutObject"]
    slowdowns = sum(1 for e in puts if e.fault == "capacity")
    return summary["files_done"] / summary["elapsed_s"], len(puts), slowdowns


def _adaptive(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path, count: int, sweep: list[int]) -> None:
    """A server that serves at most K=8 requests at once (20 ms each) and answers SlowDown beyond that."""
    generate(tmp_path / "src", count=count, size_bytes=1024)
    proxy = FaultProxy(s3env.endpoint_url, FaultPlan(max_in_flight=8, delay_s={"PutObject": 0.02}))
    proxy.start()
    try:
        fixed = {c: _files_per_s(s3env, bucket, state_dir, tmp_path / "src", proxy, str(c), f"c{c}")[0]
                 for c in sweep}
        auto, puts, slowdowns = _files_per_s(s3env, bucket, state_dir, tmp_path / "src", proxy, "auto", "auto")
    finally:
        proxy.stop()
    best = max(fixed.values())
    print(f"fixed: { {c: round(v) for c, v in fixed.items()} } files/s; auto {auto:.0f} files/s "
          f"({auto / best:.0%} of the best); SlowDown {slowdowns}/{puts} = {slowdowns / puts:.1%}")
    assert auto >= 0.8 * best
    assert slowdowns / puts < 0.05
    assert len(list_all(s3env.boto(), bucket, "auto/")) == count


@pytest.mark.e2e
def test_adaptive_concurrency_finds_capacity(s3env: S3Env, warm_bucket: str, state_dir: Path,
                                             tmp_path: Path) -> None:
    # the best fixed concurrency is 8 or 16 (the server serves 8 at once; 4 reach at most half of it)
    _adaptive(s3env, warm_bucket, state_dir, tmp_path, 1500, [8, 16])


@pytest.mark.e2e
@pytest.mark.slow
def test_adaptive_concurrency_sweep(s3env: S3Env, warm_bucket: str, state_dir: Path, tmp_path: Path) -> None:
    _adaptive(s3env, warm_bucket, state_dir, tmp_path, 3000, [2, 4, 6, 8, 12, 16, 32, 64])
