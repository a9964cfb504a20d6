"""Issue 28: a stream's proof is its full-object CRC, not an MD5. Without ``--md5`` a streamed object
has no ``md5`` metadata and a multipart ETag no candidate part size explains, so its only integrity
record is its FULL_OBJECT CRC32C: ``verify`` and ``sync --checksum`` must compare a local file with
that (and catch one changed byte, same size and mtime); ``stream --md5`` restores the metadata."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from ..conftest import S3Env, run_cli

MIB = 2**20
#: 5.5 MiB: 12 MiB is 3 parts, which no candidate part size of sync/verify (5, 8, 16, ... MiB, the
#: smallest whole MiB) reproduces, so the ETag cannot decide and the CRC must
ODD_PART_BYTES = 5 * MIB + MIB // 2

pytestmark = pytest.mark.e2e


def _verify(env: dict[str, str], src: Path, dest: str) -> tuple[int, list[dict]]:
    r = run_cli(["verify", str(src), dest, "--json"], env)
    return r.returncode, [json.loads(line) for line in r.stdout.decode().splitlines()]


def _sync(env: dict[str, str], src: Path, dest: str) -> tuple[int, list[dict]]:
    r = run_cli(["sync", str(src), dest, "--checksum", "--no-progress", "--json"], env)
    events = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert events and events[-1]["event"] == "summary", r.stderr.decode()
    return r.returncode, events


def test_verify_and_sync_checksum_compare_the_full_object_crc_of_a_stream(
    s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path
) -> None:
    env = s3env.env(state_dir)
    data = os.urandom(12 * MIB)
    r = run_cli(["stream", f"s3://{bucket}/s/data.bin", "--part-size", str(ODD_PART_BYTES), "--json", "--no-progress"],
                env, input=data)
    assert r.returncode == 0, r.stderr.decode()
    report = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert report["md5"] is None and report["parts"] == 3 and report["checksum_algorithm"] == "CRC32C"
    client = s3env.boto()
    head = client.head_object(Bucket=bucket, Key="s/data.bin", ChecksumMode="ENABLED")
    assert "md5" not in head.get("Metadata", {}) and head["ETag"].strip('"').endswith("-3")
    assert head["ChecksumType"] == "FULL_OBJECT" and head["ChecksumCRC32C"] == report["checksum"]

    src = tmp_path / "src"
    src.mkdir()
    local = src / "data.bin"
    local.write_bytes(data)
    dest = f"s3://{bucket}/s/"
    code, events = _verify(env, src, dest)
    assert code == 0 and events[-1]["matched"] == 1, events
    code, events = _sync(env, src, dest)
    assert code == 0 and events[-1]["planned_uploads"] == 0, events
    [skipped] = [e for e in events if e["event"] == "skipped"]
    assert skipped["reason"] == "full-object CRC32C equals the file's"

    # one byte changed; same size, same mtime
    st = local.stat()
    changed = bytearray(data)
    changed[9 * MIB + 17] ^= 0x01
    local.write_bytes(bytes(changed))
    os.utime(local, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, events = _verify(env, src, dest)
    assert code == 1, events
    assert [(e["event"], e["key"], e["reason"]) for e in events[:-1]] == [
        ("different", "s/data.bin", "content differs (full-object CRC32C)")]
    code, events = _sync(env, src, dest)
    assert code == 0, events
    [planned] = [e for e in events if e["event"] == "planned"]
    assert planned["key"] == "s/data.bin" and not planned["fallback"]
    assert planned["reason"] == "content differs (full-object CRC32C)"
    assert client.get_object(Bucket=bucket, Key="s/data.bin")["Body"].read() == bytes(changed)
    assert _verify(env, src, dest)[0] == 0


def test_stream_md5_restores_the_md5_metadata(s3env: S3Env, bucket: str, state_dir: Path) -> None:
    data = os.urandom(11 * MIB)
    r = run_cli(["stream", f"s3://{bucket}/m.bin", "--part-size", "5MiB", "--md5", "--json", "--no-progress"],
                s3env.env(state_dir), input=data)
    assert r.returncode == 0, r.stderr.decode()
    report = json.loads(r.stdout.decode().strip().splitlines()[-1])
    head = s3env.boto().head_object(Bucket=bucket, Key="m.bin", ChecksumMode="ENABLED")
    assert head["Metadata"]["md5"] == hashlib.md5(data).hexdigest() == report["md5"]
    assert head["ChecksumType"] == "FULL_OBJECT" and head["ChecksumCRC32C"] == report["checksum"]
    # the environment variable turns it on too (a single PUT here)
    r = run_cli(["stream", f"s3://{bucket}/e.bin", "--no-progress"], {**s3env.env(state_dir), "S3PUMP_STREAM_MD5": "1"},
                input=data[:1000])
    assert r.returncode == 0, r.stderr.decode()
    head = s3env.boto().head_object(Bucket=bucket, Key="e.bin")
    assert head["Metadata"] == {"md5": hashlib.md5(data[:1000]).hexdigest()}
