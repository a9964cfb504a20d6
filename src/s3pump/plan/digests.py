"""Reading a file's digest for sync, here or in another process (``sync --cluster``'s workers).

:func:`read_digest` is the one read: MD5 and multipart ETags of a file opened beneath the sync
root (no symlink followed unless ``--follow-symlinks``), retried when the file changes while it is
read. The planner reads through it on its thread pool; with a :data:`Hasher` (the cluster's), it
sends :class:`HashRequest` batches to it instead and reads nothing itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import S3PumpError, SourceChangedError, SourceNotFoundError, SourceUnreadableError
from ..etags import FileDigest, file_digest
from ..sources.dirfd import TreeChangedOSError, open_beneath

__all__ = ["HashRequest", "Hasher", "NeedsRead", "read_digest"]


@dataclass(frozen=True, slots=True)
class HashRequest:
    """Read ``path`` (under sync root ``root``, both as the coordinator names them): its MD5, the
    multipart ETag for each of ``part_sizes`` (bytes) and the full-object CRC of each of ``crcs``
    (``CRC32C``, ``CRC32``, ``CRC64NVME``)."""

    root: str
    path: str
    part_sizes: tuple[int, ...] = ()
    crcs: tuple[str, ...] = ()


Hasher = Callable[[Sequence[HashRequest], bool], list[FileDigest | S3PumpError]]
"""``hasher(requests, follow_symlinks)``: one answer per request, in order: the digest (MD5 always,
plus the asked multipart ETags), or the error that reading the file raised (a SourceError; a
WorkerLostError when the process reading it died)."""


class NeedsRead(Exception):
    """The planner would read a file here, but reads go to its :data:`Hasher` (``part_sizes``: the
    multipart ETags it needs besides the MD5; ``crcs``: the full-object CRCs)."""

    def __init__(self, part_sizes: Sequence[int], crcs: Sequence[str] = ()) -> None:
        super().__init__("read elsewhere")
        self.part_sizes = tuple(part_sizes)
        self.crcs = tuple(crcs)


def read_digest(root: str, path: str, part_sizes: Sequence[int], *, whole: bool, follow_symlinks: bool,
                digest: Callable[..., FileDigest] = file_digest, crcs: Sequence[str] = ()) -> FileDigest:
    """``path``'s digest (``whole``: its MD5; a multipart ETag per ``part_sizes``; the CRCs named in
    ``crcs``), read once,
    opened one component at a time from ``root`` (``path`` is ``root/...``) without following a
    symlink unless ``follow_symlinks``: a file replaced by a link to outside the tree is not read.
    A file that changes while read is read again (3 times at most). ``digest``: the read
    (:func:`~s3pump.etags.file_digest`).

    Raises:
        SourceChangedError: it changed on every try, or a component became a link (not uploaded).
        SourceNotFoundError: it was removed since the walk.
        SourceUnreadableError: it cannot be opened or read.
    """
    root_slash = root if root.endswith("/") else root + "/"

    def opener(p: str) -> int:
        try:
            return open_beneath(root, p[len(root_slash):], follow_symlinks)
        except TreeChangedOSError as e:
            raise SourceChangedError(f"{e.filename}: {e.strerror}; not uploaded") from None

    for attempt in range(3):
        try:
            return digest(path, part_sizes, whole=whole, opener=opener, crcs=crcs)
        except SourceChangedError:
            if attempt == 2:
                raise
        except SourceUnreadableError:
            if not os.path.exists(path):
                raise SourceNotFoundError(f"{path}: removed since the walk; not uploaded") from None
            raise
    raise AssertionError("unreachable")
