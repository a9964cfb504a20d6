"""A stream (a PartSource of in-memory parts, as stdin is) uploaded through the fault proxy to
SeaweedFS: part failures are retried and the object is byte-identical; once retries run out the
multipart upload is aborted and nothing is left behind (no object, no open upload).

This drives the engine directly with a minimal PartSource, the same path ``s3pump stream``
takes once its chunker hands parts to the engine.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from s3pump.engine.scheduler import Engine
from s3pump.events import Event, EventBus, FileDone, FileFailed, MultipartAborted, RetryScheduled
from s3pump.items import UploadItem
from s3pump.store.s3 import S3Store
from s3pump.testing.faultproxy import FaultPlan, FaultProxy
from tests.conftest import S3Env, list_all, run_cli
from tests.faults.conftest import proxied_env

MIB = 1024 * 1024


class BytesStream:
    """Parts of 5 MiB of a bytes object, handed out one by one, like a chunked stdin."""

    counts_reads = False
    full_object_checksum = None

    def __init__(self, data: bytes, part_size_bytes: int = 5 * MIB) -> None:
        self.data = data
        self.part_size_bytes = part_size_bytes
        self._next = 0

    def bind(self, wakeup: Callable[[], None]) -> None:
        return None

    def next_part(self) -> tuple[int, bytes] | None:
        offset = self._next * self.part_size_bytes
        if offset >= len(self.data) and self._next > 0:
            raise StopIteration
        self._next += 1
        return self._next, self.data[offset:offset + self.part_size_bytes]

    def release(self, part_number: int) -> None:
        return None

    def finish(self) -> None:
        return None

    def close(self) -> None:
        return None


def _run(s3env: S3Env, proxy: FaultProxy, bucket: str, key: str, data: bytes, **config: object) -> list[Event]:
    cfg = s3env.config(endpoint_url=proxy.endpoint_url, request_timeout_s=3.0, backoff_base_s=0.02,
                       backoff_max_s=0.2, part_size_bytes=5 * MIB, **config)
    store = S3Store(cfg)
    events: list[Event] = []
    try:
        item = UploadItem(key=key, size_bytes=len(data), source="-", parts=BytesStream(data))  # type: ignore[arg-type]
        Engine(store, bucket, cfg, EventBus(events.append)).run([item])
    finally:
        store.close()
    return events


@pytest.mark.e2e
def test_stream_part_failures_are_retried(s3env: S3Env, faultproxy: FaultProxy, bucket: str) -> None:
    data = os.urandom(23 * MIB)  # 5 parts
    faultproxy.plan = FaultPlan.uniform(0.5, faults=["slowdown", "internal", "reset_mid_body", "corrupt_byte",
                                                      "reset_before_headers", "stall"],
                                        only_types=frozenset({"UploadPart"}), stall_s=5.0,
                                        # the first UploadParts get faults for sure, and at most 5 in all: a
                                        # part never fails 6 times (max_attempts), which at 50 % happened in
                                        # about 1 run in 12
                                        force_first=1, max_faults=5)
    events = _run(s3env, faultproxy, bucket, "s/ok.bin", data)
    assert any(isinstance(e, RetryScheduled) and e.part_number for e in events), "no part was retried"
    assert [type(e) for e in events if isinstance(e, FileDone | FileFailed)] == [FileDone]
    body = s3env.boto().get_object(Bucket=bucket, Key="s/ok.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    assert s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.e2e
def test_stream_out_of_retries_is_aborted_with_nothing_left(s3env: S3Env, faultproxy: FaultProxy,
                                                            bucket: str) -> None:
    data = os.urandom(12 * MIB)
    faultproxy.plan = FaultPlan.single("internal", 1.0, only_types=frozenset({"UploadPart"}))
    events = _run(s3env, faultproxy, bucket, "s/doomed.bin", data, max_attempts=3)
    (failed,) = [e for e in events if isinstance(e, FileFailed)]
    assert failed.key == "s/doomed.bin" and "InternalError" in str(failed.error)
    assert any(isinstance(e, MultipartAborted) for e in events)
    assert len(faultproxy.entries(type="UploadPart")) >= 3  # the part was tried max_attempts times
    assert "Contents" not in s3env.boto().list_objects_v2(Bucket=bucket, Prefix="s/")
    assert s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.e2e
def test_stream_cli_under_faults(s3env: S3Env, faultproxy: FaultProxy, bucket: str, state_dir: Path) -> None:
    """The real ``s3pump stream`` (stdin) through the proxy: parts retried, object identical; then,
    with every part failing, the upload is aborted and nothing is left."""
    data = os.urandom(21 * MIB)
    env = proxied_env(s3env, faultproxy, state_dir)
    # ~5 requests at 30 %: with a random seed no fault at all 17 % of the time (0.7**5). Seed 1 rolls
    # 0.13, 0.85, 0.76, 0.26, 0.50, ...: two of the first five requests get a fault, whatever their order.
    faultproxy.rng = random.Random(1)
    faultproxy.plan = FaultPlan.uniform(0.3, only_types=frozenset({"UploadPart", "CreateMultipartUpload",
                                                                   "CompleteMultipartUpload"}), stall_s=5.0)
    r = run_cli(["stream", f"s3://{bucket}/s/cli.bin", "--no-progress"], env, input=data)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert faultproxy.fault_counts(), "no fault was injected"
    body = s3env.boto().get_object(Bucket=bucket, Key="s/cli.bin")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()

    faultproxy.plan = FaultPlan.single("internal", 1.0, only_types=frozenset({"UploadPart"}))
    r = run_cli(["stream", f"s3://{bucket}/s/doomed.bin", "--no-progress"], {**env, "S3PUMP_MAX_ATTEMPTS": "2"},
                input=data)
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert "InternalError" in err
    assert set(list_all(s3env.boto(), bucket, "s/")) == {"s/cli.bin"}
    assert s3env.boto().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
