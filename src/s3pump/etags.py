"""Local MD5s and multipart ETags, and what a remote ETag can tell about an object's bytes.

S3 gives a single-part object the hex MD5 of its body as its ETag, and a multipart
object ``hex(md5(concat(part md5 digests)))-N`` (S3 User Guide, "Checking object
integrity"). Neither holds for SSE-KMS or SSE-C objects, whose ETags are not MD5s of
the plaintext (S3 API reference, "Common Response Headers", ETag).

A multipart ETag depends on the part size the uploader chose, which the object does
not record. :func:`candidate_part_sizes` lists the sizes worth trying for an object of
``size`` bytes in ``N`` parts: s3pump's own schedule, the common defaults (5, 8, 16,
50, 64, 100 MiB; ``aws s3 cp`` uses 8 MiB, s5cmd 50 MiB), each grown the way the
tools grow them for very large objects, and the smallest whole-MiB size that gives
exactly ``N`` parts. :func:`file_digest` then hashes the file once and computes its
MD5 and the multipart ETag for every candidate in the same pass, and, when asked, the file's
CRC32C/CRC32/CRC64NVME (awscrt, C, several GB/s), to compare with an object's stored full-object
checksum (:mod:`s3pump.plan.crccheck`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .config import MAX_PARTS
from .engine.multipart import multipart_etag, part_size_for
from .errors import SourceChangedError, UsageError, source_os_error
from .store.checksums import FullObjectChecksum
from .units import MIB

__all__ = [
    "COMMON_PART_SIZES_BYTES",
    "FileDigest",
    "candidate_part_sizes",
    "file_digest",
    "parse_etag",
]

#: Part sizes of common uploaders: 5 MiB (S3's minimum), 8 MiB (aws s3 cp, s3pump),
#: 16 MiB, 50 MiB (s5cmd), 64 MiB, 100 MiB.
COMMON_PART_SIZES_BYTES = (5 * MIB, 8 * MIB, 16 * MIB, 50 * MIB, 64 * MIB, 100 * MIB)
#: Read size of :func:`file_digest`: large enough that hashlib releases the GIL.
READ_BUFFER_BYTES = 1 * MIB
_MAX_CANDIDATES = 8
_ETAG_RE = re.compile(r"^([0-9a-f]{32})(?:-([1-9][0-9]{0,4}))?$")


def parse_etag(etag: str) -> tuple[str, int | None] | None:
    """``(hex, parts)`` of an unquoted ETag: ``parts`` is None for a single-part ETag, N for
    ``<hex>-N``. None when it is neither shape (some stores' opaque ETags)."""
    m = _ETAG_RE.match(etag.strip('"').lower())
    if m is None:
        return None
    return m.group(1), int(m.group(2)) if m.group(2) else None


def _count(size_bytes: int, part_size_bytes: int) -> int:
    return max(1, -(-size_bytes // part_size_bytes))


def candidate_part_sizes(size_bytes: int, parts: int, own_part_size_bytes: int) -> list[int]:
    """Part sizes (bytes) that split ``size_bytes`` into exactly ``parts`` parts, most likely first.

    Tried: s3pump's schedule for ``own_part_size_bytes`` (:func:`part_size_for`), then each
    common size as is, grown by s3pump's rule and doubled until it fits 10,000 parts
    (awscli's rule), then the smallest whole-MiB size giving ``parts`` parts. At most 8
    sizes; for ``parts == 1`` the answer is ``[size_bytes]`` (any part size gives the same ETag).
    """
    if parts <= 1:
        return [max(size_bytes, 1)]
    tried: list[int] = []

    def add(p: int) -> None:
        if p > 0 and p not in tried:
            tried.append(p)

    for base in (own_part_size_bytes, *COMMON_PART_SIZES_BYTES):
        add(base)
        with contextlib.suppress(UsageError):
            add(part_size_for(size_bytes, base))
        doubled = base
        while _count(size_bytes, doubled) > MAX_PARTS:
            doubled *= 2
        add(doubled)
    smallest = -(-size_bytes // parts)
    add(-(-smallest // MIB) * MIB)
    add(smallest)
    return [p for p in tried if _count(size_bytes, p) == parts][:_MAX_CANDIDATES]


@dataclass(frozen=True, slots=True)
class FileDigest:
    """What :func:`file_digest` found: the identity of the file it read (size in bytes,
    mtime/ctime in ns, inode), its hex MD5 ("" when not computed), ``multipart``: part size in
    bytes -> ETag, and ``crcs``: algorithm (``CRC32C``, ``CRC32``, ``CRC64NVME``) -> the file's CRC
    as S3 writes it (base64 of the big-endian value), for those computed."""

    size_bytes: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    md5: str
    multipart: dict[int, str] = field(default_factory=dict)
    #: the file's device (None when not known, e.g. from the hash cache; not compared: the cache keeps none)
    device: int | None = field(default=None, compare=False)
    crcs: dict[str, str] = field(default_factory=dict)

    def multipart_etag_for(self, part_size_bytes: int) -> str | None:
        """The multipart ETag for parts of ``part_size_bytes``, or None if not computed."""
        if part_size_bytes >= self.size_bytes > 0 and part_size_bytes not in self.multipart:
            return multipart_etag([bytes.fromhex(self.md5)]) if self.md5 else None
        return self.multipart.get(part_size_bytes)

    def has(self, *, whole: bool, part_sizes: Sequence[int], crcs: Sequence[str] = ()) -> bool:
        """Whether this digest already answers for the MD5 (``whole``), every part size and every CRC."""
        return ((not whole or bool(self.md5)) and all(self.multipart_etag_for(p) is not None for p in part_sizes)
                and all(c in self.crcs for c in crcs))

    def merged(self, other: FileDigest) -> FileDigest:
        """This digest plus what ``other`` (of the same file version) knows."""
        return FileDigest(self.size_bytes, self.mtime_ns, self.ctime_ns, self.inode, self.md5 or other.md5,
                          {**other.multipart, **self.multipart},
                          self.device if self.device is not None else other.device, {**other.crcs, **self.crcs})

    def same_file(self, other: FileDigest) -> bool:
        return (self.size_bytes, self.mtime_ns, self.ctime_ns, self.inode) == (
            other.size_bytes, other.mtime_ns, other.ctime_ns, other.inode)


class _PartHasher:
    __slots__ = ("digests", "hasher", "left", "part_size")

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self.left = part_size
        self.hasher = hashlib.md5()
        self.digests: list[bytes] = []

    def update(self, view: memoryview) -> None:
        off, n = 0, len(view)
        while off < n:
            take = min(self.left, n - off)
            self.hasher.update(view[off:off + take])
            off += take
            self.left -= take
            if self.left == 0:
                self.digests.append(self.hasher.digest())
                self.hasher = hashlib.md5()
                self.left = self.part_size

    def etag(self) -> str:
        digests = list(self.digests)
        if self.left != self.part_size or not digests:
            digests.append(self.hasher.digest())
        return multipart_etag(digests)


def file_digest(
    path: str, part_sizes: Sequence[int] = (), *, whole: bool = True, buffer_bytes: int = READ_BUFFER_BYTES,
    opener: Callable[[str], int] | None = None, crcs: Sequence[str] = (),
) -> FileDigest:
    """Read ``path`` once; return its MD5 (unless ``whole`` is False: ``md5`` is then ""),
    its multipart ETag for each of ``part_sizes`` and its CRC for each algorithm of ``crcs``
    (:data:`~s3pump.store.checksums.FULL_OBJECT_ALGORITHMS`). ``opener``: opens ``path`` for reading instead of
    ``os.open`` (sync's opens it beneath its root without following a symlink); it may raise a
    SourceError of its own.

    Reads ``buffer_bytes`` at a time into one reused buffer; hashlib releases the GIL on
    such buffers, so several threads hash in parallel. The identity in the result is the
    file's ``fstat`` before reading, checked again after.

    Raises:
        SourceUnreadableError: the file cannot be opened or read.
        SourceChangedError: its size, mtime or ctime changed while it was read.
    """
    try:
        fd = opener(path) if opener is not None else os.open(path, os.O_RDONLY)
    except OSError as e:
        raise source_os_error(str(path), e, "; check the file's permissions") from None
    try:
        st = os.fstat(fd)
        whole_md5 = hashlib.md5() if whole else None
        one_part = any(p >= st.st_size for p in part_sizes)
        if one_part and whole_md5 is None:  # a one-part ETag is the md5 of the MD5: needs the MD5
            whole_md5 = hashlib.md5()
        parts = [_PartHasher(p) for p in dict.fromkeys(part_sizes) if 0 < p < st.st_size]
        running = [FullObjectChecksum(a) for a in dict.fromkeys(crcs)]
        buf = bytearray(min(buffer_bytes, max(st.st_size, 1)))
        view = memoryview(buf)
        total = 0
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                chunk = view[:n]
                if whole_md5 is not None:
                    whole_md5.update(chunk)
                for p in parts:
                    p.update(chunk)
                for c in running:
                    c.update(chunk)
                total += n
        after = os.fstat(fd)
    except OSError as e:
        raise source_os_error(str(path), e) from None
    finally:
        os.close(fd)
    if total != st.st_size or (after.st_size, after.st_mtime_ns, after.st_ctime_ns) != (
            st.st_size, st.st_mtime_ns, st.st_ctime_ns):
        raise SourceChangedError(f"{path}: changed while it was hashed; rerun sync")
    return FileDigest(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                      whole_md5.hexdigest() if whole_md5 is not None else "",
                      {p.part_size: p.etag() for p in parts}, st.st_dev, {c.algorithm: c.base64() for c in running})
