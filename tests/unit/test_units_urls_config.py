"""Parsing of sizes/durations, S3 URLs and keys, and TransferConfig validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3pump.config import TransferConfig
from s3pump.errors import InvalidKeyError, UsageError
from s3pump.units import parse_duration_s, parse_size_bytes
from s3pump.urls import join_key, parse_s3_url, sanitize_key


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4KiB", 4096), ("8MiB", 8 * 2**20), ("10M", 10_000_000), ("1.5G", 1_500_000_000), ("100", 100),
     ("5 MiB", 5 * 2**20), ("1KB", 1000), ("2k", 2000)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "4XB", "-1", "1..2M"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size_bytes(text)


def test_parse_duration() -> None:
    assert parse_duration_s("30s") == 30
    assert parse_duration_s("5m") == 300
    assert parse_duration_s("24h") == 86400
    assert parse_duration_s("250ms") == 0.25
    with pytest.raises(UsageError):
        parse_duration_s("soon")


def test_parse_s3_url() -> None:
    u = parse_s3_url("s3://my-bucket/a/b/")
    assert (u.bucket, u.prefix) == ("my-bucket", "a/b/")
    assert parse_s3_url("s3://my-bucket").prefix == ""
    for bad in ("http://x/y", "s3://", "s3://A_B/x", "s3://ab/x", "s3://a..b/x"):
        with pytest.raises(UsageError):
            parse_s3_url(bad)


def test_join_key() -> None:
    assert join_key("", "a.txt") == "a.txt"
    assert join_key("p", "a.txt") == "p/a.txt"
    assert join_key("p/", "a.txt") == "p/a.txt"


@pytest.mark.parametrize(
    "key", ["/abs", "a/../b", "..", "a/./b", "", "x" * 1025, "caf\udce9.txt", "a\x00b"],
)
def test_sanitize_rejects(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        sanitize_key(key)


def test_sanitize_accepts_unicode_and_1024_bytes() -> None:
    assert sanitize_key("dir/café ☃.txt") == "dir/café ☃.txt"
    assert sanitize_key("é" * 512) == "é" * 512  # 1,024 bytes of UTF-8


@given(st.text(min_size=1, max_size=300))
def test_sanitize_property(key: str) -> None:
    """Whatever passes is a key S3 accepts and s3pump considers safe."""
    try:
        out = sanitize_key(key)
    except InvalidKeyError:
        return
    encoded = out.encode("utf-8")
    assert len(encoded) <= 1024
    assert not out.startswith("/")
    assert ".." not in out.split("/")


def test_config_validation() -> None:
    TransferConfig()
    with pytest.raises(UsageError, match="part size"):
        TransferConfig(part_size_bytes=1024)
    with pytest.raises(UsageError, match="concurrency"):
        TransferConfig(concurrency=0)
    with pytest.raises(UsageError, match="checksum"):
        TransferConfig(checksum_algorithm="MD4")
    with pytest.raises(UsageError, match="sse-kms-key-id"):
        TransferConfig(sse_kms_key_id="k")
    with pytest.raises(UsageError, match="endpoint"):
        TransferConfig(endpoint_url="127.0.0.1:9000")


def test_config_env_then_flags() -> None:
    env = {"S3PUMP_CONCURRENCY": "7", "S3PUMP_PART_SIZE": "16MiB", "AWS_ENDPOINT_URL": "http://h:1",
           "AWS_REGION": "eu-west-1"}
    c = TransferConfig.from_env(env)
    assert (c.concurrency, c.part_size_bytes, c.endpoint_url, c.region) == (7, 16 * 2**20, "http://h:1", "eu-west-1")
    c2 = TransferConfig.from_env(env, concurrency=3, region=None)
    assert (c2.concurrency, c2.region) == (3, "eu-west-1")


def test_config_repr_hides_credentials() -> None:
    c = TransferConfig(access_key_id="AKIASECRETVALUE", secret_access_key="supersecretkey123")
    assert "AKIASECRETVALUE" not in repr(c) and "supersecretkey123" not in repr(c)
