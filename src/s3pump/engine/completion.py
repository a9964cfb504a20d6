"""CompleteMultipartUpload, retried, and what to believe when its answer was lost.

A Complete may take effect on the server while its answer is lost (a reset, a timeout, a 5xx).
Its retry then gets ``404 NoSuchUpload``: AWS's answer for an upload that no longer exists,
because it was completed (S3 API reference, CompleteMultipartUpload: "a retry ... may return
NoSuchUpload"). That answer alone does not say whether the object is ours: after a lost answer the
key is HEADed, and the upload counts as completed when the object's size is the parts' sum, its
ETag is the multipart ETag the parts imply (``md5(concat(part MD5s))-N``) and, where a full-object
checksum was sent and the server shows one, that checksum. Otherwise the NoSuchUpload stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..errors import BadDigestError, FatalStoreError, NoSuchUploadError, S3PumpError
from ..retry import RetryPolicy
from ..store.base import CompletedPart, PutResult, Store
from .multipart import multipart_etag

__all__ = ["complete_upload", "complete_with_retries", "expected_etag", "verify_completed"]

_log = logging.getLogger("s3pump.engine")


def expected_etag(parts: Sequence[CompletedPart]) -> str | None:
    """The multipart ETag ``parts`` imply, or None when a part's ETag is not an MD5 (SSE-KMS, opaque)."""
    digests = []
    for p in parts:
        etag = p.etag.strip('"').lower()
        if len(etag) != 32:
            return None
        try:
            digests.append(bytes.fromhex(etag))
        except ValueError:
            return None
    return multipart_etag(digests)


def verify_completed(store: Store, bucket: str, key: str, parts: Sequence[CompletedPart],
                     full_object_checksum: tuple[str, str] | None) -> PutResult | None:
    """After a lost Complete answer and a NoSuchUpload: the object at ``key`` if it is the one the
    parts make (size, ETag and, where both are known, the full-object checksum), else None."""
    want = expected_etag(parts)
    if want is None:
        return None
    info = store.head_object(bucket, key, checksum_mode=full_object_checksum is not None)
    if info is None:
        return None
    size = sum(p.size_bytes for p in parts)
    if info.etag.strip('"').lower() != want or info.size_bytes != size:
        _log.info("s3://%s/%s: NoSuchUpload after a lost answer, and the object is not ours (ETag %s, %d bytes; "
                  "the parts make %s, %d bytes)", bucket, key, info.etag, info.size_bytes, want, size)
        return None
    checksum = None
    if full_object_checksum is not None:
        algorithm, value = full_object_checksum
        shown = info.checksums.get(algorithm.upper())
        if shown is not None and shown != value:
            _log.info("s3://%s/%s: the object's %s is %s, the source's %s", bucket, key, algorithm, shown, value)
            return None
        checksum = shown
    _log.info("s3://%s/%s: the lost CompleteMultipartUpload took effect (ETag %s)", bucket, key, want)
    return PutResult(info.etag.strip('"'), checksum, None)


def complete_with_retries(policy: RetryPolicy, complete_once: Callable[[], PutResult], store: Store, bucket: str,
                          key: str, parts: Sequence[CompletedPart],
                          full_object_checksum: tuple[str, str] | None) -> PutResult:
    """``complete_once()`` retried by ``policy``; a NoSuchUpload after an attempt whose answer was
    lost (a retryable error) is checked by :func:`verify_completed`.

    Raises:
        S3PumpError: the last error, once it is final.
    """
    lost: list[S3PumpError] = []

    def once() -> PutResult:
        try:
            return complete_once()
        except NoSuchUploadError:
            if not lost:
                raise
            verified = verify_completed(store, bucket, key, parts, full_object_checksum)
            if verified is None:
                raise
            return verified
        except S3PumpError as e:
            if e.retryable:
                lost.append(e)
            raise

    return policy.call(once, what=(key, None))


def complete_upload(policy: RetryPolicy, store: Store, bucket: str, key: str, upload_id: str,
                    parts: Sequence[CompletedPart], full_object_checksum: tuple[str, str] | None) -> PutResult:
    """CompleteMultipartUpload of ``upload_id`` with ``parts``, retried (:func:`complete_with_retries`).
    A BadDigest (the whole object's checksum is not the source's) is fatal: the parts are stored, and
    sending the same completion again cannot fix that (the engine aborts the upload).

    Raises:
        FatalStoreError: BadDigest. S3PumpError: the last error, once it is final.
    """
    def once() -> PutResult:
        try:
            return store.complete_multipart_upload(bucket, key, upload_id, list(parts), full_object_checksum)
        except BadDigestError as e:
            algorithm = full_object_checksum[0] if full_object_checksum else ""
            raise FatalStoreError(f"{e}; the object's {algorithm} checksum is not the source's: not stored",
                                  status=e.status, code=e.code) from None

    return complete_with_retries(policy, once, store, bucket, key, parts, full_object_checksum)
