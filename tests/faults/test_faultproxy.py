"""The fault proxy itself: standalone mode, transparent forwarding (SigV4 still valid), the
request log, and that a corrupted byte lands in the data, never in the aws-chunked framing."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.config
import pytest

from s3pump.testing.faultproxy import FaultPlan, _corrupt, parse_rates, request_type
from tests.conftest import S3Env


def test_corrupt_flips_one_data_byte_of_an_aws_chunked_body() -> None:
    data = bytes(range(256)) * 4
    body = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n"
    for seed in range(50):
        out = _corrupt(body, True, random.Random(seed))
        diff = [i for i, (a, b) in enumerate(zip(body, out, strict=True)) if a != b]
        assert len(diff) == 1
        start = body.index(b"\r\n") + 2
        assert start <= diff[0] < start + len(data)


def test_request_types_and_rates() -> None:
    assert request_type("PUT", "/b/k", {"partNumber": ["1"], "uploadId": ["u"]}) == "UploadPart"
    assert request_type("POST", "/b/k", {"uploadId": ["u"]}) == "CompleteMultipartUpload"
    assert request_type("HEAD", "/b", {}) == "HeadBucket"
    plan = parse_rates(["all=0.3"])
    assert plan.total_rate == 0.3 and "expired_token" not in plan.rates
    rng = random.Random(1)
    hits = sum(plan.choose("PutObject", rng) is not None for _ in range(20_000))
    assert 0.28 < hits / 20_000 < 0.32
    with pytest.raises(ValueError):
        parse_rates(["nonsense=0.1"])
    assert FaultPlan.single("complete_200_error", 1.0).choose("PutObject", rng) is None


@pytest.mark.e2e
def test_standalone_proxy_forwards_signed_requests_and_logs(s3env: S3Env, bucket: str, tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "s3pump.testing.faultproxy", "--upstream", s3env.endpoint_url,
         "--rate", "slowdown=1.0", "--types", "PutObject", "--log", str(log), "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("faultproxy listening on http://127.0.0.1:"), line
        url = line.split()[3]
        client = boto3.client(
            "s3", endpoint_url=url, region_name=s3env.server.region,
            aws_access_key_id=s3env.server.access_key_id, aws_secret_access_key=s3env.server.secret_access_key,
            config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # signature accepted through it
        with pytest.raises(client.exceptions.ClientError, match="SlowDown"):
            client.put_object(Bucket=bucket, Key="k", Body=b"x")
    finally:
        proc.terminate()
        proc.wait(10)
    entries = [json.loads(x) for x in log.read_text().splitlines()]
    assert [(e["type"], e["fault"], e["status"]) for e in entries] == [
        ("ListObjects", None, 200), ("PutObject", "slowdown", 503)]


def test_spare_first_lets_the_opening_requests_of_a_type_through() -> None:
    """Issue 12, item 17: at any rate, the first N requests of a spared type get no fault (the chaos
    test spares the opening HeadBucket so a run cannot end before it uploads anything); later
    requests of that type and every other type are still faulted."""
    plan = FaultPlan.uniform(1.0, spare_first={"HeadBucket": 1}, force_first=3)
    rng = random.Random(0)
    assert plan.choose("HeadBucket", rng) is None
    assert plan.choose("HeadBucket", rng) is not None
    assert all(plan.choose("PutObject", rng) is not None for _ in range(100))
    assert all(plan.choose("HeadBucket", rng) is not None for _ in range(100))


def test_doomed_requests_always_fail_and_nothing_else_changes() -> None:
    """Issue 12, item 17: a doomed key's requests of the named types get ``internal`` every time;
    its other request types, and other keys, follow the rates (none here)."""
    plan = FaultPlan.uniform(0.0, doomed={"c/a.bin": frozenset({"PutObject", "UploadPart"})})
    rng = random.Random(0)
    assert all(plan.choose(t, rng, "c/a.bin") == "internal" for t in ("PutObject", "UploadPart") for _ in range(50))
    assert plan.choose("AbortMultipartUpload", rng, "c/a.bin") is None
    assert plan.choose("CreateMultipartUpload", rng, "c/a.bin") is None
    assert plan.choose("PutObject", rng, "c/b.bin") is None


@pytest.mark.parametrize("fault", ["corrupt_byte", "reset_mid_body"])
def test_a_forced_body_fault_waits_for_a_request_with_a_body(fault: str) -> None:
    """A 0-byte PutObject has nothing to cut or flip: it gets no body fault and does not use up
    ``force_first``, so the first request with a body still gets it. (The chaos test's small tree
    starts with a 0-byte file; the forced fault was spent on it, and at 5 % the rest of the run drew
    none: "corrupt_byte was never injected", seen once in a clean-clone CI run.)"""
    plan = FaultPlan.single(fault, 0.0, force_first=1)
    rng = random.Random(0)
    assert plan.choose("PutObject", rng, "c/empty", body_bytes=0) is None
    assert plan.choose("PutObject", rng, "c/a.bin", body_bytes=4096) == fault
    assert plan.choose("PutObject", rng, "c/b.bin", body_bytes=4096) is None  # forced once, rate 0
