"""``--cluster``: one large file's parts spread over the workers (cluster/parts.py, cluster/partsend.py).

The coordinator creates and completes the multipart upload, the workers send ranges of its parts;
the object equals a single-process upload's (bytes and multipart ETag), nothing is left open, and a
file that changes (ends short) while its parts are sent becomes no object (exit 1).
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from s3pump.jobs.upload import upload  # noqa: E402
from s3pump.jobs.verify import verify  # noqa: E402
from tests.conftest import S3Env  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MIB = 1024 * 1024
SPLIT = {"S3PUMP_MULTIPART_THRESHOLD": "5MiB", "S3PUMP_PART_SIZE": "5MiB", "S3PUMP_SPLIT_SIZE": "10MiB"}


def open_uploads(s3env: S3Env, bucket: str) -> list[dict]:
    return s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_one_large_file_is_sent_by_two_workers_and_equals_a_single_process_upload(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """A tree of one ~40 MiB file (8 parts of 5 MiB) on ``--cluster local:2``: its parts were sent by
    both worker processes (two PIDs, neither the coordinator's), the object's bytes and multipart ETag
    equal a single-process upload's, no multipart upload is left open, and ``verify`` matches it."""
    root = tmp_path / "tree"
    root.mkdir()
    data = random.Random(5).randbytes(40 * MIB - 4321)
    (root / "big.bin").write_bytes(data)
    config = s3env.config(multipart_threshold_bytes=5 * MIB, part_size_bytes=5 * MIB)
    assert upload([root], f"s3://{bucket}/one/", config).files_done == 1
    p = subprocess.Popen([sys.executable, "-m", "s3pump", "upload", str(root), f"s3://{bucket}/two/", "--cluster",
                          "local:2", "--json"], env={**s3env.env(state_dir), **SPLIT}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err_b = p.communicate(timeout=110)
    err = err_b.decode()
    assert p.returncode == 0, err
    assert "Traceback" not in err, err
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["files_done"] == 1 and summary["files_failed"] == 0
    split = summary["cluster"]["split"]
    assert split["files"] == 1
    pids = {w["pid"] for w in split["per_worker"]}
    assert len(pids) == 2 and p.pid not in pids, split  # two worker processes, not the coordinator
    assert sum(w["parts"] for w in split["per_worker"]) == 8
    assert sum(w["bytes"] for w in split["per_worker"]) == len(data)
    boto = s3env.boto()
    one = boto.head_object(Bucket=bucket, Key="one/big.bin")
    two = boto.head_object(Bucket=bucket, Key="two/big.bin")
    assert two["ETag"] == one["ETag"] and two["ETag"].strip('"').endswith("-8")
    got = boto.get_object(Bucket=bucket, Key="two/big.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert open_uploads(s3env, bucket) == []
    checked = verify(root, f"s3://{bucket}/two/", config)  # the parts' checksums as one process stores them
    assert checked.matched == 1 and not checked.different, checked


def test_a_file_that_ends_short_while_its_parts_are_sent_becomes_no_object(
        s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """A 20 MiB file split into 4 one-part ranges, sent at 4 MiB/s per worker; once the first part
    is stored the file is cut to half its size. The worker that sends a part after that sees it:
    the coordinator aborts the upload (none left open), there is no object, the file is listed as
    failed and the exit code is 1."""
    root = tmp_path / "tree"
    root.mkdir()
    path = root / "big.bin"
    data = random.Random(6).randbytes(20 * MIB)
    path.write_bytes(data)
    env = {**s3env.env(state_dir), **SPLIT, "S3PUMP_WORKER_BWLIMIT": "4MiB"}
    p = subprocess.Popen([sys.executable, "-m", "s3pump", "upload", str(root), f"s3://{bucket}/c/", "--cluster",
                          "local:2", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    boto = s3env.boto()
    try:
        deadline = time.monotonic() + 60
        while True:  # wait until a part of the file is stored
            assert p.poll() is None and time.monotonic() < deadline, "the upload ended before the file changed"
            ups = [u for u in open_uploads(s3env, bucket) if u["Key"] == "c/big.bin"]
            if ups and boto.list_parts(Bucket=bucket, Key="c/big.bin", UploadId=ups[0]["UploadId"]).get("Parts"):
                break
            time.sleep(0.05)
        path.write_bytes(data[: 10 * MIB])
        out, err_b = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = err_b.decode()
    assert p.returncode == 1, err
    assert "Traceback" not in err, err
    assert "big.bin" in err and "changed while uploading" in err, err
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["files_failed"] == 1 and summary["files_done"] == 0
    assert summary["cluster"]["split"]["files"] == 1
    assert "Contents" not in boto.list_objects_v2(Bucket=bucket, Prefix="c/")
    assert open_uploads(s3env, bucket) == []
