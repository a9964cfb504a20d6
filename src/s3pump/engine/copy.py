"""Replacing an object's metadata by copying it onto itself, at any size.

S3 fixes an object's metadata when the upload starts, so a stream's digests (known only at its
end) are stored afterwards by copying the object onto itself with new metadata. CopyObject copies
at most 5 GiB (S3 API reference, CopyObject); a larger object is copied in parts with
UploadPartCopy (parts of 5 MiB to 5 GiB, at most 10,000) into a new multipart upload, registered
in the run's :class:`~s3pump.engine.uploads.OpenUploads` like every other.
"""

from __future__ import annotations

from ..store.base import CompletedPart, ObjectAttributes, PutResult, Store
from ..units import GIB, MIB
from .completion import complete_with_retries
from .uploads import OpenUploads

__all__ = ["COPY_OBJECT_MAX_BYTES", "replace_metadata"]

#: CopyObject's limit (S3 API reference, CopyObject).
COPY_OBJECT_MAX_BYTES = 5 * GIB
_MIN_COPY_PART_BYTES = 512 * MIB


def replace_metadata(store: Store, uploads: OpenUploads, key: str, attrs: ObjectAttributes, *, size_bytes: int,
                     etag: str, version_id: str | None = None) -> PutResult:
    """Copy ``s3://uploads.bucket/key`` (``size_bytes``, while its ETag is ``etag``) onto itself with
    ``attrs``; returns the new object's ETag and version ID.

    Raises:
        StoreError: the copy failed (412 if the object changed meanwhile); a multipart copy's
            upload is aborted through ``uploads``.
    """
    bucket = uploads.bucket
    if size_bytes <= COPY_OBJECT_MAX_BYTES:
        return store.replace_metadata(bucket, key, attrs, size_bytes=size_bytes, etag=etag, version_id=version_id)
    upload_id = uploads.create(key, attrs)
    try:
        part_size = max(_MIN_COPY_PART_BYTES, -(-size_bytes // 10_000))
        parts: list[CompletedPart] = []
        for number, start in enumerate(range(0, size_bytes, part_size), 1):
            end = min(start + part_size, size_bytes)
            parts.append(store.upload_part_copy(bucket, key, upload_id, number, start, end, etag=etag,
                                                version_id=version_id))
        result = complete_with_retries(
            uploads.policy, lambda: store.complete_multipart_upload(bucket, key, upload_id, parts), store, bucket,
            key, parts, None)
    except BaseException:
        uploads.abort(key, upload_id)
        raise
    uploads.completed(upload_id)
    return result
