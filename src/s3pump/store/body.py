"""Part bodies: bytes in memory, or a range of an open file that the store reads itself."""

from __future__ import annotations

import os

from ..errors import SourceChangedError, SourceUnreadableError

__all__ = ["FileRange", "PartBody"]


class FileRange:
    """``length`` bytes of an open file from ``offset``: a part body that costs no Python memory.

    The S3 store hands :meth:`reader` to awscrt, which pulls the bytes with ``os.preadv``
    directly into its own send buffer (and again after a seek, on a retry). A file that
    shrank under the range yields fewer bytes than ``length``: the request then fails,
    and the re-stat before CompleteMultipartUpload reports the change.
    """

    __slots__ = ("fd", "length", "offset", "path")

    def __init__(self, fd: int, offset: int, length: int, path: str = "") -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self.path = path

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        """All the bytes (for stores that need them in memory).

        Raises:
            SourceUnreadableError: the read failed. SourceChangedError: the file is now shorter.
        """
        try:
            data = os.pread(self.fd, self.length, self.offset)
        except OSError as e:
            raise SourceUnreadableError(f"{self.path}: {e.strerror}") from None
        if len(data) != self.length:
            raise SourceChangedError(f"{self.path}: file shrank while uploading; not completed")
        return data

    def reader(self) -> _RangeReader:
        return _RangeReader(self)


class _RangeReader:
    """A minimal binary stream over a FileRange (readinto + seek), as awscrt's InputStream wants."""

    __slots__ = ("_pos", "_range")

    def __init__(self, file_range: FileRange) -> None:
        self._range = file_range
        self._pos = 0

    def readinto(self, buffer: memoryview) -> int:
        r = self._range
        want = min(len(buffer), r.length - self._pos)
        if want <= 0:
            return 0
        n = os.preadv(r.fd, [buffer[:want]], r.offset + self._pos)
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        want = self._range.length - self._pos if size < 0 else min(size, self._range.length - self._pos)
        data = os.pread(self._range.fd, max(want, 0), self._range.offset + self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._range.length}[whence]
        self._pos = base + offset
        return self._pos


#: A part's body: bytes in memory (a stream's chunk) or a range of a file.
PartBody = bytes | FileRange
