"""What every paginated listing checks of the server's pages (ListObjectsV2, ListMultipartUploads,
ListParts, ListObjectVersions), whoever reads them (the awscrt reader, botocore calls).

A server (or a gateway in front of one) can answer a listing in ways that must not pass as a
complete listing:

* **truncated without a continuation**: ``IsTruncated`` true and no ``NextContinuationToken`` /
  ``NextKeyMarker`` / ``NextPartNumberMarker``. Taking it as the end made ``sync --delete`` delete
  nothing under the unseen part and upload it again, and ``verify`` report existing objects as
  missing (botocore's paginator also stops there without a word);
* **a continuation that repeats**: the same token (or marker) a second time, at any distance,
  means the listing loops; read on, it never ends (247,458 requests in 10 minutes). So does a
  page that starts with the entry another page started with, whatever its token (each entry is
  listed once, so no two pages share their first);
* **keys outside the prefix**: a server that ignores ``prefix`` lists the whole bucket, so every
  listed key is checked against the prefix asked for and the others are dropped (``cleanup
  s3://b/cl/`` must never abort an upload under ``clkeep/``).

The first two end the listing with a :class:`~s3pump.errors.BrokenListingError` naming the
bucket and prefix, before the caller acts on a partial listing.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable

from ..errors import BrokenListingError

__all__ = ["PageGuard"]

_log = logging.getLogger("s3pump.store")


class PageGuard:
    """The pages of one listing: call :meth:`next` with each page's truncation flag and its
    continuation (a token, a marker, or a tuple of markers), and :meth:`keep` with each key.

    ``what`` names the listing (``s3://bucket/prefix``) in the messages, ``operation`` the S3 call
    (``ListObjectsV2``), ``token_name`` the continuation's element (``NextContinuationToken``)."""

    def __init__(self, what: str, operation: str, token_name: str, prefix: str = "") -> None:
        self.what = what
        self.operation = operation
        self.token_name = token_name
        self.prefix = prefix
        self.pages = 0
        self.dropped = 0
        self._seen: set[Hashable] = set()
        self._firsts: set[Hashable] = set()

    def next(self, truncated: bool, token: Hashable | None, first: Hashable | None = None) -> Hashable | None:
        """The continuation to ask for next, or None when the listing is complete. ``first``: the
        page's first entry (a key, or key and upload ID), if it has any.

        Raises:
            BrokenListingError: truncated without a continuation, a continuation seen before, or a
                page that starts where an earlier one started.
        """
        self.pages += 1
        if first is not None:
            if first in self._firsts:
                raise BrokenListingError(
                    f"{self.what}: the server's {self.operation} started page {self.pages} with "
                    f"{_short(first)} again, as an earlier page, so the listing loops; stopped (nothing was "
                    "planned or deleted on it); check the server or the gateway in front of it")
            self._firsts.add(first)
        if not truncated:
            self._done()
            return None
        if token is None or token == "" or (isinstance(token, tuple) and not any(token)):
            raise BrokenListingError(
                f"{self.what}: the server's {self.operation} answer (page {self.pages}) says it is truncated "
                f"but gives no {self.token_name}, so the rest cannot be listed; stopped before acting on a "
                "partial listing (nothing was planned or deleted on it); check the server or the gateway "
                "in front of it")
        if token in self._seen:
            raise BrokenListingError(
                f"{self.what}: the server's {self.operation} sent the same {self.token_name} "
                f"({_short(token)}) twice (page {self.pages}), so the listing loops; stopped (nothing was "
                "planned or deleted on it); check the server or the gateway in front of it")
        self._seen.add(token)
        return token

    def keep(self, key: str) -> bool:
        """Whether ``key`` is under the prefix asked for (a server may ignore ``prefix``)."""
        if key.startswith(self.prefix):
            return True
        if not self.dropped:
            _log.warning("%s: the server's %s listed %r, which is not under the prefix %r (it ignores the "
                         "prefix parameter?); keys outside the prefix are skipped", self.what, self.operation,
                         key, self.prefix)
        self.dropped += 1
        return False

    def _done(self) -> None:
        if self.dropped:
            _log.info("%s: %d listed key(s) outside the prefix were skipped", self.what, self.dropped)


def _short(token: Hashable) -> str:
    text = repr(token)
    return text if len(text) <= 60 else text[:57] + "..."
