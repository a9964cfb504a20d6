"""The S3Store calls that read without writing, for ``ls`` and ``verify`` (and sync's compare):
HeadObject (with ``partNumber`` and checksum mode), ListBuckets, a one-level ListObjectsV2 (with a
delimiter) and a streamed GetObject. A mixin of :class:`~s3pump.store.s3.S3Store`.

Every one is idempotent, so each is retried by the store's :attr:`~s3pump.store.s3.S3Store.retry`
(the run's :class:`~s3pump.retry.RetryPolicy`: each retry is a ``RetryScheduled`` event), and its
failures are the store's errors (awscrt's through ``RequestFailures._crt_error``, botocore's through
``s3_failures.boto_error``). HeadObject and the listing go through awscrt, ListBuckets and GetObject
through the store's botocore client.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from ..errors import NetworkError, StoreError
from .base import BucketInfo, CommonPrefix, ObjectInfo
from .paging import PageGuard
from .s3_host import S3Host

__all__ = ["S3Reads"]


class S3Reads:
    """HeadObject, ListBuckets, ListObjectsV2 with a delimiter, GetObject streamed (see the module
    docstring; the contracts are the :class:`~s3pump.store.base.Store` protocol's)."""

    def head_object(self: S3Host, bucket: str, key: str, *, part_number: int | None = None,
                    checksum_mode: bool = False) -> ObjectInfo | None:
        """HeadObject over awscrt (sync's compare sends one per object of the same size), read by
        :func:`~s3pump.store.listing.object_info_from_head`; None for a 404."""
        from .listing import object_info_from_head

        query = f"partNumber={int(part_number)}" if part_number is not None else ""
        headers = [("x-amz-checksum-mode", "ENABLED")] if checksum_mode else []
        try:
            _, answer, _ = self._crt_call("HEAD", bucket, key, query, "HeadObject", headers=headers, retry=True)
        except StoreError as e:
            if e.status == 404:
                return None
            raise
        return object_info_from_head(key, answer)

    def list_level(self: S3Host, bucket: str, prefix: str = "",
                   delimiter: str = "/") -> Iterator[ObjectInfo | CommonPrefix]:
        """ListObjectsV2 with ``delimiter`` over awscrt, 1,000 entries a page, each page checked by a
        :class:`~s3pump.store.paging.PageGuard` before it is handed out."""
        from .listing import parse_common_prefixes, parse_list_page

        what = f"s3://{bucket}/{prefix}"
        guard = PageGuard(what, "ListObjectsV2", "NextContinuationToken", prefix)
        token: str | None = None
        while True:
            query = (f"delimiter={quote(delimiter, safe='')}&encoding-type=url&list-type=2&max-keys=1000"
                     f"&prefix={quote(prefix, safe='')}")
            if token:
                query += f"&continuation-token={quote(token, safe='')}"
            _, _, body = self._crt_call("GET", bucket, None, query, "ListObjectsV2", retry=True)
            objects, truncated, next_token = parse_list_page(body, what=what)
            prefixes = parse_common_prefixes(body)
            # an object is listed once (a common prefix may come again): a page's first key must be new
            token = guard.next(truncated, next_token, objects[0].key if objects else None)  # type: ignore[assignment]
            yield from (CommonPrefix(p) for p in prefixes if guard.keep(p))
            yield from (o for o in objects if guard.keep(o.key))
            if token is None:
                return

    def list_buckets(self: S3Host) -> list[BucketInfo]:
        """ListBuckets through botocore; a ``ContinuationToken`` in an answer asks for the next page
        (AWS pages only when asked to, with ``MaxBuckets``; the token is still honoured)."""
        guard = PageGuard("s3://", "ListBuckets", "ContinuationToken")
        out: list[BucketInfo] = []
        args: dict[str, Any] = {}
        while True:
            page = self._call("s3://", self._boto.list_buckets, **args)
            buckets = page.get("Buckets", [])
            token = page.get("ContinuationToken") or None
            nxt = guard.next(token is not None, token, buckets[0].get("Name") if buckets else None)
            for b in buckets:
                created = b.get("CreationDate")
                out.append(BucketInfo(b["Name"], created.timestamp() if created is not None else None))
            if nxt is None:
                return out
            args["ContinuationToken"] = nxt

    def get_object_stream(self: S3Host, bucket: str, key: str) -> _BotoObjectStream:
        return _BotoObjectStream(self, bucket, key)


class _BotoObjectStream:
    """A GetObject body read through botocore. A read that fails (reset, timeout, a short body)
    reopens the object at the byte reached (``Range: bytes=N-``, ``If-Match`` the first answer's
    ETag), the attempt retried by the store's policy."""

    def __init__(self, store: S3Host, bucket: str, key: str) -> None:
        self._store, self._bucket, self._key = store, bucket, key
        self._what = f"s3://{bucket}/{key}"
        self._body: Any = None
        self.offset_bytes = 0
        self.etag = ""
        self.size_bytes = 0
        store.retry.call(self._open, what=(self._what, None))

    def _open(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key}
        if self.offset_bytes:
            kwargs.update(Range=f"bytes={self.offset_bytes}-", IfMatch=f'"{self.etag}"')
        resp = self._store._call_once(self._what, self._store._boto.get_object, **kwargs)
        if not self.offset_bytes:
            self.etag = str(resp.get("ETag", "")).strip('"')
            self.size_bytes = int(resp["ContentLength"])
        self._body = resp["Body"]

    def read(self, size_bytes: int) -> bytes:
        out = bytearray()
        while len(out) < size_bytes and self.offset_bytes < self.size_bytes:
            want = size_bytes - len(out)
            chunk = self._store.retry.call(functools.partial(self._read_once, want), what=(self._what, None))
            out += chunk
            self.offset_bytes += len(chunk)
        return bytes(out)

    def _read_once(self, size_bytes: int) -> bytes:
        import botocore.exceptions
        import urllib3.exceptions

        if self._body is None:
            self._open()
        try:
            chunk = self._body.read(min(size_bytes, self.size_bytes - self.offset_bytes))
        except (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, OSError) as e:
            self.close()
            raise NetworkError(f"{self._what}: the connection was lost reading the object at byte "
                               f"{self.offset_bytes} ({e})", code="ConnectionLost") from None
        if not chunk:
            self.close()
            raise NetworkError(f"{self._what}: the object's body ended at byte {self.offset_bytes} of "
                               f"{self.size_bytes}", code="ConnectionLost")
        return bytes(chunk)

    def close(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()
