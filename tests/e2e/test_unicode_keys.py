"""Issue 26: Unicode normalization of keys. A macOS tree names files in NFD, a Linux tree in NFC: the
same names, other bytes. ``--normalize-keys nfc`` maps both to NFC keys (upload and sync, and sync
compares its walk's keys so mapped with the listing); the default keeps the bytes and warns once."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

from ..conftest import S3Env, run_cli

NAMES = ["café.txt", "résumé/naïve.md", "plain.txt", "Ångström/Übergröße.bin"]
MTIME_NS = 1_700_000_000_123_456_789


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def make_tree(root: Path, form: str) -> dict[str, bytes]:
    """The files of NAMES with names in ``form``, the same bytes and mtimes whatever the form."""
    files = {}
    for name in NAMES:
        path = root / unicodedata.normalize(form, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = f"contents of {nfc(name)}\n".encode()
        path.write_bytes(data)
        os.utime(path, ns=(MTIME_NS, MTIME_NS))
        files[nfc(name)] = data
    return files


def keys(s3env: S3Env, bucket: str, prefix: str) -> list[str]:
    resp = s3env.boto().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))


def nfc_warnings(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if "not in Unicode NFC" in line]


def test_upload_nfd_tree_nfc_keys_or_bytes_with_one_warning(s3env: S3Env, bucket: str, state_dir: Path,
                                                             tmp_path: Path) -> None:
    mac = tmp_path / "mac"
    files = make_tree(mac, "NFD")
    env = s3env.env(state_dir)
    r = run_cli(["upload", str(mac), f"s3://{bucket}/n/", "--no-progress", "--normalize-keys", "nfc"], env)
    assert r.returncode == 0, r.stderr.decode()
    assert keys(s3env, bucket, "n/") == sorted(f"n/{k}" for k in files)
    assert nfc_warnings(r.stderr) == []
    for k, data in files.items():
        assert s3env.boto().get_object(Bucket=bucket, Key=f"n/{k}")["Body"].read() == data
    v = run_cli(["verify", str(mac), f"s3://{bucket}/n/", "--normalize-keys", "nfc"], env)  # the same keys
    assert v.returncode == 0, v.stderr.decode() + v.stdout.decode()

    r = run_cli(["upload", str(mac), f"s3://{bucket}/b/", "--no-progress"], env)
    assert r.returncode == 0, r.stderr.decode()
    assert keys(s3env, bucket, "b/") == sorted(f"b/{nfd(k)}" for k in files)  # the names' bytes
    [line] = nfc_warnings(r.stderr)
    assert "--normalize-keys nfc" in line

    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / nfc("é.txt")).write_bytes(b"nfc")
    (clash / nfd("é.txt")).write_bytes(b"nfd")
    r = run_cli(["upload", str(clash), f"s3://{bucket}/c/", "--no-progress", "--normalize-keys", "nfc"], env)
    assert r.returncode == 1 and "its name in Unicode NFC is that of" in r.stderr.decode(), r.stderr.decode()
    assert keys(s3env, bucket, "c/") == [f"c/{nfc('é.txt')}"]


def test_sync_nfd_tree_against_nfc_keys(s3env: S3Env, bucket: str, state_dir: Path, tmp_path: Path) -> None:
    """The keys a Linux tree (NFC) wrote, synced from a macOS tree (NFD) of the same files with
    ``--normalize-keys nfc --delete``: nothing to upload, nothing deleted."""
    linux, mac = tmp_path / "linux", tmp_path / "mac"
    files = make_tree(linux, "NFC")
    make_tree(mac, "NFD")
    env = s3env.env(state_dir)
    r = run_cli(["sync", str(linux), f"s3://{bucket}/s", "--no-progress"], env)
    assert r.returncode == 0, r.stderr.decode()
    before = {k: s3env.boto().head_object(Bucket=bucket, Key=k)["ETag"] for k in keys(s3env, bucket, "s/")}
    assert sorted(before) == sorted(f"s/{k}" for k in files)

    plan = run_cli(["sync", str(mac), f"s3://{bucket}/s", "--delete", "--dry-run", "--normalize-keys", "nfc"], env)
    assert plan.returncode == 0, plan.stderr.decode()
    assert "upload" not in plan.stdout.decode() and "delete" not in plan.stdout.decode(), plan.stdout.decode()
    r = run_cli(["sync", str(mac), f"s3://{bucket}/s", "--delete", "--no-progress", "--normalize-keys", "nfc",
                 "--json"], env)
    assert r.returncode == 0, r.stderr.decode()
    events = [json.loads(line)["event"] for line in r.stdout.decode().splitlines() if line.startswith("{")]
    assert events.count("skipped") == len(files) and not {"planned", "done", "deleted"} & set(events), events
    assert {k: s3env.boto().head_object(Bucket=bucket, Key=k)["ETag"] for k in keys(s3env, bucket, "s/")} == before

    (mac / nfd("café.txt")).write_bytes(b"changed on the mac\n")  # a changed file: its NFC key, read from its NFD path
    r = run_cli(["sync", str(mac), f"s3://{bucket}/s", "--delete", "--no-progress", "--normalize-keys", "nfc"], env)
    assert r.returncode == 0, r.stderr.decode()
    assert sorted(keys(s3env, bucket, "s/")) == sorted(before)
    assert s3env.boto().get_object(Bucket=bucket, Key=f"s/{nfc('café.txt')}")["Body"].read() == b"changed on the mac\n"

    default = run_cli(["sync", str(mac), f"s3://{bucket}/s", "--dry-run"], env)  # without: other keys, and said
    assert default.returncode == 0 and len(nfc_warnings(default.stderr)) == 1, default.stderr.decode()
    assert "upload" in default.stdout.decode()
