"""``s3pump mb``, ``rb`` and ``versioning``: the bucket verbs around an upload, as the aws cli has them."""

from __future__ import annotations

from ..errors import FatalStoreError, StoreError
from ..journal_aborts import abort_upload
from ..retry import RetryPolicy
from ..store.base import MultipartUploadInfo, Store

__all__ = ["make_bucket", "remove_bucket", "set_versioning"]


def make_bucket(store: Store, bucket: str, *, versioning: bool = False) -> None:
    """CreateBucket (in the store's region), then PutBucketVersioning ``Enabled`` with ``versioning``.

    Raises:
        FatalStoreError: ``BucketAlreadyExists`` (also when the caller owns it: as ``aws s3 mb``).
        StoreError: a request failed.
    """
    try:
        store.head_bucket(bucket)
    except StoreError as e:
        if e.status != 404 and e.code not in ("NoSuchBucket", "NotFound"):
            raise
    else:
        raise FatalStoreError(f"s3://{bucket}: BucketAlreadyExists; the bucket exists already", status=409,
                              code="BucketAlreadyExists")
    store.create_bucket(bucket)
    if versioning:
        store.put_bucket_versioning(bucket, True)


def remove_bucket(store: Store, bucket: str, *, force: bool = False, policy: RetryPolicy | None = None) -> int:
    """DeleteBucket. With ``force``, first abort its multipart uploads and delete every object,
    every object version and delete marker (all of them: the bucket is going). Returns how many
    objects and versions were deleted. Each abort is retried by ``policy`` (the run's; the store
    sends one request).

    Raises:
        FatalStoreError: ``BucketNotEmpty`` without ``force``; NoSuchBucketError.
    """
    deleted = 0
    if not force:
        _refuse_if_not_empty(store, bucket)
    if force:
        for u in _multipart_uploads(store, bucket):
            abort_upload(store, policy, bucket, u.key, u.upload_id)
        keys = [o.key for o in store.list_objects(bucket)]
        store.delete_objects(bucket, keys)
        deleted += len(keys)
        if store.get_bucket_versioning(bucket) is not None:
            versions = [(v.key, v.version_id) for v in store.list_object_versions(bucket)]
            store.delete_versions(bucket, versions)
            deleted += len(versions)
    try:
        store.delete_bucket(bucket)
    except StoreError as e:
        if e.code == "BucketNotEmpty" and not force:
            raise FatalStoreError(f"{e}; delete its objects first, or use --force (deletes every object and "
                                  "version in it)", status=e.status, code=e.code) from None
        raise
    return deleted


def _refuse_if_not_empty(store: Store, bucket: str) -> None:
    """Some servers delete a non-empty bucket with everything in it (SeaweedFS by default:
    ``-s3.allowDeleteBucketNotEmpty``); S3 refuses with BucketNotEmpty. Refuse it here as S3 does."""
    empty = (next(iter(store.list_objects(bucket)), None) is None
             and next(iter(_multipart_uploads(store, bucket)), None) is None
             and (store.get_bucket_versioning(bucket) is None
                  or next(iter(store.list_object_versions(bucket)), None) is None))
    if not empty:
        raise FatalStoreError(f"s3://{bucket}: BucketNotEmpty; delete its objects first, or use --force "
                              "(deletes every object and version in it)", status=409, code="BucketNotEmpty")


def set_versioning(store: Store, bucket: str, enable: bool | None) -> str | None:
    """With ``enable`` True/False, PutBucketVersioning ``Enabled``/``Suspended``; then the status
    (GetBucketVersioning: ``"Enabled"``, ``"Suspended"``, or None when never enabled)."""
    if enable is not None:
        store.put_bucket_versioning(bucket, enable)
    return store.get_bucket_versioning(bucket)


#: The answers of a server that has no ListMultipartUploads (S3 API reference, "Error responses").
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "MethodNotAllowed"})


def _multipart_uploads(store: Store, bucket: str) -> list[MultipartUploadInfo]:
    """The bucket's multipart uploads; none when the server has no ListMultipartUploads (501
    NotImplemented, 405 MethodNotAllowed: small S3 servers): ``aws s3 rb`` never asks, and
    DeleteBucket itself refuses a bucket that still holds uploads."""
    try:
        return list(store.list_multipart_uploads(bucket))
    except StoreError as e:
        if e.status in (501, 405) or e.code in _NOT_IMPLEMENTED:
            return []
        raise
