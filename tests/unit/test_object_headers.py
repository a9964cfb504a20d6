"""Object headers (issue 13) reach both the single PUT and the multipart upload, through the same
ObjectAttributes, and survive the content-type guess of the walk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s3pump.config import TransferConfig
from s3pump.errors import UsageError
from s3pump.jobs.upload import upload
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore

MIB = 2**20
HEADERS = {"cache_control": "no-cache", "content_encoding": "gzip", "content_disposition": "inline",
           "content_language": "fr", "expires": "Wed, 02 Jan 2030 03:04:05 GMT", "tagging": "a=1&b=two"}


def test_headers_of_attributes() -> None:
    attrs = ObjectAttributes("text/plain", metadata=(("k", "v"),), **HEADERS)
    assert dict(attrs.headers()) == {
        "x-amz-meta-k": "v", "Cache-Control": "no-cache", "Content-Encoding": "gzip",
        "Content-Disposition": "inline", "Content-Language": "fr", "Expires": "Wed, 02 Jan 2030 03:04:05 GMT",
        "x-amz-tagging": "a=1&b=two"}
    assert attrs.with_metadata({"md5": "x"}).tagging == "a=1&b=two"  # a copy keeps every header


def test_upload_sends_headers_single_and_multipart(tmp_path: Path) -> None:
    store = MemoryStore()
    store.create_bucket("bkt")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"small")
    (tmp_path / "src" / "b.bin").write_bytes(os.urandom(6 * MIB))
    config = TransferConfig(part_size_bytes=5 * MIB, multipart_threshold_bytes=5 * MIB, **HEADERS)
    report = upload([tmp_path / "src"], "s3://bkt/p/", config, store=store, failed_list=tmp_path / "f")
    assert report.files_done == 2
    for key, ctype in (("p/a.txt", "text/plain"), ("p/b.bin", "application/octet-stream")):
        stored = store.buckets["bkt"][key].attrs
        assert stored.content_type == ctype  # guessed per file, the headers kept
        assert {name: getattr(stored, name) for name in HEADERS} == HEADERS
    assert store.buckets["bkt"]["p/b.bin"].etag.endswith("-2")


@pytest.mark.parametrize("bad", [{"tagging": "=x"}, {"cache_control": "caf\u00e9"}])
def test_bad_header_values_are_usage_errors(bad: dict[str, str]) -> None:
    with pytest.raises(UsageError):
        TransferConfig(**bad)
