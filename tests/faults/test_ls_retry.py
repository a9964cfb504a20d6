"""Issue 27: ``ls`` goes through a Run, so its requests are retried by the run's policy: a 503
SlowDown on ListBuckets or on a one-level ListObjectsV2 is retried, and the listing is whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, run_cli
from tests.faults.conftest import proxied_env


@pytest.mark.e2e
def test_ls_retries_a_503_on_list_buckets_and_on_a_one_level_listing(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy) -> None:
    client = s3env.boto()
    for key in ("p/a.txt", "p/b.txt", "p/sub/c.txt"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    env = proxied_env(s3env, faultproxy, state_dir)
    for args, rtype, want in (([f"s3://{bucket}/p/"], "ListObjects", ["PRE sub/", " a.txt", " b.txt"]),
                              ([], "ListBuckets", [f" {bucket}"])):
        faultproxy.plan = FaultPlan(rates={"slowdown": 1.0}, only_types=frozenset({rtype}),
                                    max_faults=faultproxy.faults_injected + 1)  # one more 503
        faultproxy.log.clear()

        r = run_cli(["ls", *args], env, timeout=60)

        assert r.returncode == 0, (args, r.stderr.decode())
        lines = r.stdout.decode().splitlines()
        for end in want:
            assert [ln for ln in lines if ln.endswith(end)], (end, lines)
        if not args:
            assert len(lines) == len(client.list_buckets()["Buckets"]), lines
        else:
            assert len(lines) == 3, lines
        assert [e.fault for e in faultproxy.entries(type=rtype)] == ["slowdown", None], faultproxy.log
