"""MemoryStore: an in-memory object store behind the Store protocol.

It behaves like S3 where s3pump depends on it: ETags are the MD5 of a single-part
body and ``md5(concat(part md5s))-N`` for a multipart object; parts other than
the last must be at least 5 MiB (configurable for tests); keys list in UTF-8
byte order; metadata round-trips. ``fault`` lets a test fail chosen requests.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from awscrt.checksums import crc32c

from ..errors import (
    FatalStoreError,
    NoSuchBucketError,
    NoSuchUploadError,
    StoreError,
)
from ..retry import RetryPolicy
from ..units import MIB
from .base import (
    CompletedPart,
    DoneCallback,
    MultipartUploadInfo,
    ObjectAttributes,
    ObjectInfo,
    ObjectVersion,
    PutResult,
)
from .body import StreamBody
from .checksums import full_checksum
from .memory_reads import MemoryReads

__all__ = ["MemoryStore", "StoredObject"]

#: ``fault(operation, key) -> error or None``; operation is an S3 operation name
#: ("PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload").
FaultHook = Callable[[str, str], StoreError | None]


@dataclass(slots=True)
class StoredObject:
    body: bytes
    etag: str
    last_modified: float
    metadata: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    version_id: str | None = None
    attrs: ObjectAttributes = field(default_factory=ObjectAttributes)
    """Everything the writer sent (headers and tags), as S3 keeps it."""
    part_sizes: tuple[int, ...] = ()
    """The parts' lengths of a multipart object (``()``: a single PUT)."""
    full_checksum: tuple[str, str] | None = None
    """(algorithm, base64) given at CompleteMultipartUpload for a FULL_OBJECT checksum."""


@dataclass(slots=True)
class _Upload:
    key: str
    attrs: ObjectAttributes
    initiated: float
    parts: dict[int, tuple[bytes, str]] = field(default_factory=dict)


class _Done:
    """The Request handle of an already finished in-memory request."""

    def cancel(self) -> None:
        return None


class MemoryStore(MemoryReads):
    """A thread-safe in-memory Store. Data-plane calls complete synchronously. HeadObject, the
    one-level listing, ListBuckets and the streamed GetObject are in
    :class:`~s3pump.store.memory_reads.MemoryReads`."""

    def __init__(self, *, min_part_size_bytes: int = 5 * MIB, fault: FaultHook | None = None):
        self.min_part_size_bytes = min_part_size_bytes
        self.fault = fault
        self.buckets: dict[str, dict[str, StoredObject]] = {}
        self.uploads: dict[str, dict[str, _Upload]] = {}
        self.request_log: list[tuple[str, str]] = []
        # bucket configuration: lifecycle rules as given, versioning status, noncurrent versions
        self.lifecycle: dict[str, list[dict[str, Any]]] = {}
        self.versioning: dict[str, str] = {}
        self.noncurrent: dict[str, list[tuple[str, StoredObject]]] = {}
        self._lock = threading.Lock()
        self._next_upload = 0
        self._created = time.time()
        self.retry = RetryPolicy(max_attempts=6, backoff_base_s=0.0, backoff_max_s=0.0)

    def use_retry_policy(self, policy: RetryPolicy) -> None:
        """Retry synchronous PUTs (:func:`~s3pump.store.waiting.put_and_wait`) with a run's policy."""
        self.retry = policy

    def snapshot(self, bucket: str) -> dict[str, StoredObject]:
        """A copy of ``bucket``'s objects by key, taken under the store's lock: safe to iterate while
        a run in another thread writes (iterating ``buckets[bucket]`` itself then may raise
        "dictionary changed size during iteration").

        Raises:
            NoSuchBucketError: no such bucket.
        """
        with self._lock:
            return dict(self._objects(bucket))

    # ---- helpers ----
    def _objects(self, bucket: str) -> dict[str, StoredObject]:
        try:
            return self.buckets[bucket]
        except KeyError:
            raise NoSuchBucketError(f"s3://{bucket}: NoSuchBucket", status=404, code="NoSuchBucket") from None

    def _check(self, op: str, bucket: str, key: str) -> None:
        with self._lock:
            self.request_log.append((op, key))
        self._objects(bucket)
        if self.fault is not None:
            err = self.fault(op, key)
            if err is not None:
                raise err

    def _store(self, bucket: str, key: str, body: bytes, etag: str, attrs: ObjectAttributes,
               part_sizes: tuple[int, ...] = (), full: tuple[str, str] | None = None) -> str | None:
        """Store the object; in a versioned bucket the one it replaces becomes noncurrent.
        Returns the new version ID (None when versioning was never enabled, as S3 sends none)."""
        with self._lock:
            objects = self._objects(bucket)
            status = self.versioning.get(bucket)
            version_id = uuid.uuid4().hex if status == "Enabled" else "null" if status else None
            old = objects.get(key)
            if old is not None and status and not (status == "Suspended" and old.version_id in (None, "null")):
                self.noncurrent.setdefault(bucket, []).append((key, old))
            objects[key] = StoredObject(
                body, etag, time.time(), dict(attrs.metadata), attrs.content_type, version_id, attrs, part_sizes, full
            )
            return version_id

    @staticmethod
    def _crc32c_b64(body: bytes | memoryview) -> str:
        """The base64 CRC32C of ``body``, as S3 reports ``ChecksumCRC32C`` (awscrt's CRC32C)."""
        return base64.b64encode(crc32c(bytes(body)).to_bytes(4, "big")).decode()

    # ---- data plane ----
    def put_file(
        self, bucket: str, key: str, path: str, size_bytes: int, attrs: ObjectAttributes,
        on_done: DoneCallback,
    ) -> _Done:
        try:
            self._check("PutObject", bucket, key)
            with open(path, "rb") as f:
                body = f.read()
            if len(body) != size_bytes:
                raise FatalStoreError(f"s3://{bucket}/{key}: file changed size while read")
            etag = hashlib.md5(body).hexdigest()
            version_id = self._store(bucket, key, body, etag, attrs)
            result: PutResult | StoreError = PutResult(etag, self._crc32c_b64(body), version_id)
        except StoreError as e:
            result = e
        on_done(result)
        return _Done()

    def put_bytes(
        self, bucket: str, key: str, body: bytes | memoryview | StreamBody, attrs: ObjectAttributes,
        on_done: DoneCallback,
    ) -> _Done:
        try:
            self._check("PutObject", bucket, key)
            data = bytes(body) if isinstance(body, bytes | memoryview) else body.read()
            etag = hashlib.md5(data).hexdigest()
            version_id = self._store(bucket, key, data, etag, attrs)
            result: PutResult | StoreError = PutResult(etag, self._crc32c_b64(data), version_id)
        except StoreError as e:
            result = e
        on_done(result)
        return _Done()

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: bytes | memoryview | StreamBody,
        on_done: DoneCallback,
    ) -> _Done:
        try:
            self._check("UploadPart", bucket, key)
            upload = self._upload(bucket, upload_id)
            given = None if isinstance(body, bytes | memoryview) else getattr(body, "checksum", None)
            if not isinstance(body, bytes | memoryview):
                body = body.read()
            if not 1 <= part_number <= 10_000:
                raise FatalStoreError(f"s3://{bucket}/{key}: part number {part_number} out of 1..10000")
            data = bytes(body)
            if given is not None and given != full_checksum(given[0], data):  # as S3 checks x-amz-checksum-*
                raise FatalStoreError(f"s3://{bucket}/{key}: BadDigest: the {given[0]} of part {part_number} "
                                      "is not the one given", status=400, code="BadDigest")
            etag = hashlib.md5(data).hexdigest()
            with self._lock:
                upload.parts[part_number] = (data, etag)
            result: PutResult | StoreError = PutResult(etag, self._crc32c_b64(data))
        except StoreError as e:
            result = e
        on_done(result)
        return _Done()

    # ---- control plane ----
    def _upload(self, bucket: str, upload_id: str) -> _Upload:
        try:
            return self.uploads.get(bucket, {})[upload_id]
        except KeyError:
            raise NoSuchUploadError(f"upload {upload_id}: NoSuchUpload", status=404, code="NoSuchUpload") from None

    def create_multipart_upload(self, bucket: str, key: str, attrs: ObjectAttributes) -> str:
        self._check("CreateMultipartUpload", bucket, key)
        with self._lock:
            self._next_upload += 1
            upload_id = f"mem-upload-{self._next_upload}"
            self.uploads.setdefault(bucket, {})[upload_id] = _Upload(key, attrs, time.time())
        return upload_id

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[CompletedPart],
        full_object_checksum: tuple[str, str] | None = None,
    ) -> PutResult:
        self._check("CompleteMultipartUpload", bucket, key)
        upload = self._upload(bucket, upload_id)
        numbers = [p.part_number for p in parts]
        if not numbers or numbers != sorted(set(numbers)):
            raise FatalStoreError(f"s3://{bucket}/{key}: InvalidPartOrder", code="InvalidPartOrder")
        bodies = []
        for i, p in enumerate(parts):
            stored = upload.parts.get(p.part_number)
            if stored is None or stored[1] != p.etag:
                raise FatalStoreError(f"s3://{bucket}/{key}: InvalidPart {p.part_number}", code="InvalidPart")
            if i < len(parts) - 1 and len(stored[0]) < self.min_part_size_bytes:
                raise FatalStoreError(f"s3://{bucket}/{key}: EntityTooSmall", code="EntityTooSmall")
            bodies.append(stored[0])
        if full_object_checksum is not None and full_object_checksum != full_checksum(
                full_object_checksum[0], b"".join(bodies)):
            raise FatalStoreError(f"s3://{bucket}/{key}: BadDigest: the {full_object_checksum[0]} of the object "
                                  "is not the one given", status=400, code="BadDigest")
        digest = hashlib.md5(b"".join(bytes.fromhex(hashlib.md5(b).hexdigest()) for b in bodies))
        etag = f"{digest.hexdigest()}-{len(bodies)}"
        version_id = self._store(bucket, key, b"".join(bodies), etag, upload.attrs,
                                 tuple(len(b) for b in bodies), full_object_checksum)
        with self._lock:
            del self.uploads[bucket][upload_id]
        return PutResult(etag, None, version_id)

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self._check("AbortMultipartUpload", bucket, key)
        with self._lock:
            self.uploads.get(bucket, {}).pop(upload_id, None)

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[CompletedPart]:
        upload = self._upload(bucket, upload_id)
        return [
            CompletedPart(n, etag, len(body)) for n, (body, etag) in sorted(upload.parts.items())
        ]

    def list_multipart_uploads(self, bucket: str, prefix: str = "") -> Iterator[MultipartUploadInfo]:
        self._objects(bucket)
        for upload_id, u in sorted(self.uploads.get(bucket, {}).items()):
            if u.key.startswith(prefix):
                yield MultipartUploadInfo(u.key, upload_id, u.initiated)

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        objects = self._objects(bucket)
        for key in sorted((k for k in objects if k.startswith(prefix)), key=lambda k: k.encode()):
            obj = objects[key]
            yield ObjectInfo(key, len(obj.body), obj.etag, obj.last_modified)

    def get_object(self, bucket: str, key: str) -> bytes:
        obj = self._objects(bucket).get(key)
        if obj is None:
            raise FatalStoreError(f"s3://{bucket}/{key}: NoSuchKey", status=404, code="NoSuchKey")
        return obj.body

    def delete_objects(self, bucket: str, keys: Sequence[str]) -> None:
        objects = self._objects(bucket)
        with self._lock:
            for k in keys:
                objects.pop(k, None)

    def head_bucket(self, bucket: str) -> None:
        self._objects(bucket)

    def create_bucket(self, bucket: str) -> None:
        with self._lock:
            self.buckets.setdefault(bucket, {})

    def delete_bucket(self, bucket: str) -> None:
        with self._lock:
            self.request_log.append(("DeleteBucket", ""))
            objects = self._objects(bucket)
            if objects or self.noncurrent.get(bucket) or self.uploads.get(bucket):
                raise FatalStoreError(f"s3://{bucket}: BucketNotEmpty", status=409, code="BucketNotEmpty")
            del self.buckets[bucket]
            self.lifecycle.pop(bucket, None)
            self.versioning.pop(bucket, None)
            self.noncurrent.pop(bucket, None)
            self.uploads.pop(bucket, None)

    def get_bucket_lifecycle(self, bucket: str) -> list[dict[str, Any]]:
        with self._lock:
            self.request_log.append(("GetBucketLifecycleConfiguration", ""))
        self._objects(bucket)
        return copy.deepcopy(self.lifecycle.get(bucket, []))

    def put_bucket_lifecycle(self, bucket: str, rules: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            self.request_log.append(("PutBucketLifecycleConfiguration" if rules else "DeleteBucketLifecycle", ""))
        self._objects(bucket)
        ids = [r.get("ID") for r in rules]
        if len(set(ids)) != len(ids):
            raise FatalStoreError(f"s3://{bucket}: InvalidArgument (duplicate rule ID)", status=400,
                                  code="InvalidArgument")
        with self._lock:
            if rules:
                self.lifecycle[bucket] = copy.deepcopy(list(rules))
            else:
                self.lifecycle.pop(bucket, None)

    def get_bucket_versioning(self, bucket: str) -> str | None:
        self._objects(bucket)
        return self.versioning.get(bucket)

    def put_bucket_versioning(self, bucket: str, enabled: bool) -> None:
        with self._lock:
            self.request_log.append(("PutBucketVersioning", ""))
        self._objects(bucket)
        self.versioning[bucket] = "Enabled" if enabled else "Suspended"

    def list_object_versions(self, bucket: str, prefix: str = "") -> Iterator[ObjectVersion]:
        objects = self._objects(bucket)
        for key, obj in list(self.noncurrent.get(bucket, [])):
            if key.startswith(prefix):
                yield ObjectVersion(key, obj.version_id or "null", False, len(obj.body), obj.etag)
        for key, obj in list(objects.items()):
            if key.startswith(prefix):
                yield ObjectVersion(key, obj.version_id or "null", True, len(obj.body), obj.etag)

    def delete_versions(self, bucket: str, versions: Sequence[tuple[str, str]]) -> None:
        objects = self._objects(bucket)
        gone = set(versions)
        with self._lock:
            self.noncurrent[bucket] = [(k, o) for k, o in self.noncurrent.get(bucket, [])
                                       if (k, o.version_id or "null") not in gone]
            for key, obj in list(objects.items()):
                if (key, obj.version_id or "null") in gone:
                    del objects[key]

    def replace_metadata(
        self, bucket: str, key: str, attrs: ObjectAttributes, *, size_bytes: int, etag: str,
        version_id: str | None = None,
    ) -> PutResult:
        self._check("CopyObject", bucket, key)
        with self._lock:
            obj = self._objects(bucket).get(key)
            if obj is None or obj.etag != etag:
                raise FatalStoreError(f"s3://{bucket}/{key}: PreconditionFailed (ETag is not {etag})",
                                      status=412, code="PreconditionFailed")
            obj.metadata = dict(attrs.metadata)
            obj.content_type = attrs.content_type
            obj.attrs = dataclasses.replace(attrs, tagging=obj.attrs.tagging)  # a copy keeps the tags
        return PutResult(obj.etag)

    def upload_part_copy(
        self, bucket: str, key: str, upload_id: str, part_number: int, start: int, end: int, *, etag: str,
        version_id: str | None = None,
    ) -> CompletedPart:
        self._check("UploadPartCopy", bucket, key)
        with self._lock:
            obj = self._objects(bucket).get(key)
            if obj is None or obj.etag != etag:
                raise FatalStoreError(f"s3://{bucket}/{key}: PreconditionFailed (ETag is not {etag})",
                                      status=412, code="PreconditionFailed")
            data = bytes(obj.body[start:end])
            part_etag = hashlib.md5(data).hexdigest()
            self._upload(bucket, upload_id).parts[part_number] = (data, part_etag)
        return CompletedPart(part_number, part_etag, len(data), self._crc32c_b64(data))

    def close(self) -> None:
        return None
