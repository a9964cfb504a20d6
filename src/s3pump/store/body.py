"""Part bodies: bytes in memory, or a range of an open file that the store reads itself."""

from __future__ import annotations

import os
from typing import Protocol

from ..errors import SourceChangedError, SourceUnreadableError

__all__ = ["BufferSlice", "FileRange", "PartBody", "SentBytes", "StreamBody", "Throttled"]


class FileRange:
    """``length`` bytes of an open file from ``offset``: a part body that costs no Python memory.

    The S3 store hands :meth:`reader` to awscrt, which pulls the bytes with ``os.preadv``
    directly into its own send buffer (and again after a seek, on a retry). A file that
    shrank under the range yields fewer bytes than ``length``: the request then fails,
    and the re-stat before CompleteMultipartUpload reports the change.
    """

    __slots__ = ("checksum", "fd", "length", "offset", "path")

    def __init__(self, fd: int, offset: int, length: int, path: str = "",
                 checksum: tuple[str, str] | None = None) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self.path = path
        #: ``(algorithm, base64 value)`` of the range's bytes when its source computed it while
        #: reading (a stream's spooled part): the store sends it as the request's checksum instead
        #: of reading the bytes once more to compute it; the server checks it against what it got.
        self.checksum = checksum

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


class _Positioned:
    """A read position over ``length`` bytes, with ``seek`` as io streams have it."""

    __slots__ = ("_length", "_pos")

    def __init__(self, length: int) -> None:
        self._length = length
        self._pos = 0

    def _want(self, size: int) -> int:
        """How many bytes a read of ``size`` (< 0: all) returns from the position."""
        left = max(self._length - self._pos, 0)
        return left if size < 0 else min(size, left)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._length}[whence]
        self._pos = base + offset
        return self._pos


class _RangeReader(_Positioned):
    """A minimal binary stream over a FileRange (readinto + seek), as awscrt's InputStream wants."""

    __slots__ = ("_range",)

    def __init__(self, file_range: FileRange) -> None:
        super().__init__(file_range.length)
        self._range = file_range

    def readinto(self, buffer: memoryview) -> int:
        want = self._want(len(buffer))
        if want <= 0:
            return 0
        n = os.preadv(self._range.fd, [buffer[:want]], self._range.offset + self._pos)
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        data = os.pread(self._range.fd, self._want(size), self._range.offset + self._pos)
        self._pos += len(data)
        return data


class BufferSlice:
    """The first ``length`` bytes of a reusable buffer: a stream's part, without a copy.

    A stream reads its parts into a small pool of part-sized buffers and reuses each one once
    its part is stored, so the kernel does not fault in (and zero) fresh pages for every part.
    The store reads the bytes through :meth:`reader` (awscrt copies them into its send buffer,
    again on a retry). :meth:`release` ends the slice before its buffer is reused: a reader
    that is still asked for bytes afterwards (a request already given up on) gets an error
    instead of the next part's bytes.
    """

    __slots__ = ("checksum", "length", "released", "view")

    def __init__(self, buffer: bytearray, length: int, checksum: tuple[str, str] | None = None) -> None:
        self.view = memoryview(buffer)[:length]
        self.length = length
        self.released = False
        #: ``(algorithm, base64 value)`` of the bytes, computed by the stream as it read them (see
        #: :attr:`FileRange.checksum`).
        self.checksum = checksum

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        """A copy of the bytes (for stores that keep them, e.g. the in-memory store)."""
        self._check()
        return bytes(self.view)

    def reader(self) -> _SliceReader:
        return _SliceReader(self)

    def release(self) -> None:
        """The part is stored (or given up): its buffer may be reused from now on."""
        self.released = True

    def _check(self) -> None:
        if self.released:
            raise SourceUnreadableError("stream part buffer reused before its request finished")


class _SliceReader(_Positioned):
    """readinto + seek over a BufferSlice, as awscrt's InputStream wants (one memcpy per call)."""

    __slots__ = ("_slice",)

    def __init__(self, buffer_slice: BufferSlice) -> None:
        super().__init__(buffer_slice.length)
        self._slice = buffer_slice

    def readinto(self, buffer: memoryview) -> int:
        self._slice._check()
        n = self._want(len(buffer))
        if n <= 0:
            return 0
        buffer[:n] = self._slice.view[self._pos:self._pos + n]  # under the GIL: release() cannot interleave
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        self._slice._check()
        n = self._want(size)
        data = bytes(self._slice.view[self._pos:self._pos + n])
        self._pos += n
        return data


class Pacer(Protocol):
    """What :class:`Throttled` needs of a rate limiter (``engine.limits.TokenBucket``)."""

    def take(self, n: float) -> None: ...


class SentBytes:
    """How many bytes of one request's body the store has read so far (a counter the engine reads while
    the request is in flight: progress shows bytes as they are sent, not only when a part ends)."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class Throttled:
    """A body whose bytes are paced by a bandwidth limiter as the store reads them.

    awscrt pulls the bytes from this body's reader on its own threads; each read is capped at
    ``chunk_bytes`` and paid for in limiter tokens (one per byte) before it returns, so the cap
    holds on bytes as they are sent, for single PUTs, parts and streams alike. ``sent``: counts the
    bytes handed to the store so far (the reader's position: a seek back on a retry counts down).
    """

    __slots__ = ("chunk_bytes", "inner", "pacer", "sent")

    def __init__(self, inner: bytes | FileRange | BufferSlice, pacer: Pacer, chunk_bytes: int = 256 * 1024,
                 sent: SentBytes | None = None) -> None:
        self.inner = inner
        self.pacer = pacer
        self.chunk_bytes = chunk_bytes
        self.sent = sent if sent is not None else SentBytes()

    def __len__(self) -> int:
        return len(self.inner)

    def read(self) -> bytes:
        """All the bytes (for stores that keep them), paced and counted a chunk at a time."""
        data = self.inner if isinstance(self.inner, bytes) else self.inner.read()
        self.sent.n = 0
        for start in range(0, len(data), self.chunk_bytes):
            n = min(self.chunk_bytes, len(data) - start)
            self.pacer.take(n)
            self.sent.n += n
        return data

    def reader(self) -> _ThrottledReader:
        import io

        inner = io.BytesIO(self.inner) if isinstance(self.inner, bytes) else self.inner.reader()
        self.sent.n = 0
        return _ThrottledReader(inner, self.pacer, self.chunk_bytes, self.sent)


class _Reader(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


class _ThrottledReader:
    __slots__ = ("_chunk", "_inner", "_pacer", "_sent")

    def __init__(self, inner: _Reader, pacer: Pacer, chunk_bytes: int, sent: SentBytes) -> None:
        self._inner = inner
        self._pacer = pacer
        self._chunk = chunk_bytes
        self._sent = sent

    def readinto(self, buffer: memoryview) -> int:
        n = self._inner.readinto(buffer[: self._chunk]) or 0
        if n:
            self._pacer.take(n)
            self._sent.n += n
        return n

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(min(size, self._chunk) if size >= 0 else self._chunk)
        if data:
            self._pacer.take(len(data))
            self._sent.n += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = self._inner.seek(offset, whence)
        self._sent.n = pos
        return pos


class StreamBody(Protocol):
    """A body the store streams from (``reader()``) rather than holding as bytes."""

    def __len__(self) -> int: ...

    def read(self) -> bytes: ...

    def reader(self) -> object: ...


#: A part's body: bytes in memory, a stream's pooled buffer, or a range of a file.
PartBody = bytes | BufferSlice | FileRange
