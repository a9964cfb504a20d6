"""Checking a journaled multipart upload before it is continued.

A resume may keep a part an earlier run uploaded only if that part holds the bytes the
file has now at that range; otherwise the completed object would mix two versions of the
file. The journal's file identity (:mod:`s3pump.fileid`) already refuses a file that was
replaced; this module checks the parts themselves, which needs no clock:

* ListParts must still list the part with the journaled ETag and size (S3 API reference,
  ListParts);
* the part's range is re-read from the file and its MD5 compared with the part's ETag
  (an UploadPart ETag is the MD5 of the part, except under SSE-KMS: S3 API reference,
  UploadPart, "ETag"); where the ETag is no MD5, the journaled and listed checksums must agree.

A part that fails either check is sent again (UploadPart with the same number replaces it).
"""

from __future__ import annotations

import hashlib
import os

from ..errors import BrokenListingError, S3PumpError, SourceChangedError
from ..items import ResumeRecord
from ..store.base import CompletedPart, Store
from ..units import MIB
from .multipart import FilePartSource

__all__ = ["list_and_verify_parts", "listing_unsupported"]

_READ_BYTES = MIB


def listing_unsupported(error: S3PumpError) -> bool:
    """True if ``error`` says the server does not implement ListParts (405 MethodNotAllowed or
    501 NotImplemented), or cannot list them whole (a page truncated without a marker, or a marker
    twice: :class:`~s3pump.errors.BrokenListingError`): the upload cannot be checked, so it is
    aborted and the file starts over."""
    if isinstance(error, BrokenListingError):
        return True
    code = getattr(error, "code", None)
    status = getattr(error, "status", None)
    return code in ("MethodNotAllowed", "NotImplemented") or status in (405, 501)


def list_and_verify_parts(
    store: Store, bucket: str, key: str, resume: ResumeRecord, source: FilePartSource, sse: str | None,
) -> dict[int, CompletedPart]:
    """The journaled parts of ``resume`` that the store still has and that match the file now
    (part number -> part). Runs in a control-pool thread; reads the file with ``os.pread``.

    Raises:
        S3PumpError: ListParts failed (NoSuchUploadError: the upload is gone).
    """
    listed = {p.part_number: p for p in store.list_parts(bucket, key, resume.upload_id)}
    kept: dict[int, CompletedPart] = {}
    for n, part in sorted(resume.parts.items()):
        got = listed.get(n)
        if got is None or got.etag != part.etag or (got.size_bytes and got.size_bytes != part.size_bytes):
            continue
        try:
            if _matches_file(part, got, source, sse):
                kept[n] = part
        except (OSError, SourceChangedError):
            continue
    return kept


def _matches_file(part: CompletedPart, listed: CompletedPart, source: FilePartSource, sse: str | None) -> bool:
    rng = source.read_part(part.part_number)
    if rng.length != part.size_bytes:
        return False
    etag = part.etag.strip('"').lower()
    if (sse is None or "kms" not in sse.lower()) and len(etag) == 32 and all(c in "0123456789abcdef" for c in etag):
        return _md5_of_range(rng.fd, rng.offset, rng.length) == etag
    # no MD5 ETag: the checksums the server reported must at least agree (identity checked the file)
    return part.checksum is None or listed.checksum is None or part.checksum == listed.checksum


def _md5_of_range(fd: int, offset: int, length: int) -> str:
    h = hashlib.md5()
    end = offset + length
    while offset < end:
        chunk = os.pread(fd, min(_READ_BYTES, end - offset), offset)
        if not chunk:
            raise SourceChangedError("file shorter than journaled")
        h.update(chunk)
        offset += len(chunk)
    return h.hexdigest()
