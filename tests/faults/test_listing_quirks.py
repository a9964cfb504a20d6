"""Issue 24: servers that truncate, loop or ignore parameters (the fault proxy's quirks in front of
SeaweedFS, the real CLI).

* a listing that says it is truncated but gives no continuation token: ``sync --delete``,
  ``ls`` and ``verify`` stop with one line naming the bucket and prefix (exit 1), nothing deleted;
* a continuation token that repeats: they stop with one line, after a bounded number of requests;
* Ctrl-C while sync's listing stalls: exit 130 within 2 s;
* HeadObject ``partNumber`` ignored: verify never calls an intact multipart object different;
* ListMultipartUploads ``prefix`` ignored: cleanup leaves uploads outside the prefix alone;
* ListMultipartUploads answered 501: ``rb`` of an empty bucket works.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli
from tests.faults.conftest import proxied_env

MIB = 2**20
#: a run that loops must not get anywhere near this; a run that stops takes a second or two
_LOOP_TIMEOUT_S = 30


def _quirks(s3env: S3Env, *names: str, **kwargs: Any) -> FaultPlan:
    """A plan with these quirks, re-signing as the test's server user."""
    return FaultPlan(quirks=frozenset(names),
                     credentials=(s3env.server.access_key_id, s3env.server.secret_access_key), **kwargs)


def _error_lines(stderr: bytes) -> list[str]:
    return [ln for ln in stderr.decode().splitlines() if ln.startswith("s3pump: error:")]


def _put(s3env: S3Env, bucket: str, keys: list[str]) -> None:
    client = s3env.boto()
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=f"body of {key}".encode())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Ten local files whose objects sync would keep, under src/."""
    src = tmp_path / "src"
    for i in range(10):
        (src / "d").mkdir(parents=True, exist_ok=True)
        (src / "d" / f"f{i}.txt").write_text(f"body of p/d/f{i}.txt")
    return src


# ---------------------------------------------------------------------- truncated without a token
@pytest.mark.e2e
def test_sync_delete_on_a_listing_truncated_without_token_stops_and_deletes_nothing(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy, tree: Path) -> None:
    remote_only = [f"p/old/{i}.txt" for i in range(5)]
    _put(s3env, bucket, [f"p/d/f{i}.txt" for i in range(10)] + remote_only)
    before = set(list_all(s3env.boto(), bucket, "p/"))
    faultproxy.plan = _quirks(s3env, "list_truncated_no_token")

    r = run_cli(["sync", str(tree), f"s3://{bucket}/p/", "--delete", "--no-progress"],
                proxied_env(s3env, faultproxy, state_dir), timeout=_LOOP_TIMEOUT_S)

    assert r.returncode == 1, r.stderr.decode()
    lines = _error_lines(r.stderr)
    assert len(lines) == 1, r.stderr.decode()
    assert f"s3://{bucket}/p/" in lines[0] and "truncated" in lines[0], lines[0]
    assert "Traceback" not in r.stderr.decode()
    assert set(list_all(s3env.boto(), bucket, "p/")) == before  # nothing deleted
    assert not faultproxy.entries(type="DeleteObjects", fault=False)
    assert not faultproxy.entries(type="PutObject", fault=False)  # nothing planned on it either


@pytest.mark.e2e
@pytest.mark.parametrize("recursive", [True, False], ids=["recursive", "one-level"])
def test_ls_on_a_listing_truncated_without_token_fails_with_one_line(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy, recursive: bool) -> None:
    _put(s3env, bucket, [f"p/k{i}" for i in range(20)])
    faultproxy.plan = _quirks(s3env, "list_truncated_no_token")

    r = run_cli(["ls", f"s3://{bucket}/p/", *(["--recursive"] if recursive else [])],
                proxied_env(s3env, faultproxy, state_dir), timeout=_LOOP_TIMEOUT_S)

    assert r.returncode == 1, (r.stdout.decode(), r.stderr.decode())
    lines = _error_lines(r.stderr)
    assert len(lines) == 1 and f"s3://{bucket}/p/" in lines[0] and "truncated" in lines[0], r.stderr.decode()


@pytest.mark.e2e
def test_verify_on_a_listing_truncated_without_token_fails_with_one_line(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy, tree: Path) -> None:
    _put(s3env, bucket, [f"p/d/f{i}.txt" for i in range(10)])
    faultproxy.plan = _quirks(s3env, "list_truncated_no_token")

    r = run_cli(["verify", str(tree), f"s3://{bucket}/p/"], proxied_env(s3env, faultproxy, state_dir),
                timeout=_LOOP_TIMEOUT_S)

    assert r.returncode == 1, r.stderr.decode()
    assert "missing" not in r.stdout.decode(), r.stdout.decode()  # existing objects are not "missing"
    lines = _error_lines(r.stderr)
    assert len(lines) == 1 and f"s3://{bucket}/p/" in lines[0] and "truncated" in lines[0], r.stderr.decode()


# ---------------------------------------------------------------------- a repeated token
@pytest.mark.e2e
@pytest.mark.parametrize("verb", ["ls", "sync", "verify"])
@pytest.mark.parametrize("quirk", ["list_repeat_token", "list_endless"], ids=["same-token", "new-token-same-page"])
def test_a_repeated_continuation_token_stops_with_one_line_after_bounded_requests(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy, tree: Path, verb: str,
        quirk: str) -> None:
    _put(s3env, bucket, [f"p/d/f{i}.txt" for i in range(10)] + [f"p/old/{i}.txt" for i in range(10)])
    before = set(list_all(s3env.boto(), bucket, "p/"))
    faultproxy.plan = _quirks(s3env, quirk)
    args = {"ls": ["ls", f"s3://{bucket}/p/", "--recursive"],
            "sync": ["sync", str(tree), f"s3://{bucket}/p/", "--delete", "--no-progress"],
            "verify": ["verify", str(tree), f"s3://{bucket}/p/"]}[verb]

    r = run_cli(args, proxied_env(s3env, faultproxy, state_dir), timeout=_LOOP_TIMEOUT_S)

    assert r.returncode == 1, r.stderr.decode()
    lines = _error_lines(r.stderr)
    assert len(lines) == 1 and f"s3://{bucket}/p/" in lines[0] and "loops" in lines[0], r.stderr.decode()
    assert len(faultproxy.entries(type="ListObjects")) <= 3
    if verb == "ls":  # the looping page is not printed again and again
        assert len(r.stdout.decode().splitlines()) <= 20
    assert set(list_all(s3env.boto(), bucket, "p/")) == before


# ---------------------------------------------------------------------- Ctrl-C during a stalled listing
@pytest.mark.e2e
@pytest.mark.parametrize("quirk", ["list_stall_mid_body", "list_endless_empty"], ids=["stalled", "endless"])
def test_sigint_during_a_stalled_or_endless_sync_listing_exits_130_within_2_s(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy, tree: Path, quirk: str) -> None:
    _put(s3env, bucket, [f"p/d/f{i}.txt" for i in range(3)])
    faultproxy.plan = _quirks(s3env, quirk, stall_s=60.0)
    env = proxied_env(s3env, faultproxy, state_dir, S3PUMP_REQUEST_TIMEOUT="60s")
    proc = subprocess.Popen([sys.executable, "-m", "s3pump", "sync", str(tree), f"s3://{bucket}/p/", "--delete",
                             "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(faultproxy.entries(type="ListObjects", fault=quirk)) < (1 if quirk == "list_stall_mid_body" else 20):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the listing never started"
            time.sleep(0.05)
        time.sleep(0.5)  # the half page is on its way: the client waits for the rest
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
        took_s = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err.decode()
    assert took_s < 2.0, f"exit took {took_s:.1f} s after SIGINT"
    assert "Traceback" not in err.decode()
    assert _error_lines(err) == ["s3pump: error: cancelled; in-flight multipart uploads were aborted"], err.decode()
    assert not faultproxy.entries(type="DeleteObjects")  # a cancelled plan deletes nothing


# ---------------------------------------------------------------------- HeadObject partNumber ignored
@pytest.mark.e2e
def test_verify_an_intact_multipart_object_with_part_number_ignored_is_never_different(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    rng = random.Random(24)
    (src / "guessable.bin").write_bytes(rng.randbytes(12 * MIB + 17))  # 5 MiB parts: verify's own size
    (src / "odd.bin").write_bytes(rng.randbytes(19 * MIB + 5))  # 9 MiB parts: no size verify guesses
    direct = {**s3env.env(state_dir), "S3PUMP_MULTIPART_THRESHOLD": "5MiB"}
    for name, part in (("guessable.bin", "5MiB"), ("odd.bin", "9MiB")):
        r = run_cli(["upload", str(src / name), f"s3://{bucket}/v/{name}", "--part-size", part, "--no-progress"],
                    direct)
        assert r.returncode == 0, r.stderr.decode()
    faultproxy.plan = _quirks(s3env, "head_ignores_part_number")

    r = run_cli(["verify", str(src), f"s3://{bucket}/v/", "--json"], proxied_env(s3env, faultproxy, state_dir))

    events = {e.get("key"): e for e in map(json.loads, r.stdout.decode().splitlines())}
    assert events["v/odd.bin"]["event"] == "unverified", events
    assert "partNumber" in events["v/odd.bin"]["reason"], events
    assert "v/guessable.bin" not in events  # matched
    assert not [e for e in events.values() if e.get("event") == "different"], events
    assert faultproxy.entries(type="HeadObject", fault="head_ignores_part_number")  # the quirk was exercised
    assert r.returncode == 1  # one object could not be verified


# ---------------------------------------------------------------------- ListMultipartUploads prefix ignored
@pytest.mark.e2e
def test_cleanup_with_prefix_ignored_leaves_uploads_outside_the_prefix(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy) -> None:
    client = s3env.boto()
    inside = client.create_multipart_upload(Bucket=bucket, Key="cl/x.bin")["UploadId"]
    outside = client.create_multipart_upload(Bucket=bucket, Key="clkeep/y.bin")["UploadId"]
    faultproxy.plan = _quirks(s3env, "ignores_prefix")
    try:
        r = run_cli(["cleanup", f"s3://{bucket}/cl/", "--older-than", "0s"],
                    proxied_env(s3env, faultproxy, state_dir))
        assert r.returncode == 0, r.stderr.decode()
        assert faultproxy.entries(type="ListMultipartUploads", fault="ignores_prefix")
        left = {u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
        assert outside in left, "cleanup aborted an upload outside its prefix"
        assert inside not in left
    finally:
        for uid, key in ((inside, "cl/x.bin"), (outside, "clkeep/y.bin")):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


# ---------------------------------------------------------------------- ListMultipartUploads 501
@pytest.fixture
def doomed_bucket(s3env: S3Env) -> Iterator[str]:
    name = f"rb-{uuid.uuid4().hex[:12]}"
    client = s3env.boto()
    client.create_bucket(Bucket=name)
    yield name
    with contextlib.suppress(Exception):  # rb removed it (the test checks that)
        client.delete_bucket(Bucket=name)


@pytest.mark.e2e
@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_rb_of_an_empty_bucket_works_without_list_multipart_uploads(
        s3env: S3Env, doomed_bucket: str, state_dir: Path, faultproxy: FaultProxy, force: bool) -> None:
    faultproxy.plan = _quirks(s3env, "list_uploads_not_implemented")

    r = run_cli(["rb", f"s3://{doomed_bucket}", *(["--force"] if force else [])],
                proxied_env(s3env, faultproxy, state_dir), timeout=60)

    assert r.returncode == 0, r.stderr.decode()
    assert f"remove_bucket: {doomed_bucket}" in r.stdout.decode()
    names = {b["Name"] for b in s3env.boto().list_buckets()["Buckets"]}
    assert doomed_bucket not in names


# ---------------------------------------------------------------------- ListParts truncated (resume)
@pytest.mark.e2e
def test_resume_on_a_list_parts_truncated_without_marker_starts_the_file_over(
        s3env: S3Env, bucket: str, state_dir: Path, faultproxy: FaultProxy, tmp_path: Path) -> None:
    import hashlib

    from tests.e2e.test_cancel import _interrupted_run

    src = tmp_path / "big.bin"
    src.write_bytes(random.Random(7).randbytes(30 * MIB))
    faultproxy.plan = FaultPlan(delay_s={"UploadPart": 0.5})  # slow parts: time to interrupt
    env = {**s3env.env(state_dir), "AWS_ENDPOINT_URL": faultproxy.endpoint_url, "S3PUMP_MAX_PARTS_IN_FLIGHT": "2"}
    r = _interrupted_run(s3env, bucket, env, src, faultproxy, state_dir=state_dir)
    assert r.returncode == 130, r.stderr.decode()
    client = s3env.boto()
    assert len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])) == 1  # kept for the resume
    faultproxy.plan = _quirks(s3env, "list_truncated_no_token")

    r2 = run_cli(["upload", str(src), f"s3://{bucket}/big.bin", "--part-size", "5MiB", "--no-progress"], env,
                 timeout=120)

    assert r2.returncode == 0, r2.stderr.decode()
    assert "Traceback" not in r2.stderr.decode()
    assert faultproxy.entries(type="ListParts", fault="list_truncated_no_token")  # the resume asked, and got that
    body = client.get_object(Bucket=bucket, Key="big.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # the unchecked one aborted
