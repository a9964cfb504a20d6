"""The MemoryStore calls that read without writing, as S3 answers them: HeadObject (a part
number, checksums), a one-level listing (a delimiter), ListBuckets and a streamed GetObject.
A mixin of :class:`~s3pump.store.memory.MemoryStore` (the twins of
:class:`~s3pump.store.s3_reads.S3Reads`)."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from awscrt.checksums import crc32c

from ..errors import FatalStoreError, StoreError
from .base import BucketInfo, CommonPrefix, ObjectInfo

if TYPE_CHECKING:
    from .memory import StoredObject

__all__ = ["MemoryReads"]


class _Host(Protocol):
    """What the mixin uses of :class:`~s3pump.store.memory.MemoryStore`."""

    _lock: threading.Lock
    _created: float
    request_log: list[tuple[str, str]]
    buckets: dict[str, dict[str, StoredObject]]
    fault: Callable[[str, str], StoreError | None] | None

    def _objects(self, bucket: str) -> dict[str, StoredObject]: ...

    def _check(self, op: str, bucket: str, key: str) -> None: ...

    def snapshot(self, bucket: str) -> dict[str, StoredObject]: ...


def _crc32c_b64(body: bytes) -> str:
    """The base64 big-endian CRC32C of ``body``, as S3 shows ``x-amz-checksum-crc32c``."""
    return base64.b64encode(crc32c(body).to_bytes(4, "big")).decode()


class _Stream:
    """An :class:`~s3pump.store.base.ObjectStream` over a copy of the object's bytes."""

    def __init__(self, body: io.BytesIO, size_bytes: int, etag: str) -> None:
        self._body, self.size_bytes, self.etag = body, size_bytes, etag

    def read(self, size_bytes: int) -> bytes:
        return self._body.read(size_bytes)

    def close(self) -> None:
        self._body.close()


class MemoryReads:
    """HeadObject, the one-level listing, ListBuckets, the streamed GetObject (the contracts are the
    :class:`~s3pump.store.base.Store` protocol's)."""

    def head_object(self: _Host, bucket: str, key: str, *, part_number: int | None = None,
                    checksum_mode: bool = False) -> ObjectInfo | None:
        """As S3: with ``part_number``, the part's length and the parts count (part 1 of a single PUT:
        the whole object, no count; past the last part: 416 InvalidPartNumber); with
        ``checksum_mode``, the CRC32C of a single PUT (FULL_OBJECT), the checksum given at completion
        (FULL_OBJECT), or else the CRC32C of the parts' CRC32Cs (COMPOSITE, ``-N``); none for an object
        stored with a multipart ETag and no parts (built by a test: an upload without checksums)."""
        obj = self._objects(bucket).get(key)
        if obj is None:
            return None
        size, count = len(obj.body), None
        if part_number is not None:
            if not 1 <= part_number <= max(1, len(obj.part_sizes)):
                raise FatalStoreError(f"s3://{bucket}/{key}: InvalidPartNumber", status=416, code="InvalidPartNumber")
            if obj.part_sizes:
                size, count = obj.part_sizes[part_number - 1], len(obj.part_sizes)
        checksums: dict[str, str] = {}
        kind = None
        if checksum_mode:
            kind = "FULL_OBJECT"
            if obj.full_checksum is not None:
                checksums[obj.full_checksum[0].upper()] = obj.full_checksum[1]
            elif obj.part_sizes:
                kind, at, digests = "COMPOSITE", 0, b""
                for n in obj.part_sizes:
                    digests += crc32c(obj.body[at:at + n]).to_bytes(4, "big")
                    at += n
                checksums["CRC32C"] = f"{_crc32c_b64(digests)}-{len(obj.part_sizes)}"
            elif "-" not in obj.etag:
                checksums["CRC32C"] = _crc32c_b64(obj.body)
            else:  # a multipart ETag with no parts known (an object a test built): no checksum, as a tool
                kind = None  # that sent none leaves it
        return ObjectInfo(key, size, obj.etag, obj.last_modified, dict(obj.metadata), None, checksums, kind, count)

    def list_level(self: _Host, bucket: str, prefix: str = "",
                   delimiter: str = "/") -> Iterator[ObjectInfo | CommonPrefix]:
        """One page: the common prefixes, then the objects, each in UTF-8 byte order."""
        self._check("ListObjectsV2", bucket, prefix)
        objects = self.snapshot(bucket)
        prefixes: set[str] = set()
        direct: list[str] = []
        for key in objects:
            if key.startswith(prefix):
                at = key.find(delimiter, len(prefix)) if delimiter else -1
                if at < 0:
                    direct.append(key)
                else:
                    prefixes.add(key[:at + len(delimiter)])
        yield from (CommonPrefix(p) for p in sorted(prefixes, key=lambda p: p.encode()))
        for key in sorted(direct, key=lambda k: k.encode()):
            obj = objects[key]
            yield ObjectInfo(key, len(obj.body), obj.etag, obj.last_modified)

    def list_buckets(self: _Host) -> list[BucketInfo]:
        """The buckets by name, created "now" (the store keeps no creation time)."""
        with self._lock:
            self.request_log.append(("ListBuckets", ""))
            names = sorted(self.buckets)
        if self.fault is not None and (err := self.fault("ListBuckets", "")) is not None:
            raise err
        return [BucketInfo(name, self._created) for name in names]

    def get_object_stream(self: _Host, bucket: str, key: str) -> _Stream:
        self._check("GetObject", bucket, key)
        obj = self._objects(bucket).get(key)
        if obj is None:
            raise FatalStoreError(f"s3://{bucket}/{key}: NoSuchKey", status=404, code="NoSuchKey")
        return _Stream(io.BytesIO(obj.body), len(obj.body), obj.etag)
