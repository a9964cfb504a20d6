"""``--cluster`` limits: a per-worker bandwidth cap scales with the workers, and ``--bwlimit`` is a
global total split over them (LocalClusters of 1 and 2 worker processes, the test SeaweedFS).

Timed, so marked slow: on the shared 2-core machine a capped worker is what bounds the run (SeaweedFS
alone would share the two cores between the workers and show no gain)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from s3pump.jobs.upload import upload  # noqa: E402
from tests.conftest import S3Env, list_all  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

MIB = 1024 * 1024
FILES, FILE_BYTES = 24, 2 * MIB  # 48 MiB in single PUTs, 12 shards of 2 files


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    for i in range(FILES):
        (root / f"f{i:02d}.bin").write_bytes(os.urandom(FILE_BYTES))
    return root


def _cluster(s3env: S3Env, workers: int) -> distributed.LocalCluster:
    env = {"AWS_ACCESS_KEY_ID": s3env.server.access_key_id, "AWS_SECRET_ACCESS_KEY": s3env.server.secret_access_key,
           "AWS_REGION": s3env.server.region}
    return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                    dashboard_address=None, env=env)


@pytest.fixture
def clients(s3env: S3Env) -> Iterator[dict[int, distributed.Client]]:
    with _cluster(s3env, 1) as one, _cluster(s3env, 2) as two, \
            distributed.Client(one) as c1, distributed.Client(two) as c2:
        yield {1: c1, 2: c2}


def _timed_upload(s3env: S3Env, tree: Path, bucket: str, prefix: str, client: distributed.Client,
                  tmp_path: Path, cap: int | None = None, **config: object) -> float:
    started = time.monotonic()
    report = upload([tree], f"s3://{bucket}/{prefix}/", s3env.config(**config), cluster=client,
                    failed_list=tmp_path / f"{prefix}.jsonl",
                    cluster_options={"shard_files": 2, "worker_bwlimit_bps": cap})
    elapsed = time.monotonic() - started
    assert report.ok and report.files_done == FILES and report.cluster is not None
    assert len(list_all(s3env.boto(), bucket, f"{prefix}/")) == FILES
    print(f"{prefix}: {elapsed:.2f} s in all, {report.cluster['transfer_s']:.2f} s transferring")
    return float(report.cluster["transfer_s"])  # without the per-run start (path check, plugin: ~0.1-1 s)


def test_two_capped_workers_are_at_least_1_8_times_one_and_bwlimit_is_global(
        s3env: S3Env, warm_bucket: str, tree: Path, tmp_path: Path, clients: dict[int, distributed.Client],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3PUMP_STATE_DIR", str(tmp_path / "state"))
    cap = 4 * MIB
    t1 = _timed_upload(s3env, tree, warm_bucket, "one", clients[1], tmp_path, cap=cap)
    t2 = _timed_upload(s3env, tree, warm_bucket, "two", clients[2], tmp_path, cap=cap)
    speedup = t1 / t2
    print(f"per-worker cap 4 MiB/s, transfer time: 1 worker {t1:.2f} s, 2 workers {t2:.2f} s, "
          f"speed-up {speedup:.2f}x")
    assert speedup >= 1.8

    limit = 8 * MIB  # global; each of the 2 workers gets 4 MiB/s
    tg = _timed_upload(s3env, tree, warm_bucket, "global", clients[2], tmp_path, max_bandwidth_bps=limit)
    rate = FILES * FILE_BYTES / tg
    print(f"--bwlimit 8 MiB/s on 2 workers: {rate / MIB:.2f} MiB/s ({rate / limit:.3f} of the limit)")
    assert rate <= 1.05 * limit
    assert rate >= 0.75 * limit  # the limit, not overhead, bounded the run
