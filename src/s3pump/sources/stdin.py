"""Parts of a stream (stdin, a FIFO, any readable): the :class:`~s3pump.items.PartSource`
behind ``s3pump stream``.

One reader thread reads the stream a whole part at a time (``readable.readinto(buffer)``: the
C buffered reader fills a part buffer straight from the pipe, no Python per chunk) and hands
each part to the engine while it reads the next. Hasher threads update the MD5 and the SHA-256
of the whole stream (each only when asked for: ``md5=True``, ``sha256=True``) with whole parts, in
order (hashlib releases the GIL), so hashing runs beside reading and uploading instead of between
reads. The whole stream's CRC (``full_object_algorithm``) is computed in the reader itself.

Memory bound. The reader takes a *buffer slot* before it reads a part and the slot comes back
only when that part is uploaded (the engine calls :meth:`StreamPartSource.release`) and
hashed, so at most ``buffers`` parts exist at once. Part
buffers are reused (a pool of at most ``buffers`` part-sized ``bytearray``), so the kernel
maps and zeroes each page once per run instead of once per part. With a spool
directory the part goes to a temporary file there instead (read and hashed 1 MiB at a time) and
the store reads the file itself (:class:`~s3pump.store.body.FileRange`); the file is deleted
once its part is uploaded, so the disk holds at most ``buffers`` parts and Python holds none.

Part sizes: :class:`~s3pump.sources.partschedule.PartSchedule` (S3 allows 10,000 parts of 5 MiB to 5 GiB;
S3 API reference, UploadPart).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable

from ..errors import (
    S3PumpError,
    SourceError,
    SourceTruncatedError,
    SourceUnreadableError,
    UsageError,
    source_os_error,
)
from ..store.body import BufferSlice, FileRange, PartBody
from ..store.checksums import FullObjectChecksum
from ..units import MIB
from .partschedule import PartSchedule
from .stream_io import PartHasher, Readable, grow_pipe, share_malloc_arenas

__all__ = ["PartSchedule", "Readable", "StreamPartSource", "share_malloc_arenas"]

#: Reads of a spooled part: the Python memory a spooled stream uses for data.
SPOOL_CHUNK_BYTES = MIB


class StreamPartSource:
    """A :class:`~s3pump.items.PartSource` over a readable stream.

    ``buffers`` bounds the parts that exist at once (in memory, or as spool files under
    ``spool_dir``). ``expected_size_bytes`` (with ``size_tolerance_bytes``) makes a stream that
    ends with another byte count fail with :class:`~s3pump.errors.SourceTruncatedError`.

    Call :meth:`start`, then :meth:`wait_first` to learn whether the stream fits in one part;
    hand the source to the engine (or take :meth:`single_body` for one PUT), which calls
    :meth:`release` as parts are stored; :meth:`close` at the end. ``md5_hex`` (None unless
    ``md5``), ``sha256_hex`` (None unless ``sha256``), :attr:`full_object_checksum` and
    ``bytes_read`` are final once the reader is done.
    """

    counts_reads = True  # the engine reports each part handed out as a SourceRead

    def __init__(
        self,
        readable: Readable,
        schedule: PartSchedule,
        *,
        buffers: int,
        name: str = "stdin",
        spool_dir: str | os.PathLike[str] | None = None,
        expected_size_bytes: int | None = None,
        size_tolerance_bytes: int = 0,
        sha256: bool = True,
        full_object_algorithm: str | None = None,
        md5: bool = True,
    ) -> None:
        if buffers < 2:
            raise UsageError("a stream needs at least 2 part buffers (--concurrency >= 2)")
        self._readable = readable
        self.schedule = schedule
        self.part_size_bytes = schedule.part_size(1)
        self.name = name
        self.expected_size_bytes = expected_size_bytes
        self.size_tolerance_bytes = size_tolerance_bytes
        self.buffers = buffers
        self._slots = threading.Semaphore(buffers)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ready: collections.deque[tuple[int, PartBody]] = collections.deque()
        self._held: dict[int, int] = {}  # part number -> acks still due (uploaded, hashed)
        self._spooled: dict[int, tuple[int, str]] = {}  # part number -> (fd, path)
        self._slices: dict[int, tuple[bytearray, BufferSlice]] = {}  # part number -> its pooled buffer
        self._pool: list[bytearray] = []  # free part buffers, all of ``_pool_size`` bytes
        self._pool_size = 0
        self._chunk: bytearray | None = None  # the spool's read buffer
        self._spool_root = os.fspath(spool_dir) if spool_dir is not None else None
        self._spool_dir: str | None = None
        self._wakeup: Callable[[], None] = _noop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._md5 = hashlib.md5() if md5 else None
        self._sha256 = hashlib.sha256() if sha256 else None
        self._hashers: list[PartHasher] = []
        # the whole stream's CRC, computed in the reader as each part is read (C, several GB/s)
        self._full = FullObjectChecksum(full_object_algorithm) if full_object_algorithm else None
        self.bytes_read = 0
        self.part_sizes: list[int] = []
        self.peak_parts_held = 0
        self.done = False
        self.error: S3PumpError | None = None

    # ------------------------------------------------------------------ the job's side
    def start(self) -> None:
        """Start the reader thread. Raises SourceUnreadableError if the spool dir is unusable."""
        if self._spool_root is not None:
            try:
                os.makedirs(self._spool_root, exist_ok=True)
                self._spool_dir = tempfile.mkdtemp(prefix="s3pump-stream-", dir=self._spool_root)
            except OSError as e:
                raise source_os_error(f"--spool-dir {self._spool_root}", e) from None
        if self._spool_dir is None:
            self._hashers = [PartHasher(h, self._ack) for h in (self._md5, self._sha256) if h is not None]
        grow_pipe(self._readable)
        self._thread = threading.Thread(target=self._run, name="s3pump-stream-reader", daemon=True)
        self._thread.start()

    def wait_first(self) -> bool:
        """Block until the stream is known to need more than one part (True) or has ended
        within one part (False; then see :meth:`single_body`). A read error ends it too."""
        with self._changed:
            while not self.done and len(self.part_sizes) < 2:
                self._changed.wait(0.5)
            return len(self.part_sizes) >= 2

    def single_body(self) -> PartBody:
        """The whole (one-part, possibly empty) stream once :meth:`wait_first` returned False."""
        with self._lock:
            if self._ready:
                return self._ready[0][1]
        return b""

    def release(self, part_number: int) -> None:
        """Part ``part_number`` is stored: free its buffer slot once hashed (and delete its spool file)."""
        self._ack(part_number)

    def _ack(self, part_number: int) -> None:
        with self._lock:
            due = self._held.get(part_number)
            if due is None:
                return
            if due > 1:
                self._held[part_number] = due - 1
                return
            del self._held[part_number]
            spooled = self._spooled.pop(part_number, None)
            pooled = self._slices.pop(part_number, None)
            if pooled is not None:
                buffer, part = pooled
                part.release()  # before the buffer can be read into again
                self._pool_locked(buffer)
        if spooled is not None:
            _remove(*spooled)
        self._slots.release()

    @property
    def md5_hex(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None else None

    @property
    def sha256_hex(self) -> str | None:
        return self._sha256.hexdigest() if self._sha256 is not None else None

    @property
    def full_object_checksum(self) -> tuple[str, str] | None:
        """``(algorithm, base64)`` of the whole stream once it is read (None if not asked for)."""
        return self._full.value() if self._full is not None else None

    # ------------------------------------------------------------------ PartSource (engine thread)
    def bind(self, wakeup: Callable[[], None]) -> None:
        self._wakeup = wakeup
        wakeup()

    def next_part(self) -> tuple[int, PartBody] | None:
        with self._lock:
            if self._ready:
                return self._ready.popleft()
            if self.error is not None:
                raise self.error
            if self.done:
                raise StopIteration
            return None

    def finish(self) -> None:
        """Raises the read error, or SourceTruncatedError if the byte count is not the expected one."""
        if self.error is not None:
            raise self.error
        self.check_size()

    def check_size(self) -> None:
        """Raises SourceTruncatedError if ``--expected-size`` (± tolerance) does not match."""
        expected = self.expected_size_bytes
        if expected is None or not self.done:
            return
        if abs(self.bytes_read - expected) > self.size_tolerance_bytes:
            window = f" ± {self.size_tolerance_bytes}" if self.size_tolerance_bytes else ""
            raise SourceTruncatedError(
                f"{self.name}: stream ended after {self.bytes_read} bytes, expected {expected}{window}; "
                "nothing was stored (the multipart upload was aborted)"
            )

    def close(self) -> None:
        """Stop the reader and delete spool files. The reader may still sit in a blocking read
        of the stream; it is a daemon thread and stops at its next read."""
        self._stop.set()
        for _ in range(self.buffers):
            self._slots.release()  # unblock a reader waiting for a slot
        for hasher in self._hashers:
            hasher.stop()
        with self._lock:
            spooled = list(self._spooled.values())
            self._spooled.clear()
            self._ready.clear()
            self._held.clear()
            for _, part in self._slices.values():
                part.release()
            self._slices.clear()
            self._pool.clear()
        for fd, path in spooled:
            _remove(fd, path)
        if self._spool_dir is not None:
            shutil.rmtree(self._spool_dir, ignore_errors=True)

    # ------------------------------------------------------------------ reader thread
    def _run(self) -> None:
        try:
            self._read_all()
            for hasher in self._hashers:  # the digests are final once every part is hashed
                hasher.stop()
                hasher.join()
        except S3PumpError as e:
            self._end(e)
        except OSError as e:
            self._end(SourceUnreadableError(
                f"{self.name}: read failed after {self.bytes_read} bytes ({e.strerror or e}); "
                "nothing was stored (the multipart upload was aborted)"
            ))
        except Exception as e:  # a readable that raised something else: still never a partial object
            self._end(SourceUnreadableError(f"{self.name}: read failed after {self.bytes_read} bytes ({e})"))
        else:
            self._end(None)

    def _end(self, error: S3PumpError | None) -> None:
        with self._changed:
            self.error = error
            self.done = True
            self._changed.notify_all()
        self._wakeup()

    def _read_all(self) -> None:
        schedule = self.schedule
        limit = None if self.expected_size_bytes is None else self.expected_size_bytes + self.size_tolerance_bytes
        n = 1
        while True:
            self._slots.acquire()
            if self._stop.is_set():
                return
            if n > schedule.max_parts:
                raise SourceError(
                    f"{self.name}: stream is over {schedule.capacity_bytes()} bytes, more than "
                    f"{schedule.max_parts} parts hold; give --expected-size so parts are sized for it"
                )
            size = schedule.part_size(n)
            if self._spool_dir is not None:
                length, body = self._spool_part(n, size)
            else:
                buffer = self._take_buffer(size)
                length = self._read_into(buffer, size)
                body = BufferSlice(buffer, length)
                if self._full is not None:  # one CRC pass: the part's checksum, combined into the whole's
                    crc = self._full.part(body.view)
                    self._full.append(crc, length)
                    body.checksum = (self._full.algorithm, self._full.encode(crc))
            if self._stop.is_set():
                return
            last = length < size
            if length == 0 and n > 1:  # the stream ended on a part boundary
                if isinstance(body, BufferSlice):
                    self._give_back(buffer)
                self._slots.release()
                return
            with self._changed:
                self._held[n] = 1 + (len(self._hashers) if isinstance(body, BufferSlice) else 0)
                if isinstance(body, BufferSlice):
                    self._slices[n] = (buffer, body)
                self._ready.append((n, body))
                self.part_sizes.append(length)
                self.peak_parts_held = max(self.peak_parts_held, len(self._held))
                self._changed.notify_all()
            self._wakeup()
            if isinstance(body, BufferSlice):  # hashed beside the upload; the slot returns when both are done
                for hasher in self._hashers:
                    hasher.put(n, body.view)
            del body
            self.bytes_read += length
            if limit is not None and self.bytes_read > limit:
                raise SourceTruncatedError(
                    f"{self.name}: stream is longer than the expected {self.expected_size_bytes} bytes; "
                    "nothing was stored (the multipart upload was aborted)"
                )
            if last:
                return
            n += 1

    def _take_buffer(self, size: int) -> bytearray:
        """A free part buffer of ``size`` bytes (a new one while the pool is short; the pool
        starts over when the part size grows)."""
        with self._lock:
            if size != self._pool_size:
                self._pool.clear()
                self._pool_size = size
            if self._pool:
                return self._pool.pop()
        return bytearray(size)

    def _give_back(self, buffer: bytearray) -> None:
        with self._lock:
            self._pool_locked(buffer)

    def _pool_locked(self, buffer: bytearray) -> None:
        """Return a free buffer to the pool (with ``_lock`` held); one of an old part size is dropped."""
        if len(buffer) == self._pool_size:
            self._pool.append(buffer)

    def _read_into(self, buffer: bytearray, size: int) -> int:
        """Fill ``buffer[:size]`` from the stream; fewer bytes only at the end of the stream."""
        view = memoryview(buffer)
        readinto = getattr(self._readable, "readinto", None)
        got = 0
        while got < size:
            if readinto is not None:  # a raw (unbuffered) readable returns what one read(2) gave
                n = readinto(view[got:size]) or 0
            else:
                chunk = self._readable.read(size - got)
                n = len(chunk)
                view[got:got + n] = chunk
            if n == 0:
                break
            got += n
        return got

    def _spool_part(self, part_number: int, size: int) -> tuple[int, PartBody]:
        assert self._spool_dir is not None
        path = os.path.join(self._spool_dir, f"part-{part_number:05d}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as e:
            raise source_os_error(f"--spool-dir {self._spool_root}", e) from None
        with self._lock:
            self._spooled[part_number] = (fd, path)
        got = 0
        crc = 0
        if self._chunk is None:
            self._chunk = bytearray(SPOOL_CHUNK_BYTES)
        try:
            while got < size:
                want = min(SPOOL_CHUNK_BYTES, size - got)
                n = self._read_into(self._chunk, want)
                if not n:
                    break
                chunk = memoryview(self._chunk)[:n]
                if self._md5 is not None:
                    self._md5.update(chunk)
                if self._sha256 is not None:
                    self._sha256.update(chunk)
                if self._full is not None:
                    crc = self._full.part(chunk, crc)
                while chunk:
                    chunk = chunk[os.write(fd, chunk):]
                got += n
                if n < want:  # the end of the stream
                    break
        except OSError as e:
            if _is_write_error(e):
                raise source_os_error(f"--spool-dir {self._spool_root}", e) from None
            raise
        if got == 0:
            with self._lock:
                self._spooled.pop(part_number, None)
            _remove(fd, path)
            return 0, b""
        if self._full is None:
            return got, FileRange(fd, 0, got, path)
        self._full.append(crc, got)
        return got, FileRange(fd, 0, got, path, checksum=(self._full.algorithm, self._full.encode(crc)))


def _is_write_error(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _remove(fd: int, path: str) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(path)


def _noop() -> None:
    return None
