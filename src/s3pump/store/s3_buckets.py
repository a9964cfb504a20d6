"""The S3Store calls on buckets: HeadBucket, CreateBucket, DeleteBucket, the lifecycle configuration, versioning,
and ListObjectVersions with DeleteObjects of versions (``rb``, ``lifecycle``, ``cleanup``). A mixin of
:class:`~s3pump.store.s3.S3Store`: HeadBucket through awscrt, the rest through the store's botocore client,
each retried by the store's policy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import AccessDeniedError, FatalStoreError, StoreError
from .base import ObjectVersion
from .paging import PageGuard
from .s3_host import S3Host

__all__ = ["S3Buckets"]


class S3Buckets:
    """Bucket-level calls (see the module docstring)."""

    def head_bucket(self: S3Host, bucket: str) -> None:
        try:
            self._crt_call("HEAD", bucket, None, "", "HeadBucket", retry=True)
        except FatalStoreError as e:
            # A HEAD response has no body, so a bad signature or unknown access key also reads as
            # 403, and an expired session token as a bare 400. ListObjectsV2 returns the error
            # document with the real code; raise that one.
            if not isinstance(e, AccessDeniedError) and e.code is not None:
                raise
            self._crt_call("GET", bucket, None, "list-type=2&max-keys=1", "ListObjectsV2", retry=True)
            raise

    def create_bucket(self: S3Host, bucket: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1" and not self.settings.endpoint_url:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._call(f"s3://{bucket}", self._boto.create_bucket, **kwargs)
        except StoreError as e:
            if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def delete_bucket(self: S3Host, bucket: str) -> None:
        self._call(f"s3://{bucket}", self._boto.delete_bucket, Bucket=bucket)

    # ------------------------------------------------------------------ bucket configuration (boto3)
    def get_bucket_lifecycle(self: S3Host, bucket: str) -> list[dict[str, Any]]:
        try:
            resp = self._call(f"s3://{bucket}", self._boto.get_bucket_lifecycle_configuration, Bucket=bucket)
        except StoreError as e:
            if e.code == "NoSuchLifecycleConfiguration":
                return []
            raise
        return list(resp.get("Rules", []))

    def put_bucket_lifecycle(self: S3Host, bucket: str, rules: Sequence[dict[str, Any]]) -> None:
        if not rules:
            self._call(f"s3://{bucket}", self._boto.delete_bucket_lifecycle, Bucket=bucket)
            return
        self._call(f"s3://{bucket}", self._boto.put_bucket_lifecycle_configuration, Bucket=bucket,
                   LifecycleConfiguration={"Rules": list(rules)})

    def get_bucket_versioning(self: S3Host, bucket: str) -> str | None:
        resp = self._call(f"s3://{bucket}", self._boto.get_bucket_versioning, Bucket=bucket)
        status = resp.get("Status")
        return str(status) if status else None

    def put_bucket_versioning(self: S3Host, bucket: str, enabled: bool) -> None:
        self._call(f"s3://{bucket}", self._boto.put_bucket_versioning, Bucket=bucket,
                   VersioningConfiguration={"Status": "Enabled" if enabled else "Suspended"})

    def list_object_versions(self: S3Host, bucket: str, prefix: str = "") -> Iterator[ObjectVersion]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        guard = PageGuard(f"s3://{bucket}/{prefix}", "ListObjectVersions", "NextKeyMarker", prefix)
        while True:
            resp = self._call(f"s3://{bucket}/{prefix}", self._boto.list_object_versions, **kwargs)
            first = (resp.get("Versions") or resp.get("DeleteMarkers") or [None])[0]
            markers = guard.next(bool(resp.get("IsTruncated")),  # before the page is handed out (and deleted)
                                 (resp.get("NextKeyMarker") or "", resp.get("NextVersionIdMarker") or ""),
                                 (first["Key"], first.get("VersionId")) if first else None)
            for v in resp.get("Versions", []):
                if guard.keep(v["Key"]):
                    yield ObjectVersion(v["Key"], v.get("VersionId") or "null", bool(v.get("IsLatest")),
                                        v.get("Size", 0), v.get("ETag", "").strip('"'))
            for m in resp.get("DeleteMarkers", []):
                if guard.keep(m["Key"]):
                    yield ObjectVersion(m["Key"], m.get("VersionId") or "null", bool(m.get("IsLatest")),
                                        delete_marker=True)
            if markers is None:
                return
            kwargs["KeyMarker"], kwargs["VersionIdMarker"] = markers  # type: ignore[misc]

    def delete_versions(self: S3Host, bucket: str, versions: Sequence[tuple[str, str]]) -> None:
        self._delete(bucket, [{"Key": k, "VersionId": v} for k, v in versions])
