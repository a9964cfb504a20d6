"""The Store protocol: everything s3pump asks of an object store.

Two kinds of operation:

* **Data plane, asynchronous.** :meth:`Store.put_file`, :meth:`Store.put_bytes` and
  :meth:`Store.upload_part` start a request and return at once; ``on_done`` is
  called exactly once, from any thread, with a :class:`PutResult` or a
  :class:`~s3pump.errors.StoreError`. They return a :class:`Request` whose
  ``cancel()`` stops it.
* **Control plane, synchronous.** Multipart create/complete/abort/list, head,
  list, delete, bucket checks. They raise :class:`~s3pump.errors.StoreError`.

Implementations: :class:`s3pump.store.s3.S3Store` (awscrt, and boto3 for rare calls) and
:class:`s3pump.store.memory.MemoryStore` (tests). ``tests/conformance`` runs
the same suite against both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import S3PumpError
from .body import StreamBody

__all__ = [
    "BucketInfo",
    "CommonPrefix",
    "CompletedPart",
    "MultipartUploadInfo",
    "ObjectAttributes",
    "ObjectInfo",
    "ObjectStream",
    "ObjectVersion",
    "PutResult",
    "Request",
    "Store",
]


@dataclass(frozen=True, slots=True)
class ObjectAttributes:
    """Per-object request headers: content type, ACL, SSE, storage class, metadata, and the HTTP
    headers S3 stores and serves back (Cache-Control, Content-Encoding, Content-Disposition,
    Content-Language, Expires) and the tag set (``x-amz-tagging``, URL-query form ``k1=v1&k2=v2``);
    S3 API reference, PutObject and CreateMultipartUpload. Copy with :func:`dataclasses.replace`.

    ``checksum_type`` ``"FULL_OBJECT"`` makes a multipart upload's checksum one over the whole
    object (``x-amz-checksum-type`` at CreateMultipartUpload; the value is sent at completion and
    checked by the server; S3 User Guide, "Checking object integrity": full object checksums
    exist for CRC64NVME, CRC32 and CRC32C)."""

    content_type: str | None = None
    acl: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    storage_class: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    checksum_type: str | None = None
    cache_control: str | None = None
    content_encoding: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    expires: str | None = None
    """An HTTP date (``Wed, 21 Oct 2026 07:28:00 GMT``)."""
    tagging: str | None = None

    @classmethod
    def of(cls, config: Any) -> ObjectAttributes:
        """The attributes a :class:`~s3pump.config.TransferConfig` asks for on every object."""
        return cls(config.content_type, config.acl, config.sse, config.sse_kms_key_id, config.storage_class,
                   config.metadata, cache_control=config.cache_control, content_encoding=config.content_encoding,
                   content_disposition=config.content_disposition, content_language=config.content_language,
                   expires=config.expires, tagging=config.tagging)

    def headers(self) -> list[tuple[str, str]]:
        """The raw S3 headers (``x-amz-acl``, ``x-amz-server-side-encryption``, ...)."""
        out = [(f"x-amz-meta-{k.lower()}", v) for k, v in self.metadata]
        if self._plain:  # the common case (no ACL, SSE, storage class or HTTP headers): per object, so short
            return out
        fixed = [(name, value) for name, value in (
            ("x-amz-acl", self.acl), ("x-amz-server-side-encryption", self.sse),
            ("x-amz-server-side-encryption-aws-kms-key-id", self.sse_kms_key_id),
            ("x-amz-storage-class", self.storage_class)) if value]
        return fixed + out + [(name, value) for name, value in (
            ("Cache-Control", self.cache_control), ("Content-Encoding", self.content_encoding),
            ("Content-Disposition", self.content_disposition), ("Content-Language", self.content_language),
            ("Expires", self.expires), ("x-amz-tagging", self.tagging)) if value]

    @property
    def _plain(self) -> bool:
        """No header but the metadata's."""
        return not (self.acl or self.sse or self.sse_kms_key_id or self.storage_class or self.cache_control
                    or self.content_encoding or self.content_disposition or self.content_language or self.expires
                    or self.tagging)

    def with_metadata(self, extra: dict[str, str]) -> ObjectAttributes:
        """A copy with ``extra`` user metadata added (``extra`` wins on a clash)."""
        merged = dict(self.metadata)
        merged.update(extra)
        return dataclasses.replace(self, metadata=tuple(merged.items()))

    def with_file_mtime(self, mtime_ns: int) -> ObjectAttributes:
        """A copy with the source file's modification time as ``x-amz-meta-mtime``, in rclone's format
        (Unix seconds with nine decimals, ``1600000000.123456789``; rclone's S3 backend, "mtime"
        metadata), which ``rclone copy``/``sync`` back to disk restore; unchanged when ``--metadata``
        already names ``mtime``."""
        metadata = self.metadata
        if metadata and any(k.lower() == "mtime" for k, _ in metadata):
            return self
        seconds, nanos = divmod(mtime_ns, 1_000_000_000)
        # once per uploaded file: the constructor, positionally (dataclasses.replace costs about 4 x as much)
        return ObjectAttributes(self.content_type, self.acl, self.sse, self.sse_kms_key_id, self.storage_class,
                                (*metadata, ("mtime", f"{seconds}.{nanos:09d}")), self.checksum_type,
                                self.cache_control, self.content_encoding, self.content_disposition,
                                self.content_language, self.expires, self.tagging)

    def with_file_owner(self, mode: int, uid: int, gid: int) -> ObjectAttributes:
        """A copy with a file's ``st_mode``, owner and group as rclone's local backend metadata names
        them (``mode``: octal, file type bits included, ``100644``; ``uid``, ``gid``: decimal; rclone's
        ``backend/local/metadata*.go``), which ``rclone copy --metadata`` sets on the files it writes;
        a name ``--metadata`` already gives keeps its value."""
        given = {k.lower() for k, _ in self.metadata}
        extra = [(k, v) for k, v in (("mode", f"{mode:o}"), ("uid", str(uid)), ("gid", str(gid))) if k not in given]
        return dataclasses.replace(self, metadata=(*self.metadata, *extra))


@dataclass(frozen=True, slots=True)
class PutResult:
    """Outcome of a PUT, UploadPart or CompleteMultipartUpload.

    ``etag`` is unquoted hex (``<md5>`` or ``<md5-of-md5s>-N``); ``checksum`` is the
    base64 ``x-amz-checksum-*`` value the server returned, if any.
    """

    etag: str
    checksum: str | None = None
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class CompletedPart:
    """One uploaded part: S3 allows part numbers 1 to 10,000 (UploadPart)."""

    part_number: int
    etag: str
    size_bytes: int = 0
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What ListObjectsV2/HeadObject tell about an object. ``last_modified`` is epoch seconds;
    ``etag`` unquoted. A listing fills the first four fields only."""

    key: str
    size_bytes: int
    etag: str
    last_modified: float
    metadata: dict[str, str] = field(default_factory=dict)
    sse: str | None = None
    #: the checksums the server showed, by algorithm (``{"CRC32C": base64}``: CRC32, CRC32C, CRC64NVME,
    #: SHA1, SHA256), asked for with ``checksum_mode``; a COMPOSITE one ends in ``-<parts>``
    checksums: dict[str, str] = field(default_factory=dict)
    #: ``x-amz-checksum-type`` of those: ``FULL_OBJECT`` or ``COMPOSITE`` (a checksum of the parts'
    #: checksums); None when the server did not say
    checksum_type: str | None = None
    #: ``x-amz-mp-parts-count``: the object's number of parts, sent only for a HeadObject with
    #: ``part_number`` of a multipart object (None otherwise, and from a server that ignores it)
    parts_count: int | None = None


@dataclass(frozen=True, slots=True)
class CommonPrefix:
    """A "directory" of a delimiter listing (ListObjectsV2 ``CommonPrefixes``): the keys under the
    prefix asked for that hold the delimiter after it, rolled up to ``prefix``, which ends with the
    delimiter (``logs/2026/`` listed under ``logs/``)."""

    prefix: str


@dataclass(frozen=True, slots=True)
class BucketInfo:
    """One bucket of ListBuckets: its name and CreationDate (epoch seconds; None when not given)."""

    name: str
    created: float | None = None


class ObjectStream(Protocol):
    """A GetObject body being read (:meth:`Store.get_object_stream`). ``size_bytes`` and ``etag``
    (unquoted) are the object's, from the answer's headers."""

    size_bytes: int
    etag: str

    def read(self, size_bytes: int) -> bytes:
        """The next ``size_bytes`` bytes; fewer only at the end of the object, ``b""`` after it.

        Raises:
            StoreError: the body could not be read (a retryable failure is retried first; an object
                replaced meanwhile is 412 PreconditionFailed).
        """
        ...

    def close(self) -> None:
        """Release the connection (the rest of the body is not read)."""
        ...


@dataclass(frozen=True, slots=True)
class MultipartUploadInfo:
    """An in-progress multipart upload (ListMultipartUploads). ``initiated`` is epoch seconds."""

    key: str
    upload_id: str
    initiated: float


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One entry of ListObjectVersions: an object version or a delete marker. ``version_id`` is
    ``"null"`` for a version written while versioning was off or suspended (S3 API reference)."""

    key: str
    version_id: str
    is_latest: bool
    size_bytes: int = 0
    etag: str = ""
    delete_marker: bool = False


class Request(Protocol):
    """A started data-plane request."""

    def cancel(self) -> None:
        """Stop the request; ``on_done`` still fires (with an error)."""


#: ``on_done(result_or_error)``: called exactly once, from any thread.
DoneCallback = Callable[[PutResult | S3PumpError], None]


class Store(Protocol):
    """An object store. See the module docstring for the threading contract."""

    # ---- data plane (asynchronous) ----
    def put_file(
        self, bucket: str, key: str, path: str, size_bytes: int, attrs: ObjectAttributes,
        on_done: DoneCallback,
    ) -> Request:
        """PutObject with the body read from ``path`` (``size_bytes`` long) by the store itself."""
        ...

    def put_bytes(
        self, bucket: str, key: str, body: bytes | memoryview | StreamBody, attrs: ObjectAttributes,
        on_done: DoneCallback,
    ) -> Request:
        """PutObject with an in-memory body."""
        ...

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: bytes | memoryview | StreamBody,
        on_done: DoneCallback,
    ) -> Request:
        """UploadPart: part numbers 1..10,000, 5 MiB..5 GiB except the last (S3 API reference).
        A :class:`~s3pump.store.body.StreamBody` (a file range, a throttled body) is read by the
        store itself as it sends."""
        ...

    # ---- control plane (synchronous, raise StoreError) ----
    def create_multipart_upload(self, bucket: str, key: str, attrs: ObjectAttributes) -> str:
        """CreateMultipartUpload; returns the upload ID."""
        ...

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[CompletedPart],
        full_object_checksum: tuple[str, str] | None = None,
    ) -> PutResult:
        """CompleteMultipartUpload with ``parts`` in part-number order. ``full_object_checksum``
        (algorithm, base64 value) is the whole object's checksum for an upload created with
        ``checksum_type="FULL_OBJECT"``; a server that checks it refuses a mismatch (BadDigest,
        fatal) and the upload stays open (S3 API reference, CompleteMultipartUpload)."""
        ...

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        """AbortMultipartUpload; an unknown upload ID is not an error.

        One request: a store never retries an abort itself. The caller retries it, once, with its
        policy: a run's aborts go through :meth:`~s3pump.engine.uploads.OpenUploads.abort`
        (``RetryPolicy.call``, so each retry is budgeted and told as a ``RetryScheduled``), and
        ``s3pump cleanup``'s through the run's policy; the other callers (the sweeps of dead runs'
        journals, ``rb --force``) send it once, a failure staying recorded for the next sweep (or
        failing the command). Retrying in both layers made one abort up to ``max_attempts`` squared
        requests."""
        ...

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[CompletedPart]:
        """ListParts, all pages."""
        ...

    def list_multipart_uploads(self, bucket: str, prefix: str = "") -> Iterator[MultipartUploadInfo]:
        """ListMultipartUploads under ``prefix``, all pages."""
        ...

    def head_object(self, bucket: str, key: str, *, part_number: int | None = None,
                    checksum_mode: bool = False) -> ObjectInfo | None:
        """HeadObject (S3 API reference, HeadObject); None if there is no such key.

        ``checksum_mode``: ask for the object's checksums (``x-amz-checksum-mode: ENABLED``;
        :attr:`ObjectInfo.checksums`, :attr:`ObjectInfo.checksum_type`). ``part_number`` (1 to
        10,000): ask about that part of a multipart object (``?partNumber=N``): ``size_bytes`` is then
        the part's length and :attr:`ObjectInfo.parts_count` the object's number of parts; part 1 of
        a single-part object is the whole object, without a parts count.

        Raises:
            StoreError: the request failed (a part number past the object's parts: 416, or 400
                from some servers); retryable failures are retried by the store's policy first.
        """
        ...

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2 under ``prefix``, streamed page by page.

        AWS S3 lists in UTF-8 binary key order, but compatible stores differ (SeaweedFS
        lists directory by directory: ``a/b`` before ``a-c``), so callers must not rely
        on the order; sync sorts both sides itself.
        """
        ...

    def list_level(self, bucket: str, prefix: str = "", delimiter: str = "/") -> Iterator[ObjectInfo | CommonPrefix]:
        """One level under ``prefix``: ListObjectsV2 with ``delimiter`` (S3 API reference,
        ListObjectsV2), all pages, streamed. Each page gives its :class:`CommonPrefix` entries, then
        its objects (only the first four fields of :class:`ObjectInfo`); as for :meth:`list_objects`,
        the order across pages is the server's.

        Raises:
            BrokenListingError: a page truncated without a continuation token, or a token (or a
                page's first key) seen before (:mod:`s3pump.store.paging`); keys and prefixes
                outside ``prefix`` (a server that ignores it) are dropped.
            NoSuchBucketError, StoreError: the request failed (retryable failures retried first).
        """
        ...

    def list_buckets(self) -> list[BucketInfo]:
        """ListBuckets: the buckets the credentials own, all pages (S3 API reference, ListBuckets).

        Raises:
            CredentialsError, AccessDeniedError, StoreError: the request failed (retryable failures
                retried first).
        """
        ...

    def get_object(self, bucket: str, key: str) -> bytes:
        """GetObject, whole body (for verification and small state objects)."""
        ...

    def get_object_stream(self, bucket: str, key: str) -> ObjectStream:
        """GetObject, the body read as the caller asks (``verify --download``: any size, little
        memory). The request is sent now; a read that fails (a reset, a timeout) is retried from
        the byte reached (``Range``, with ``If-Match`` the first answer's ETag, so the bytes are
        all of one object).

        Raises:
            StoreError: the request failed (404 NoSuchKey: no such object), after the store's retries.
        """
        ...

    def delete_objects(self, bucket: str, keys: Sequence[str]) -> None:
        """DeleteObjects in batches of at most 1,000 keys."""
        ...

    def head_bucket(self, bucket: str) -> None:
        """HeadBucket. Raises NoSuchBucketError, CredentialsError or AccessDeniedError."""
        ...

    def create_bucket(self, bucket: str) -> None:
        """CreateBucket; an existing bucket owned by the caller is not an error."""
        ...

    def delete_bucket(self, bucket: str) -> None:
        """DeleteBucket. Raises FatalStoreError ``BucketNotEmpty`` while objects, versions or
        multipart uploads remain; NoSuchBucketError if there is no such bucket."""
        ...

    # ---- bucket configuration (control plane) ----
    def get_bucket_lifecycle(self, bucket: str) -> list[dict[str, Any]]:
        """GetBucketLifecycleConfiguration: the rules in boto3's shape (``ID``, ``Status``,
        ``Filter``, ``Expiration``, ``Transitions``, ...); ``[]`` when the bucket has none
        (``NoSuchLifecycleConfiguration``)."""
        ...

    def put_bucket_lifecycle(self, bucket: str, rules: Sequence[dict[str, Any]]) -> None:
        """PutBucketLifecycleConfiguration with exactly ``rules``: it REPLACES the bucket's whole
        configuration (S3 has no conditional write for it). ``[]`` is DeleteBucketLifecycle, since
        S3 refuses a configuration without rules."""
        ...

    def get_bucket_versioning(self, bucket: str) -> str | None:
        """GetBucketVersioning: ``"Enabled"``, ``"Suspended"``, or None if never enabled."""
        ...

    def put_bucket_versioning(self, bucket: str, enabled: bool) -> None:
        """PutBucketVersioning: ``Enabled`` or ``Suspended`` (a bucket cannot go back to unversioned)."""
        ...

    def list_object_versions(self, bucket: str, prefix: str = "") -> Iterator[ObjectVersion]:
        """ListObjectVersions under ``prefix``, all pages: versions and delete markers."""
        ...

    def delete_versions(self, bucket: str, versions: Sequence[tuple[str, str]]) -> None:
        """DeleteObjects of exact ``(key, version_id)`` pairs, in batches of at most 1,000
        (deletes those versions for good; no delete marker)."""
        ...

    def replace_metadata(
        self, bucket: str, key: str, attrs: ObjectAttributes, *, size_bytes: int, etag: str,
        version_id: str | None = None,
    ) -> PutResult:
        """Give an existing object new user metadata (and re-send ``attrs``' content type, ACL,
        SSE and storage class, which a copy does not keep). Returns the final object's ETag and
        version ID.

        S3 fixes metadata when an object is written, so this is CopyObject onto itself with
        ``MetadataDirective=REPLACE`` and ``CopySourceIfMatch=etag`` (the copy fails rather than
        touch an object someone replaced meanwhile); above 5 GiB, the CopyObject limit, a multipart
        copy with UploadPartCopy, aborted on failure (S3 API reference: CopyObject, UploadPartCopy).
        In a versioned bucket the copy is a new version; the one copied stays as noncurrent.
        """
        ...

    def upload_part_copy(
        self, bucket: str, key: str, upload_id: str, part_number: int, start: int, end: int, *, etag: str,
        version_id: str | None = None,
    ) -> CompletedPart:
        """UploadPartCopy of bytes ``[start, end)`` of the object ``key`` itself (only while its ETag is
        ``etag``) as part ``part_number`` of ``upload_id``: parts of 5 MiB to 5 GiB (S3 API reference,
        UploadPartCopy). Raises StoreError (412 when the ETag no longer matches)."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...
