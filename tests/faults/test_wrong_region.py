"""Issue 26: a wrong ``--region`` is said as such, not as a wrong secret key. AWS answers a request
signed for another region than the bucket's with 400 AuthorizationHeaderMalformed naming the region
(``<Region>``; a HEAD: ``x-amz-bucket-region``), or, at another region's endpoint, 301
PermanentRedirect with ``x-amz-bucket-region``. SeaweedFS has no regions: the fault proxy's
``wrong_region`` and ``permanent_redirect`` quirks answer as AWS does. Every verb says, in one line,
the region the server expects (exit 2), on botocore's control path (``ls``, ``mb``) and awscrt's
(HeadBucket, ListObjectsV2, PutObject, CreateMultipartUpload); with ``--region eu-west-1`` it works."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3pump.errors import CredentialsError, WrongRegionError, classify_store_error
from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from s3pump.testing.quirks import QUIRK_REGION
from tests.conftest import S3Env, run_cli
from tests.faults.conftest import proxied_env

MIB = 2**20


def _one_region_line(r: object) -> str:
    stderr = r.stderr.decode()  # type: ignore[attr-defined]
    assert r.returncode == 2, stderr  # type: ignore[attr-defined]
    lines = [ln for ln in stderr.splitlines() if ln.startswith("s3pump: error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert f"region {QUIRK_REGION}" in lines[0], lines[0]
    assert f"--region {QUIRK_REGION}" in lines[0] and "credentials" not in lines[0], lines[0]
    return lines[0]


@pytest.mark.e2e
@pytest.mark.parametrize("quirk", ["wrong_region", "permanent_redirect"])
def test_wrong_region_is_named_in_one_line(s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy,
                                           tmp_path: Path, quirk: str) -> None:
    small, big = tmp_path / "small.txt", tmp_path / "big.bin"
    small.write_bytes(b"hello\n")
    big.write_bytes(b"x" * (6 * MIB))  # over the suites' 5 MiB threshold: CreateMultipartUpload
    env = proxied_env(s3env, faultproxy, state_dir, AWS_REGION="us-east-1")
    faultproxy.plan = FaultPlan(quirks=frozenset({quirk}))
    code = "AuthorizationHeaderMalformed" if quirk == "wrong_region" else "PermanentRedirect"
    for args in (["ls", f"s3://{bucket}/"], ["ls"], ["mb", f"s3://{bucket}-other"],
                 ["upload", str(small), f"s3://{bucket}/p/", "--no-progress"]):
        line = _one_region_line(run_cli(args, env))
        assert code in line or args == ["ls"], line
    # the data path: the bucket check passes, the PUT (awscrt) and CreateMultipartUpload are refused
    faultproxy.plan = FaultPlan(quirks=frozenset({quirk}), quirk_types=frozenset({"PutObject",
                                                                                  "CreateMultipartUpload"}))
    for path in (small, big):
        line = _one_region_line(run_cli(["upload", str(path), f"s3://{bucket}/p/", "--no-progress"], env))
        assert f"s3://{bucket}/p/{path.name}" in line and code in line, line
    assert {e.fault for e in faultproxy.entries() if e.type in ("PutObject", "CreateMultipartUpload")} == {quirk}

    faultproxy.plan = FaultPlan(quirks=frozenset({quirk}))
    r = run_cli(["upload", str(small), str(big), f"s3://{bucket}/p/", "--no-progress", "--region", QUIRK_REGION], env)
    assert r.returncode == 0, r.stderr.decode()
    assert s3env.boto().get_object(Bucket=bucket, Key="p/small.txt")["Body"].read() == b"hello\n"


def test_region_named_only_in_the_message_and_a_plain_signature_error() -> None:
    """AuthorizationHeaderMalformed without a ``<Region>`` element: the region from its message; a
    region that is the signing one, or a SignatureDoesNotMatch, is no region error."""
    e = classify_store_error(400, "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong; expecting "
                             "'ap-south-1'", what="s3://b", signed_region="us-east-1")
    assert isinstance(e, WrongRegionError) and e.exit_code == 2 and "--region ap-south-1" in str(e)
    assert not isinstance(classify_store_error(400, "InvalidArgument", "", what="s3://b", region="us-east-1",
                                               signed_region="us-east-1"), WrongRegionError)
    assert isinstance(classify_store_error(403, "SignatureDoesNotMatch", "", what="s3://b", signed_region="x"),
                      CredentialsError)
