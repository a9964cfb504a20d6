"""Sync's check of a single PUT: the object's ETag is the MD5 the planner hashed.

A sync hashes each file it uploads (the ``md5`` metadata; docs/sync.md). After a single PUT, an
ETag that is a plain MD5 and not the planned one means other bytes were sent than were hashed: the
engine then fails the file as changed and deletes the object (:attr:`~s3pump.items.UploadItem.check_put`).
A bucket whose ETags are not MD5s (default SSE-KMS encryption) is found out by one re-read.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

from ..errors import S3PumpError
from ..fileid import open_version
from ..items import UploadItem
from ..store.base import PutResult

__all__ = ["Md5Check", "is_plain_md5"]

_log = logging.getLogger("s3pump.engine")


@dataclass(slots=True)
class Md5Check:
    """A :class:`~s3pump.items.PutCheck` comparing a PUT's ETag with ``item.md5``, for one sync
    into ``bucket`` (``sse``: the run's --sse; ``follow``: --follow-symlinks). Shared by the items
    of a run; picklable (it travels with them to cluster workers)."""

    bucket: str
    sse: str | None
    follow: bool
    #: until a PUT of an unchanged file shows otherwise (SSE-KMS); then ETags are not compared again
    etags_are_md5: bool = True

    def __call__(self, item: UploadItem, result: PutResult) -> bool:
        if not item.md5 or not self.etags_are_md5 or not is_plain_md5(result.etag, self.sse):
            return True
        if result.etag.lower() == item.md5.lower():
            return True
        return self._mismatch_explained(item)

    def _mismatch_explained(self, item: UploadItem) -> bool:
        """A single PUT's ETag is not the MD5 the planner hashed: either other bytes were sent, or
        the bucket's ETags are no MD5s (default SSE-KMS encryption). Re-read the file once: if it
        still has that MD5, it is the latter, and ETags are not compared again in this run."""
        try:
            fd = open_version(item.path or "", item.identity, follow=self.follow)
            with os.fdopen(fd, "rb", buffering=0) as f:
                now = hashlib.file_digest(f, "md5").hexdigest()
        except (OSError, S3PumpError):
            return False
        if now != (item.md5 or "").lower():
            return False
        _log.info("s3://%s: ETags are not MD5s here (SSE-KMS?); not compared with the files' MD5s", self.bucket)
        self.etags_are_md5 = False
        return True


def is_plain_md5(etag: str, sse: str | None) -> bool:
    """Whether a single PUT's ETag is the MD5 of its body: 32 hex digits, and no SSE-KMS (whose
    ETags are not MD5s; S3 API reference, "Common Response Headers", ETag)."""
    if sse is not None and "kms" in sse.lower():
        return False
    return len(etag) == 32 and all(c in "0123456789abcdefABCDEF" for c in etag)
