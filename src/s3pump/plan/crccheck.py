"""An object's stored full-object checksum, as ``verify`` and ``sync --checksum`` compare a local file with it.

S3 keeps the checksum an object was uploaded with and shows it to HeadObject with
``x-amz-checksum-mode: ENABLED`` (S3 API reference, HeadObject, ``ChecksumMode``): for a single PUT
the checksum of the body, for a multipart upload either a FULL_OBJECT checksum (the CRC of the
whole object; ``s3pump stream`` sends one, CRC32C by default) or a COMPOSITE one (the checksum of
the parts' checksums, written ``<base64>-N``; S3 User Guide, "Checking object integrity"). A
FULL_OBJECT CRC32C/CRC32/CRC64NVME is computed over a local file in one pass (awscrt, several GB/s,
no part size needed), so it proves a multipart object's bytes where its ETag cannot (a part size
no candidate guesses, SSE-KMS) and without its ``md5`` metadata. A COMPOSITE value needs the
part sizes and is not compared here (the ETag and ``md5`` rules decide instead).

On AWS, reading the checksum of an SSE-KMS object needs ``kms:Decrypt``; a HeadObject refused
(403) with checksum mode is sent once more without it, so the ``md5`` metadata still decides.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import StoreError
from ..store.base import ObjectInfo, Store

__all__ = ["CRC_NAMES", "HeadMemo", "full_object_crc", "head_with_checksums"]

#: the full-object checksums compared, in this order (:attr:`ObjectInfo.checksums`' names)
CRC_NAMES = ("CRC64NVME", "CRC32C", "CRC32")


def head_with_checksums(store: Store, bucket: str, key: str) -> ObjectInfo | None:
    """HeadObject with checksum mode (the object's checksums and metadata in one request); None for a
    404. A 403 is retried once without checksum mode (see the module docstring).

    Raises:
        StoreError: HeadObject failed (SSE-C objects need their key, a server error past retries).
    """
    try:
        return store.head_object(bucket, key, checksum_mode=True)
    except StoreError as e:
        if e.status != 403:
            raise
    return store.head_object(bucket, key)


def full_object_crc(info: ObjectInfo | None) -> tuple[str, str] | None:
    """``(algorithm, base64)`` of the object's stored full-object CRC (CRC64NVME, CRC32C or CRC32,
    the first present), or None: no checksum shown, only a COMPOSITE one (``-N``), or SHA1/SHA256."""
    if info is None or info.checksum_type not in (None, "FULL_OBJECT"):
        return None
    for name in CRC_NAMES:
        value = info.checksums.get(name)
        if value and "-" not in value:
            return name, value
    return None


class HeadMemo:
    """HeadObject at most once per compared object; an error is raised again on every call."""

    def __init__(self, fn: Callable[[], ObjectInfo | None]) -> None:
        self._fn = fn
        self._done = False
        self._value: ObjectInfo | None = None
        self._error: StoreError | None = None

    def __call__(self) -> ObjectInfo | None:
        if not self._done:
            self._done = True
            try:
                self._value = self._fn()
            except StoreError as e:
                self._error = e
        if self._error is not None:
            raise self._error
        return self._value

    def crc(self) -> tuple[str, str] | None:
        """:func:`full_object_crc` of the answer (None also when HeadObject failed)."""
        try:
            return full_object_crc(self())
        except StoreError:
            return None
