"""One suite, every store: MemoryStore must behave like S3Store on two independent servers:
SeaweedFS and moto in server mode (with SigV4 checked). A test a server cannot pass is marked for
the others with the reason (``only_on``)."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3pump.engine.multipart import multipart_etag
from s3pump.errors import CredentialsError, NoSuchBucketError, StoreError
from s3pump.lifecycle import same_rules
from s3pump.store.base import CompletedPart, ObjectAttributes, PutResult, Store
from s3pump.store.memory import MemoryStore
from s3pump.store.s3 import S3Store

MIB = 2**20


STORES = ["memory", "s3", "moto"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[tuple[Store, str]]:
    bucket = f"c-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        s: Store = MemoryStore()
    else:
        server = request.getfixturevalue("s3env" if request.param == "s3" else "moto_env")
        s = S3Store(server.config())
    s.create_bucket(bucket)
    yield s, bucket
    s.close()


def lacks(request: pytest.FixtureRequest, server: str, reason: str) -> None:
    """Skip the rest of a test on ``server`` (a feature it does not implement), saying why."""
    if request.node.callspec.params.get("store") == server:
        pytest.skip(f"{server} lacks this: {reason}")


@pytest.fixture(params=["s3", "moto"])
def server(request: pytest.FixtureRequest) -> object:
    """Each real server (SeaweedFS, moto), for what the memory store does not model (signatures)."""
    return request.getfixturevalue("s3env" if request.param == "s3" else "moto_env")


def wait(start: object) -> PutResult:
    """Run a data-plane call and wait for its on_done."""
    box: list[PutResult | StoreError] = []
    done = threading.Event()

    def on_done(r: PutResult | StoreError) -> None:
        box.append(r)
        done.set()

    start(on_done)  # type: ignore[operator]
    assert done.wait(30)
    result = box[0]
    if isinstance(result, StoreError):
        raise result
    return result


def test_put_bytes_and_file_etag_is_md5(store: tuple[Store, str], tmp_path: Path) -> None:
    s, b = store
    body = os.urandom(100_000)
    r = wait(lambda cb: s.put_bytes(b, "x/bytes.bin", body, ObjectAttributes(metadata=(("md5", "abc"),)), cb))
    assert r.etag == hashlib.md5(body).hexdigest()
    f = tmp_path / "f.bin"
    f.write_bytes(body[:777])
    r2 = wait(lambda cb: s.put_file(b, "x/file.bin", str(f), 777, ObjectAttributes(), cb))
    assert r2.etag == hashlib.md5(body[:777]).hexdigest()
    assert s.get_object(b, "x/bytes.bin") == body
    head = s.head_object(b, "x/bytes.bin")
    assert head is not None and head.size_bytes == len(body) and head.metadata.get("md5") == "abc"
    assert s.head_object(b, "x/nope") is None


def test_empty_object(store: tuple[Store, str]) -> None:
    s, b = store
    r = wait(lambda cb: s.put_bytes(b, "empty", b"", ObjectAttributes(), cb))
    assert r.etag == hashlib.md5(b"").hexdigest()
    assert s.get_object(b, "empty") == b""


def test_multipart_roundtrip_and_etag(store: tuple[Store, str]) -> None:
    s, b = store
    parts_data = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1234)]
    upload_id = s.create_multipart_upload(b, "mp/obj", ObjectAttributes(content_type="text/plain"))
    assert [u.upload_id for u in s.list_multipart_uploads(b, "mp/")] == [upload_id]
    done = []
    for n, data in enumerate(parts_data, 1):
        r = wait(lambda cb, n=n, data=data: s.upload_part(b, "mp/obj", upload_id, n, data, cb))
        assert r.etag == hashlib.md5(data).hexdigest()
        done.append(CompletedPart(n, r.etag, len(data), r.checksum))
    listed = s.list_parts(b, "mp/obj", upload_id)
    assert [(p.part_number, p.etag, p.size_bytes) for p in listed] == [(p.part_number, p.etag, p.size_bytes)
                                                                      for p in done]
    result = s.complete_multipart_upload(b, "mp/obj", upload_id, done)
    assert result.etag == multipart_etag([hashlib.md5(d).digest() for d in parts_data])
    assert s.get_object(b, "mp/obj") == b"".join(parts_data)
    assert list(s.list_multipart_uploads(b, "mp/")) == []


def test_abort_leaves_nothing(store: tuple[Store, str]) -> None:
    s, b = store
    upload_id = s.create_multipart_upload(b, "ab/obj", ObjectAttributes())
    wait(lambda cb: s.upload_part(b, "ab/obj", upload_id, 1, os.urandom(5 * MIB), cb))
    s.abort_multipart_upload(b, "ab/obj", upload_id)
    s.abort_multipart_upload(b, "ab/obj", upload_id)  # twice is fine
    assert list(s.list_multipart_uploads(b, "ab/")) == []
    assert s.head_object(b, "ab/obj") is None


def test_list_with_prefix_and_delete(store: tuple[Store, str]) -> None:
    s, b = store
    keys = ["p/a/b", "p/a-c", "p/é", "p/z", "q/other"]
    for k in keys:
        wait(lambda cb, k=k: s.put_bytes(b, k, k.encode(), ObjectAttributes(), cb))
    listed = [o.key for o in s.list_objects(b, "p/")]
    # order is not part of the contract: SeaweedFS lists directory-first, S3 in UTF-8 byte order
    assert sorted(listed) == sorted(k for k in keys if k.startswith("p/"))
    s.delete_objects(b, ["p/z", "p/é"])
    assert sorted(o.key for o in s.list_objects(b, "p/")) == ["p/a-c", "p/a/b"]


def test_missing_bucket(store: tuple[Store, str]) -> None:
    s, _ = store
    with pytest.raises(NoSuchBucketError):
        s.head_bucket("no-such-bucket-" + uuid.uuid4().hex[:8])
    s.create_bucket(_)  # creating an owned bucket again is fine


@pytest.mark.parametrize("key", ["meta/plain.bin", "meta/with space+plus&ü.bin"])
def test_replace_metadata_keeps_bytes_and_checks_the_etag(
    store: tuple[Store, str], key: str, request: pytest.FixtureRequest
) -> None:
    """CopyObject onto itself: new user metadata, same bytes and ETag; a stale ETag is refused."""
    s, b = store
    body = os.urandom(50_000)
    put = wait(lambda cb: s.put_bytes(b, key, body, ObjectAttributes(metadata=(("old", "1"),)), cb))
    attrs = ObjectAttributes(content_type="application/gzip", metadata=(("md5", "m"), ("sha256", "s")))
    r = s.replace_metadata(b, key, attrs, size_bytes=len(body), etag=put.etag)
    assert r.etag == put.etag == hashlib.md5(body).hexdigest()
    head = s.head_object(b, key)
    assert head is not None and head.metadata == {"md5": "m", "sha256": "s"} and head.etag == put.etag
    assert s.get_object(b, key) == body
    lacks(request, "moto", "moto 5.2 ignores x-amz-copy-source-if-match on CopyObject (the copy succeeds)")
    with pytest.raises(StoreError) as e:
        s.replace_metadata(b, key, attrs, size_bytes=len(body), etag="0" * 32)
    assert e.value.status == 412 and not e.value.retryable


def test_replace_metadata_over_the_copy_limit_copies_in_parts(
    store: tuple[Store, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects over CopyObject's 5 GiB limit are copied with UploadPartCopy (the limit lowered
    here): new metadata, same bytes, no multipart upload left."""
    import s3pump.engine.copy as copy
    from s3pump.engine.uploads import OpenUploads
    from s3pump.retry import RetryPolicy

    monkeypatch.setattr(copy, "COPY_OBJECT_MAX_BYTES", 0)
    s, b = store
    body = os.urandom(60_000)
    put = wait(lambda cb: s.put_bytes(b, "big/obj", body, ObjectAttributes(), cb))
    copy.replace_metadata(s, OpenUploads(s, b, RetryPolicy()), "big/obj", ObjectAttributes(metadata=(("sha256", "s"),)),
                          size_bytes=len(body), etag=put.etag)
    head = s.head_object(b, "big/obj")
    assert head is not None and head.metadata == {"sha256": "s"}
    assert s.get_object(b, "big/obj") == body
    assert list(s.list_multipart_uploads(b)) == []


def test_wrong_secret_key_is_refused(server: object) -> None:
    """Both servers check SigV4: a request signed with a wrong secret fails with CredentialsError,
    on the control plane (boto3) and on the data plane (awscrt); nothing is stored."""
    good = S3Store(server.config())  # type: ignore[attr-defined]
    bucket = f"c-{uuid.uuid4().hex[:12]}"
    good.create_bucket(bucket)
    bad = S3Store(server.config(secret_access_key="wrong-" + uuid.uuid4().hex))  # type: ignore[attr-defined]
    try:
        with pytest.raises(CredentialsError):
            bad.head_bucket(bucket)
        with pytest.raises(CredentialsError):
            list(bad.list_multipart_uploads(bucket))
        with pytest.raises(CredentialsError):
            wait(lambda cb: bad.put_bytes(bucket, "forged", b"x", ObjectAttributes(), cb))
        assert good.head_object(bucket, "forged") is None
    finally:
        bad.close()
        good.close()


def test_lifecycle_configuration_roundtrip(store: tuple[Store, str]) -> None:
    """PutBucketLifecycleConfiguration stores exactly the rules given (and replaces all of them);
    an empty list deletes the configuration; a bucket without one reads as []."""
    s, b = store
    assert s.get_bucket_lifecycle(b) == []
    rules = [
        {"ID": "a", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}},
        {"ID": "b", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"ID": "c", "Status": "Enabled", "Filter": {"Prefix": "old/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 5}},
    ]
    s.put_bucket_lifecycle(b, rules)
    assert same_rules(s.get_bucket_lifecycle(b), rules)
    s.put_bucket_lifecycle(b, rules[:1])
    assert same_rules(s.get_bucket_lifecycle(b), rules[:1])
    s.put_bucket_lifecycle(b, [])
    assert s.get_bucket_lifecycle(b) == []


def test_versioning_keeps_every_version(store: tuple[Store, str]) -> None:
    """After PutBucketVersioning Enabled, each PutObject/CompleteMultipartUpload answers with a new
    version ID (x-amz-version-id), and ListObjectVersions shows all of them."""
    s, b = store
    assert s.get_bucket_versioning(b) is None
    first = wait(lambda cb: s.put_bytes(b, "v/obj", b"one", ObjectAttributes(), cb))
    assert first.version_id in (None, "null")  # written before versioning: the "null" version
    s.put_bucket_versioning(b, True)
    assert s.get_bucket_versioning(b) == "Enabled"
    second = wait(lambda cb: s.put_bytes(b, "v/obj", b"two", ObjectAttributes(), cb))
    upload_id = s.create_multipart_upload(b, "v/obj", ObjectAttributes())
    part = wait(lambda cb: s.upload_part(b, "v/obj", upload_id, 1, b"three", cb))
    third = s.complete_multipart_upload(b, "v/obj", upload_id, [CompletedPart(1, part.etag, 5, part.checksum)])
    assert second.version_id and third.version_id and second.version_id != third.version_id
    versions = [v for v in s.list_object_versions(b, "v/") if not v.delete_marker]
    assert {v.version_id for v in versions} >= {second.version_id, third.version_id}
    assert len(versions) == 3
    assert [v.version_id for v in versions if v.is_latest] == [third.version_id]
    assert s.get_object(b, "v/obj") == b"three"
    s.put_bucket_versioning(b, False)
    assert s.get_bucket_versioning(b) == "Suspended"


def test_delete_bucket_refuses_a_non_empty_one(store: tuple[Store, str]) -> None:
    s, b = store
    wait(lambda cb: s.put_bytes(b, "x", b"x", ObjectAttributes(), cb))
    with pytest.raises(StoreError) as e:
        s.delete_bucket(b)
    assert e.value.code == "BucketNotEmpty"
    s.delete_objects(b, ["x"])
    s.delete_bucket(b)
    with pytest.raises(NoSuchBucketError):
        s.head_bucket(b)
