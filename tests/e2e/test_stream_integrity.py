"""A stream's integrity is checked by the server: the whole object's CRC (FULL_OBJECT) goes with
CompleteMultipartUpload; SeaweedFS stores it, and refuses a wrong one (BadDigest)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

import s3pump
from s3pump.errors import StoreError
from s3pump.sources.stdin import StreamPartSource
from s3pump.store.checksums import full_checksum
from tests.conftest import S3Env

MIB = 1024 * 1024


@pytest.mark.e2e
@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC64NVME", "CRC32"])
def test_stored_full_object_checksum_equals_one_computed_over_the_download(
    s3env: S3Env, bucket: str, tmp_path: Path, algorithm: str
) -> None:
    data = os.urandom(13 * MIB + 77)
    cfg = s3env.config(part_size_bytes=5 * MIB, checksum_algorithm=algorithm)
    report = s3pump.stream(io.BytesIO(data), f"s3://{bucket}/s.bin", cfg)
    assert report.parts == 3 and report.checksum_algorithm == algorithm
    client = s3env.boto()
    body = client.get_object(Bucket=bucket, Key="s.bin")["Body"].read()
    assert body == data
    head = client.head_object(Bucket=bucket, Key="s.bin", ChecksumMode="ENABLED")
    independent = full_checksum(algorithm, body)[1]  # over the downloaded bytes
    assert head.get(f"Checksum{algorithm}") == independent == report.checksum
    assert head.get("ChecksumType") == "FULL_OBJECT"
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.e2e
def test_a_wrong_full_object_checksum_is_refused_by_the_server(
    s3env: S3Env, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the client read and what the server assembled differ (as if a byte changed after it was
    read): SeaweedFS refuses the completion, and s3pump leaves no object and no open upload."""
    monkeypatch.setattr(StreamPartSource, "full_object_checksum",
                        property(lambda self: ("CRC32C", full_checksum("CRC32C", b"other bytes")[1])))
    data = os.urandom(11 * MIB)
    with pytest.raises(StoreError) as e:
        s3pump.stream(io.BytesIO(data), f"s3://{bucket}/bad.bin", s3env.config(part_size_bytes=5 * MIB))
    assert e.value.code == "BadDigest" and not e.value.retryable
    client = s3env.boto()
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.e2e
@pytest.mark.parametrize("spooled", [False, True])
def test_a_part_whose_checksum_is_not_its_bytes_is_refused_by_the_server(
    s3env: S3Env, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spooled: bool
) -> None:
    """A stream sends each part's CRC as computed while reading it (awscrt does not read the part
    again): SeaweedFS checks it against the bytes it received, so a wrong one (a reader bug, a
    buffer reused too early) is refused, and s3pump leaves no object and no open upload."""
    from s3pump.store.checksums import FullObjectChecksum

    part = FullObjectChecksum.part
    monkeypatch.setattr(FullObjectChecksum, "part", lambda self, data, crc=0: part(self, data, crc) ^ 1)
    data = os.urandom(11 * MIB)
    with pytest.raises(StoreError) as e:
        s3pump.stream(io.BytesIO(data), f"s3://{bucket}/badpart.bin", s3env.config(part_size_bytes=5 * MIB),
                      spool_dir=str(tmp_path / "spool") if spooled else None)
    assert e.value.code == "BadDigest"  # retried (bytes damaged on the way would be sent right again), then given up
    client = s3env.boto()
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
