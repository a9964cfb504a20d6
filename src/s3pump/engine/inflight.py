"""A data-plane request of the engine in flight (a single PUT or one part of a multipart upload):
its timeout, its answer, and the error a failure is reported as."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import RequestTimeoutError, S3PumpError, SourceChangedError
from ..items import UploadItem
from ..store.base import PutResult, Request
from ..store.body import PartBody, SentBytes

if TYPE_CHECKING:
    from .multipart_upload import MultipartUpload

__all__ = ["Req", "Settled", "final_error", "log_settled", "source_changed", "timeout_for"]

_log = logging.getLogger("s3pump.engine")

#: A request's timeout grows with its body: ``_TIMEOUT_FLOOR_S + size / _TIMEOUT_MIN_RATE_BPS``,
#: capped at ``config.request_timeout_s``. A stalled 4 KiB PUT is retried after 15 s, not
#: after the 300 s a 5 GiB part may need on a slow link.
_TIMEOUT_FLOOR_S = 15.0
_TIMEOUT_MIN_RATE_BPS = 256 * 1024


def timeout_for(size_bytes: int, cap_s: float) -> float:
    """The timeout in seconds of a request sending ``size_bytes``, at most ``cap_s``."""
    return min(cap_s, _TIMEOUT_FLOOR_S + size_bytes / _TIMEOUT_MIN_RATE_BPS)


@dataclass(slots=True)
class Req:
    """A data-plane request in flight: a single PUT (``mp is None``) or one part."""

    item: UploadItem
    mp: MultipartUpload | None = None
    part_number: int = 0
    body: PartBody | None = None
    attempt: int = 1
    started: float = 0.0
    first_started: float = 0.0
    handle: Request | None = None
    timed_out: bool = False
    retried_after: S3PumpError | None = None  # the error of the last retry (its cost is refunded on success)
    timeout_s: float = 0.0
    fd: int | None = None  # a file opened for a single PUT
    sent: SentBytes | None = None  # the bytes of a paced body read so far (this attempt)


@dataclass(slots=True)
class Settled:
    """A data-plane request finished (put on the scheduler's queue by a store callback)."""

    req: Req
    result: PutResult | S3PumpError


def log_settled(req: Req, result: PutResult | S3PumpError, bucket: str) -> None:
    """The debug line of a request that came back."""
    item = req.item
    if req.mp is None:
        _log.debug("PutObject s3://%s/%s (%d bytes, attempt %d): %s", bucket, item.key, item.size_bytes,
                   req.attempt, result)
    else:
        _log.debug("UploadPart s3://%s/%s part %d (attempt %d): %s", bucket, item.key, req.part_number,
                   req.attempt, result)


def final_error(req: Req, error: S3PumpError, bucket: str, *, follow: bool) -> S3PumpError:
    """What ``req`` failed with: a retryable failure of a file that changed is a source change
    (failed at once, never retried); a request the scheduler cancelled for its timeout is a
    RequestTimeoutError; anything else ``error`` itself."""
    item = req.item
    if item.path is not None and error.retryable:
        # a short read (a file truncated under the request) fails the request in ways that look like
        # the network's (a SourceChangedError already says how it changed, e.g. replaced by a link: kept as it is)
        changed = source_changed(item, follow=follow)
        if changed is not None:
            return changed
    if req.timed_out:
        return RequestTimeoutError(f"s3://{bucket}/{item.key}: no response within {req.timeout_s:.0f} s")
    return error


def source_changed(item: UploadItem, *, follow: bool) -> SourceChangedError | None:
    """Whether ``item``'s file is no longer the version being sent (size, mtime, ctime, inode); a
    symbolic link in its place is not followed (unless ``follow``: ``--follow-symlinks``)."""
    try:
        st = os.stat(item.path, follow_symlinks=follow)  # type: ignore[arg-type]
    except OSError as e:
        return SourceChangedError(f"{item.source}: file changed while uploading ({e.strerror}); not completed, "
                                  "rerun to upload the new version")
    same = st.st_size == item.size_bytes and (item.identity is None or item.identity.matches(st))
    if same:
        return None
    return SourceChangedError(f"{item.source}: file changed while uploading ({item.size_bytes} -> {st.st_size} "
                              "bytes); not completed, rerun to upload the new version")
