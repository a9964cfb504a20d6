"""The S3Store calls of multipart uploads and server-side copies: CreateMultipartUpload, CompleteMultipartUpload,
AbortMultipartUpload, ListParts, ListMultipartUploads, UploadPartCopy, and CopyObject onto itself (new metadata).
A mixin of :class:`~s3pump.store.s3.S3Store`.

Create, complete, abort and the copies go through awscrt (:meth:`~s3pump.store.s3_crt.CrtRequests._crt_call`),
so an upload or a stream never loads boto3; the listings through the store's botocore client. Up to 10,000
parts of 5 MiB to 5 GiB each (the last may be smaller); CopyObject copies at most 5 GiB (S3 API reference,
UploadPart, CopyObject).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from ..errors import StoreError, UsageError, classify_store_error
from .base import CompletedPart, MultipartUploadInfo, ObjectAttributes, PutResult
from .paging import PageGuard
from .s3_crt import NO_SPLIT_BYTES
from .s3_failures import header
from .s3_host import S3Host

__all__ = ["S3Multipart"]

_UPLOAD_ID_RE = re.compile(rb"<UploadId>([^<]+)</UploadId>")
_ETAG_RE = re.compile(rb"<ETag>([^<]+)</ETag>")


def etag_in(body: bytes) -> str:
    """The ETag in an XML answer (CompleteMultipartUpload, CopyObject, UploadPartCopy), unquoted."""
    m = _ETAG_RE.search(body)
    return html.unescape(m.group(1).decode()).strip('"') if m else ""


def checksum_re(algorithm: str) -> re.Pattern[bytes]:
    """The ``<ChecksumCRC32C>``-style element of an XML answer."""
    return re.compile(rb"<Checksum" + algorithm.encode() + rb">([^<]+)</Checksum")


class S3Multipart:
    """Multipart uploads and server-side copies (see the module docstring)."""

    def create_multipart_upload(self: S3Host, bucket: str, key: str, attrs: ObjectAttributes) -> str:
        headers = self._new_object_headers(attrs)
        _, _, body = self._crt_call("POST", bucket, key, "uploads", "CreateMultipartUpload", headers=headers)
        m = _UPLOAD_ID_RE.search(body)
        if m is None:
            raise classify_store_error(200, "InternalError", "no UploadId in the answer", what=f"s3://{bucket}/{key}")
        return m.group(1).decode()

    def complete_multipart_upload(
        self: S3Host, bucket: str, key: str, upload_id: str, parts: Sequence[CompletedPart],
        full_object_checksum: tuple[str, str] | None = None,
    ) -> PutResult:
        field = f"Checksum{self._checksum_name}" if self._checksum_name else None
        full: list[tuple[str, str]] = []
        if full_object_checksum is not None:
            algorithm, value = full_object_checksum
            full = [(f"x-amz-checksum-{algorithm.lower()}", value), ("x-amz-checksum-type", "FULL_OBJECT")]
        xml = ['<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
        for p in parts:
            xml.append(f"<Part><PartNumber>{p.part_number}</PartNumber><ETag>&quot;{p.etag}&quot;</ETag>")
            if field and p.checksum:
                xml.append(f"<{field}>{p.checksum}</{field}>")
            xml.append("</Part>")
        xml.append("</CompleteMultipartUpload>")
        _, headers, body = self._crt_call("POST", bucket, key, f"uploadId={quote(upload_id, safe='')}",
                                          "CompleteMultipartUpload", body="".join(xml).encode(),
                                          headers=[("Content-Type", "application/xml"), *full])
        return PutResult(etag_in(body), None, header(headers, "x-amz-version-id"))

    def abort_multipart_upload(self: S3Host, bucket: str, key: str, upload_id: str) -> None:
        try:  # one request, not retried here: the caller retries an abort (Store.abort_multipart_upload)
            self._crt_call("DELETE", bucket, key, f"uploadId={quote(upload_id, safe='')}", "AbortMultipartUpload")
        except StoreError as e:
            if e.code != "NoSuchUpload":
                raise

    def list_parts(self: S3Host, bucket: str, key: str, upload_id: str) -> list[CompletedPart]:
        out: list[CompletedPart] = []
        field = f"Checksum{self._checksum_name}" if self._checksum_name else None
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
        guard = PageGuard(f"s3://{bucket}/{key} (upload {upload_id})", "ListParts", "NextPartNumberMarker")
        while True:
            resp = self._call(f"s3://{bucket}/{key}", self._boto.list_parts, **kwargs)
            for p in resp.get("Parts", []):
                out.append(CompletedPart(
                    p["PartNumber"], p["ETag"].strip('"'), p.get("Size", 0), p.get(field) if field else None,
                ))
            parts = resp.get("Parts", [])
            marker = guard.next(bool(resp.get("IsTruncated")), resp.get("NextPartNumberMarker") or None,
                                parts[0]["PartNumber"] if parts else None)
            if marker is None:
                return out
            kwargs["PartNumberMarker"] = marker

    def list_multipart_uploads(self: S3Host, bucket: str, prefix: str = "") -> Iterator[MultipartUploadInfo]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        guard = PageGuard(f"s3://{bucket}/{prefix}", "ListMultipartUploads", "NextKeyMarker", prefix)
        while True:
            resp = self._call(f"s3://{bucket}/{prefix}", self._boto.list_multipart_uploads, **kwargs)
            uploads = resp.get("Uploads", [])
            markers = guard.next(bool(resp.get("IsTruncated")),  # before the page is handed out (and aborted)
                                 (resp.get("NextKeyMarker") or "", resp.get("NextUploadIdMarker") or ""),
                                 (uploads[0]["Key"], uploads[0]["UploadId"]) if uploads else None)
            for u in uploads:
                if guard.keep(u["Key"]):  # a server that ignores Prefix lists every upload of the bucket
                    yield MultipartUploadInfo(u["Key"], u["UploadId"], u["Initiated"].timestamp())
            if markers is None:
                return
            kwargs["KeyMarker"], kwargs["UploadIdMarker"] = markers  # type: ignore[misc]

    def replace_metadata(
        self: S3Host, bucket: str, key: str, attrs: ObjectAttributes, *, size_bytes: int, etag: str,
        version_id: str | None = None,
    ) -> PutResult:
        # CopyObject onto itself, through awscrt, so a stream never loads boto3. Objects over 5 GiB
        # are copied in parts by s3pump.engine.copy (upload_part_copy).
        if size_bytes > NO_SPLIT_BYTES:
            raise UsageError(f"s3://{bucket}/{key}: CopyObject copies at most 5 GiB; copy in parts")
        _, headers, body = self._crt_call(
            "PUT", bucket, key, "", "CopyObject", retry=True,
            headers=[*_copy_source(bucket, key, etag, version_id), ("x-amz-metadata-directive", "REPLACE"),
                     *self._new_object_headers(attrs)])
        return PutResult(etag_in(body), None, header(headers, "x-amz-version-id"))

    def upload_part_copy(
        self: S3Host, bucket: str, key: str, upload_id: str, part_number: int, start: int, end: int, *, etag: str,
        version_id: str | None = None,
    ) -> CompletedPart:
        _, _, body = self._crt_call(
            "PUT", bucket, key, f"partNumber={part_number}&uploadId={quote(upload_id, safe='')}",
            "UploadPartCopy", retry=True,
            headers=[*_copy_source(bucket, key, etag, version_id),
                     ("x-amz-copy-source-range", f"bytes={start}-{end - 1}")])
        checksum = checksum_re(self._checksum_name).search(body) if self._checksum_name else None
        return CompletedPart(part_number, etag_in(body), end - start, checksum.group(1).decode() if checksum else None)


def _copy_source(bucket: str, key: str, etag: str, version_id: str | None) -> list[tuple[str, str]]:
        source = "/" + quote(f"{bucket}/{key}", safe="/~")
        if version_id:
            source += f"?versionId={quote(version_id, safe='')}"
        return [("x-amz-copy-source", source), ("x-amz-copy-source-if-match", f'"{etag}"')]
