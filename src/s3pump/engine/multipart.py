"""Multipart sizing and part sources.

S3 allows 1 to 10,000 parts of 5 MiB to 5 GiB (the last part may be smaller);
see the S3 API reference, UploadPart, and the S3 User Guide, "Amazon S3
multipart upload limits".
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from ..config import MAX_PART_SIZE_BYTES, MAX_PARTS, MIN_PART_SIZE_BYTES
from ..errors import SourceChangedError, UsageError
from ..fileid import FileIdentity, open_version
from ..store.body import FileRange, PartBody
from ..units import MIB

__all__ = [
    "FilePartSource",
    "FileRange",
    "PartBody",
    "multipart_etag",
    "part_count",
    "part_size_for",
]



def part_size_for(size_bytes: int, part_size_bytes: int) -> int:
    """The part size for an object of ``size_bytes``: ``part_size_bytes``, grown (to whole
    MiB) until the object fits in 10,000 parts.

    Raises:
        UsageError: the object would need parts over 5 GiB (it is over 48.8 TiB).
    """
    size = max(part_size_bytes, MIN_PART_SIZE_BYTES)
    if -(-size_bytes // size) > MAX_PARTS:
        needed = -(-size_bytes // MAX_PARTS)
        size = -(-needed // MIB) * MIB
    if size > MAX_PART_SIZE_BYTES:
        raise UsageError(f"{size_bytes} bytes do not fit in 10,000 parts of at most 5 GiB")
    return size


def part_count(size_bytes: int, part_size_bytes: int) -> int:
    """Number of parts of ``part_size_bytes`` for ``size_bytes`` (at least 1)."""
    return max(1, -(-size_bytes // part_size_bytes))


def multipart_etag(part_md5s: list[bytes]) -> str:
    """The ETag S3 gives a multipart object: ``hex(md5(concat(part md5 digests)))-N``."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


class FilePartSource:
    """Parts of a regular file, read with ``os.pread`` one part at a time (no Python per byte)."""

    __slots__ = ("_fd", "_follow", "_next", "_parts", "_path", "_size", "_skip", "identity", "mtime_ns",
                 "part_size_bytes")
    counts_reads = False  # awscrt reads the file ranges itself
    full_object_checksum: tuple[str, str] | None = None  # none: the store reads the file, part by part

    def __init__(self, path: str, size_bytes: int, mtime_ns: int, part_size_bytes: int, *,
                 identity: FileIdentity | None = None, follow: bool = False) -> None:
        """The file is opened here, as :func:`~s3pump.fileid.open_version` does (the file ``identity``
        names; a symlink is not followed unless ``follow``); its parts are ranges of that descriptor.

        Raises:
            SourceChangedError: the path is no longer that file. SourceUnreadableError: it cannot be opened.
        """
        self._path = path
        self._follow = follow
        self._size = size_bytes
        self.mtime_ns = mtime_ns
        #: the version planned; :meth:`finish` requires it (without it, size and mtime)
        self.identity = identity
        self.part_size_bytes = part_size_bytes
        self._parts = part_count(size_bytes, part_size_bytes)
        self._next = 1
        self._skip: frozenset[int] = frozenset()
        self._fd: int | None = open_version(path, identity, follow=follow)

    def bind(self, wakeup: Callable[[], None]) -> None:
        return None

    @property
    def parts(self) -> int:
        return self._parts

    def read_part(self, part_number: int) -> FileRange:
        """Part ``part_number`` as a range of the open file: the bytes are read by the store,
        straight into its send buffer, when (and each time) the part is sent."""
        assert self._fd is not None
        offset = (part_number - 1) * self.part_size_bytes
        length = min(self.part_size_bytes, self._size - offset)
        return FileRange(self._fd, offset, length, self._path)

    def skip_parts(self, part_numbers: set[int] | frozenset[int]) -> None:
        """Do not hand out these part numbers (a resumed upload already has them)."""
        self._skip = frozenset(part_numbers)

    def next_part(self) -> tuple[int, PartBody] | None:
        while self._next in self._skip:
            self._next += 1
        if self._next > self._parts:
            raise StopIteration
        n = self._next
        self._next += 1
        return n, self.read_part(n)

    def release(self, part_number: int) -> None:
        return None  # nothing held: a part is a range of the open file

    def finish(self) -> None:
        try:
            st = os.stat(self._path, follow_symlinks=self._follow)
        except OSError as e:
            raise SourceChangedError(f"{self._path}: {e.strerror} before the upload completed") from None
        now = FileIdentity.of(st)
        if self.identity is not None:
            same = self.identity.same_version(now)
        else:
            same = st.st_size == self._size and st.st_mtime_ns == self.mtime_ns
        if not same:
            raise SourceChangedError(
                f"{self._path}: file changed while uploading ({self._size} -> {st.st_size} bytes); "
                "not completed, rerun to upload the new version"
            )

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
