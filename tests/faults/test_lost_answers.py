"""Issue 24 on SeaweedFS, through the fault proxy: a CompleteMultipartUpload whose answer was lost
(the retry gets 404 NoSuchUpload), a SlowDown storm, a skewed clock."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from s3pump.jobs.generate import generate
from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli
from tests.faults.conftest import MIB, proxied_env

pytestmark = pytest.mark.e2e


def _summary(stdout: bytes) -> dict:
    return json.loads(stdout.decode().splitlines()[-1])


@pytest.mark.parametrize("job", ["upload", "sync"])
def test_lost_complete_answer_then_no_such_upload_is_verified_and_done(
        s3env: S3Env, faultproxy: FaultProxy, bucket: str, tmp_path: Path, state_dir: Path, job: str) -> None:
    """The Complete took effect, its answer was lost, the retry got 404 NoSuchUpload: the object is
    HEADed, its ETag is the one the parts imply, so the file is done (exit 0, not in a failed-list)."""
    src = tmp_path / "src"
    src.mkdir()
    data = {name: hashlib.sha256(name.encode()).digest() * (size // 32) for name, size in
            (("a.bin", 12 * MIB), ("b.bin", 7 * MIB))}
    for name, body in data.items():
        (src / name).write_bytes(body)
    faultproxy.plan = FaultPlan(lose_complete_answers=2)
    failed = tmp_path / "failed.jsonl"
    r = run_cli([job, str(src), f"s3://{bucket}/p/", "--json", "--no-progress", "--failed-list", str(failed)],
                proxied_env(s3env, faultproxy, state_dir), timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert len(faultproxy.entries(fault="complete_lost")) == 2
    assert len(faultproxy.entries(fault="no_such_upload")) == 2
    client = s3env.boto()
    for name, body in data.items():
        assert client.get_object(Bucket=bucket, Key=f"p/{name}")["Body"].read() == body
    assert not failed.exists()
    assert _summary(r.stdout)["files_failed"] == 0


def test_lost_complete_answer_in_stream(s3env: S3Env, faultproxy: FaultProxy, bucket: str, state_dir: Path) -> None:
    """``s3pump stream`` (stdin, with its full-object checksum): the lost answer is verified by HEAD."""
    data = hashlib.sha256(b"stream").digest() * (11 * MIB // 32)
    faultproxy.plan = FaultPlan(lose_complete_answers=1)
    r = run_cli(["stream", f"s3://{bucket}/s/x.bin", "--no-progress"], proxied_env(s3env, faultproxy, state_dir),
                input=data, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert len(faultproxy.entries(fault="complete_lost")) == 1
    assert len(faultproxy.entries(fault="no_such_upload")) == 1
    assert s3env.boto().get_object(Bucket=bucket, Key="s/x.bin")["Body"].read() == data


def test_no_such_upload_after_a_lost_answer_with_another_object_fails(
        s3env: S3Env, faultproxy: FaultProxy, bucket: str, tmp_path: Path, state_dir: Path) -> None:
    """The HEAD finds an object whose ETag is not what the parts imply (someone else's write won):
    the file fails, as before."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"\x01" * (7 * MIB))
    client = s3env.boto()

    class Overwrite(FaultPlan):
        def choose(self, rtype, rng, key="", body_bytes=None):  # type: ignore[no-untyped-def]
            return None

    plan = Overwrite(lose_complete_answers=1)
    faultproxy.plan = plan
    original = faultproxy._scenario

    def scenario(rtype: str, upload_id: str | None, signed: bool = True) -> str | None:
        s = original(rtype, upload_id, signed)
        if s == "no_such_upload":  # between the lost answer and the retry, another writer replaces the object
            client.put_object(Bucket=bucket, Key="p/a.bin", Body=b"other")
        return s

    faultproxy._scenario = scenario  # type: ignore[method-assign]
    failed = tmp_path / "failed.jsonl"
    r = run_cli(["upload", str(src), f"s3://{bucket}/p/", "--no-progress", "--failed-list", str(failed)],
                proxied_env(s3env, faultproxy, state_dir), timeout=120)
    assert r.returncode == 1, r.stderr.decode()
    assert "NoSuchUpload" in r.stderr.decode()
    assert failed.exists()


@pytest.mark.parametrize("job", ["upload", "sync"])
def test_slowdown_storm_of_20_s_costs_time_not_files(
        s3env: S3Env, faultproxy: FaultProxy, bucket: str, tmp_path: Path, state_dir: Path, job: str) -> None:
    """20 s of 503 SlowDown on every request (the opening HeadBucket too) over ~300 files: the run waits
    it out, with concurrency backed off, and uploads every file (exit 0, nothing failed)."""
    src = tmp_path / "src"
    generate(src, count=300, size_bytes=8 * 1024, seed=24)
    (src / "big.bin").write_bytes(b"\x07" * (11 * MIB))
    faultproxy.plan = FaultPlan(slowdown_storm_s=20.0)
    failed = tmp_path / "failed.jsonl"
    t0 = time.monotonic()
    r = run_cli([job, str(src), f"s3://{bucket}/o/", "--json", "--no-progress", "--failed-list", str(failed)],
                proxied_env(s3env, faultproxy, state_dir), timeout=240)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert took >= 20.0
    assert len(list_all(s3env.boto(), bucket, "o/")) == 301
    assert not failed.exists()
    storm = faultproxy.entries(fault="storm")
    assert storm, "the storm did not happen"
    # concurrency backed off: far fewer requests were thrown at the storm than files x attempts
    assert len(storm) < 2000, len(storm)


def test_skewed_clock_is_one_line_exit_2_within_seconds(
        s3env: S3Env, faultproxy: FaultProxy, bucket: str, tmp_path: Path, state_dir: Path) -> None:
    """403 RequestTimeTooSkewed on every PUT (the bucket check passes): after one retry the run stops,
    exit 2, one line naming the difference between the clocks."""
    src = tmp_path / "src"
    generate(src, count=40, size_bytes=4 * 1024, seed=3)
    (src / "big.bin").write_bytes(b"\x05" * (7 * MIB))
    faultproxy.plan = FaultPlan(clock_skew_s=-1800.0,
                                clock_skew_types=frozenset({"PutObject", "UploadPart", "CreateMultipartUpload"}))
    t0 = time.monotonic()
    r = run_cli(["upload", str(src), f"s3://{bucket}/o/", "--no-progress"],
                proxied_env(s3env, faultproxy, state_dir), timeout=120)
    took = time.monotonic() - t0
    err = r.stderr.decode()
    assert r.returncode == 2, err
    assert took < 15, took
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "clock is 30 min" in lines[0] and "ahead of the server's" in lines[0], lines[0]
    assert "AWS_ERROR" not in err
    assert len(faultproxy.entries(fault="clock_skew")) < 200


class _TruncateOnFirst(FaultPlan):
    """Truncates ``path`` to ``keep`` bytes when the first request of ``rtype`` arrives (its head is
    read, its body not yet: the client is still reading the file)."""

    def __init__(self, rtype: str, path: Path, keep: int) -> None:
        super().__init__()
        self.rtype, self.path, self.keep, self.done = rtype, path, keep, False

    def choose(self, rtype, rng, key="", body_bytes=None):  # type: ignore[no-untyped-def]
        if rtype == self.rtype and not self.done:
            self.done = True
            os.truncate(self.path, self.keep)
        return None


@pytest.mark.parametrize(("kind", "size", "keep"), [("UploadPart", 30 * MIB, 7 * MIB),
                                                     ("PutObject", 40 * MIB, 3 * MIB)])
def test_file_truncated_while_uploading_fails_at_once_as_changed(
        s3env: S3Env, faultproxy: FaultProxy, bucket: str, tmp_path: Path, state_dir: Path, kind: str, size: int,
        keep: int) -> None:
    """A short read is a source change: the file fails within seconds with "file changed while
    uploading", no object, no multipart upload left open (the bucket fixture checks), never retried
    as a network outage; the other files are uploaded."""
    src = tmp_path / "src"
    src.mkdir()
    victim = src / "victim.bin"
    victim.write_bytes(b"\x09" * size)
    (src / "other.txt").write_bytes(b"fine")
    faultproxy.plan = _TruncateOnFirst(kind, victim, keep)
    extra = {"S3PUMP_CONCURRENCY": "1"}
    if kind == "PutObject":
        extra["S3PUMP_MULTIPART_THRESHOLD"] = "64MiB"
    t0 = time.monotonic()
    r = run_cli(["upload", str(src), f"s3://{bucket}/t/", "--no-progress", "--failed-list", str(tmp_path / "f.jsonl")],
                proxied_env(s3env, faultproxy, state_dir, **extra), timeout=120)
    took = time.monotonic() - t0
    err = r.stderr.decode()
    assert faultproxy.plan.done
    assert r.returncode == 1, err
    assert "file changed while uploading" in err, err
    assert "AWS_ERROR" not in err
    assert took < 20, took
    objects = list_all(s3env.boto(), bucket, "t/")
    assert set(objects) == {"t/other.txt"}
    retried = [e for e in faultproxy.log if e.key == "t/victim.bin" and e.type == kind]
    assert len(retried) <= 3, len(retried)
