"""Chaos suite: a tree of mixed sizes (with multipart files) uploaded through the fault proxy.

Each fault type runs alone at 5 % of the requests it applies to; then all of them together at
30 %. Every run must end with every object present and byte-identical (SHA-256 of a download,
read straight from SeaweedFS) and no multipart upload open. At 5 % nothing may fail. At 30 %
whatever failed is listed in the failed-list, and one rerun of the same command completes it
without re-sending the files the first run finished.

The default suite runs a small tree (see ``SMALL``); ``-n 0 -m slow`` runs the acceptance scale
(2,000 files from 0 B to 40 MiB).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from s3pump.testing.faultproxy import TRANSIENT_FAULTS, FaultPlan, FaultProxy
from tests.conftest import S3Env, run_cli
from tests.faults.conftest import MIB, assert_all_uploaded, make_tree, proxied_env

SMALL = {"count": 60, "max_size_bytes": 12 * MIB, "large": 2}
FULL = {"count": 2000, "max_size_bytes": 40 * MIB, "large": 40}


def _upload(tmp_path: Path, s3env: S3Env, proxy: FaultProxy, state_dir: Path, src: Path, bucket: str,
            name: str, **env: str) -> tuple[int, list[dict], str]:
    failed_list = tmp_path / f"failed-{name}.jsonl"
    r = run_cli(["upload", str(src), f"s3://{bucket}/c/", "--no-progress", "--json", "--concurrency", "16",
                 "--failed-list", str(failed_list)], proxied_env(s3env, proxy, state_dir, **env), timeout=1200)
    failed = [json.loads(line) for line in failed_list.read_text().splitlines()] if failed_list.exists() else []
    return r.returncode, failed, r.stderr.decode(errors="replace")


def _run_single_fault(tmp_path: Path, s3env: S3Env, proxy: FaultProxy, state_dir: Path, bucket: str,
                      fault: str, scale: dict[str, int]) -> None:
    tree = make_tree(tmp_path / "src", **scale, seed=TRANSIENT_FAULTS.index(fault))
    # force_first=1: a small tree has few CompleteMultipartUpload requests; make sure each fault fires.
    # spare_first: not on the HeadBucket the run opens with. Until the endpoint has answered once, s3pump
    # retries a request that gets no answer only once and then ends the run (exit 2: a wrong endpoint
    # must fail within seconds), so a forced stall there, followed by the 5 % one on the retry, ended the
    # run with exit 2 (seen once, in the loop of session 7; issue 12, item 17). The forced fault now lands
    # on the first upload request instead, which has the whole retry budget.
    proxy.plan = FaultPlan.single(fault, 0.05, stall_s=10.0, force_first=1, spare_first={"HeadBucket": 1})
    code, failed, err = _upload(tmp_path, s3env, proxy, state_dir, tree.root, bucket, fault)
    assert failed == [], err[-3000:]
    assert code == 0, err[-3000:]
    injected = proxy.fault_counts()[fault]
    assert injected > 0, f"{fault} was never injected: the run proves nothing"
    assert_all_uploaded(s3env, bucket, "c/", tree)


def _run_all_faults(tmp_path: Path, s3env: S3Env, proxy: FaultProxy, state_dir: Path, bucket: str,
                    scale: dict[str, int], **first_env: str) -> None:
    tree = make_tree(tmp_path / "src", **scale, seed=30)
    # Two files are doomed in the first run: every PutObject / UploadPart for them is answered 500
    # InternalError, so they fail however many attempts the run makes (the largest is a multipart upload
    # whose parts fail, so it is aborted or left to the rerun's journal). The rerun is then always
    # exercised: at 30 % alone, about one first run in a few hundred ended with nothing failed and the
    # test proved nothing (issue 12, item 17). Every other request is faulted at random as before.
    small = next(rel for rel, path in sorted(tree.files.items()) if 0 < path.stat().st_size < MIB)
    large = max(tree.files, key=lambda rel: tree.files[rel].stat().st_size)
    doomed = {f"c/{small}", f"c/{large}"}
    # the opening HeadBucket is spared: with 2 attempts, both failing at 30 % (9 % of runs) would end the
    # run before any upload and prove nothing (issue 12, item 17)
    proxy.plan = FaultPlan.uniform(0.30, stall_s=10.0, spare_first={"HeadBucket": 1},
                                   doomed=dict.fromkeys(doomed, frozenset({"PutObject", "UploadPart"})))
    code, failed, err = _upload(tmp_path, s3env, proxy, state_dir, tree.root, bucket, "first", **first_env)
    counts = proxy.fault_counts()
    assert len(counts) >= 5, f"too few fault types were injected: {counts}"
    first_log = list(proxy.log)
    put_ok = {e.key for e in first_log if e.type == "PutObject" and e.status == 200}
    # listed exactly: the run said so, and each listed key is not a finished object
    assert code == 1, err[-2000:]
    assert all(f["key"].startswith("c/") and f["error"] for f in failed)
    failed_keys = {f["key"] for f in failed}
    assert doomed <= failed_keys, f"doomed files not listed as failed: {sorted(doomed - failed_keys)}"
    print(f"first run: faults {dict(counts)}, failed {len(failed)}: {sorted(failed_keys)}")
    # the rerun: still 30 % faults on every request, nothing doomed; 10 attempts, so a request's run of bad
    # luck (0.3**6 = 0.07 % a request at the default 6, a few % over a run) or a timeout on a loaded machine
    # does not fail the check of what the rerun does. Its opening HeadBucket is spared as the first run's
    # is: a stall or reset there and on its one retry (about 1.4 % of reruns) ends the run with exit 2.
    proxy.plan = FaultPlan.uniform(0.30, stall_s=10.0, spare_first={"HeadBucket": 1})
    proxy.clear_log()
    code, failed2, err2 = _upload(tmp_path, s3env, proxy, state_dir, tree.root, bucket, "rerun",
                                  S3PUMP_MAX_ATTEMPTS="10")
    assert failed2 == [] and code == 0, err2[-3000:]
    # the rerun re-sent only what was not finished
    resent = {e.key for e in proxy.log if e.type in ("PutObject", "UploadPart", "CreateMultipartUpload")}
    assert resent <= failed_keys, f"rerun re-sent finished files: {sorted(resent - failed_keys)[:10]}"
    assert not (resent & (put_ok - failed_keys))
    assert doomed <= resent
    assert_all_uploaded(s3env, bucket, "c/", tree)


@pytest.mark.e2e
# the stall fault races a 10 s stall against the client's response timeout: wall-clock bound, run serially
@pytest.mark.parametrize("fault", [pytest.param(f, marks=pytest.mark.timing) if f == "stall" else f
                                   for f in TRANSIENT_FAULTS])
def test_each_fault_at_5_percent(tmp_path: Path, s3env: S3Env, faultproxy: FaultProxy, state_dir: Path,
                                 bucket: str, fault: str) -> None:
    _run_single_fault(tmp_path, s3env, faultproxy, state_dir, bucket, fault, SMALL)


@pytest.mark.e2e
def test_all_faults_at_30_percent_then_rerun(tmp_path: Path, s3env: S3Env, faultproxy: FaultProxy,
                                             state_dir: Path, bucket: str) -> None:
    # two attempts per request in the first run, so at 30 % files fail beside the two doomed ones, and the
    # rerun (10 attempts, still at 30 %) has work to finish
    # (and no outage tolerance: a reset or stall spends an attempt too, as this test was designed; the tolerance
    # has its own tests in test_outage_e2e.py, and with it on about 1 run in 50 ended with nothing failed)
    _run_all_faults(tmp_path, s3env, faultproxy, state_dir, bucket, SMALL, S3PUMP_MAX_ATTEMPTS="2",
                    S3PUMP_OUTAGE_TOLERANCE="0s")


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_each_fault_at_5_percent_full_scale(tmp_path: Path, s3env: S3Env, faultproxy: FaultProxy,
                                            state_dir: Path, big_bucket: str, fault: str) -> None:
    _run_single_fault(tmp_path, s3env, faultproxy, state_dir, big_bucket, fault, FULL)


@pytest.mark.slow
@pytest.mark.e2e
def test_all_faults_at_30_percent_full_scale(tmp_path: Path, s3env: S3Env, faultproxy: FaultProxy,
                                             state_dir: Path, big_bucket: str) -> None:
    _run_all_faults(tmp_path, s3env, faultproxy, state_dir, big_bucket, FULL)
