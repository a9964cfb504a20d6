"""One retry policy: every retried request is counted in the report, whichever layer retried it
(the engine's PUTs and parts, CreateMultipartUpload, CompleteMultipartUpload, the bucket check)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import s3pump
from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all
from tests.faults.conftest import MIB, make_tree

#: Faults the proxy answers itself (the request is not forwarded), so each one costs exactly one retry.
_ANSWERED = {"slowdown": 0.06, "internal": 0.06, "throttle": 0.06, "complete_200_error": 0.3}
_TYPES = frozenset({"HeadBucket", "PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload"})


@dataclass
class _FirstOfEachType(FaultPlan):
    """The first request of each type gets a fault (so every layer's retries are exercised in every
    run, whatever order the threads send in); later ones by the rates."""

    seen: set[str] = field(default_factory=set)

    def choose(self, rtype: str, rng: object, key: str = "", body_bytes: int | None = None) -> str | None:
        if rtype in _TYPES and rtype not in self.seen:
            self.seen.add(rtype)
            return "complete_200_error" if rtype == "CompleteMultipartUpload" else "slowdown"
        return super().choose(rtype, rng, key, body_bytes)  # type: ignore[arg-type]


@pytest.mark.e2e
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_report_counts_every_retried_request(s3env: S3Env, bucket: str, tmp_path: Path, seed: int) -> None:
    tree = make_tree(tmp_path / "src", 60, 12 * MIB, large=6, seed=seed)
    plan = _FirstOfEachType(dict(_ANSWERED), only_types=_TYPES)
    with FaultProxy(s3env.endpoint_url, plan, seed=seed) as proxy:
        cfg = s3env.config(endpoint_url=proxy.endpoint_url, part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB,
                           backoff_base_s=0.01, backoff_max_s=0.05, max_attempts=20)
        report = s3pump.upload([tree.root], f"s3://{bucket}/r/", cfg, failed_list=tmp_path / "failed.jsonl")
        faulted = [e for e in proxy.log if e.fault is not None]
    assert report.files_failed == 0 and report.files_done == len(tree.files)
    assert len(list_all(s3env.boto(), bucket, "r/")) == len(tree.files)
    kinds = Counter(e.type for e in faulted)
    assert {"HeadBucket", "CreateMultipartUpload", "CompleteMultipartUpload", "PutObject", "UploadPart"} <= set(kinds)
    # each answered fault made s3pump send that request again, once; the report counts them all
    assert report.retries == len(faulted), (report.retries, kinds)
