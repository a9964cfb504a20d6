"""Full-object checksums (CRC64NVME, CRC32C, CRC32), computed incrementally as an object is read.

S3 checks a multipart upload's full-object checksum at CompleteMultipartUpload: the client
declares ``x-amz-checksum-type: FULL_OBJECT`` at CreateMultipartUpload and sends the whole
object's value at completion (S3 User Guide, "Checking object integrity in Amazon S3"). Values go
on the wire as base64 of the big-endian CRC (4 bytes for CRC32/CRC32C, 8 for CRC64NVME). awscrt's
CRC functions run in C at several GB/s and continue from a previous value.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

from awscrt import checksums

__all__ = ["FULL_OBJECT_ALGORITHMS", "FullObjectChecksum", "full_checksum"]

_FUNCTIONS: dict[str, tuple[Callable[..., int], int]] = {
    "CRC64NVME": (checksums.crc64nvme, 8),
    "CRC32C": (checksums.crc32c, 4),
    "CRC32": (checksums.crc32, 4),
}
#: ``combine(crc of A, crc of B, len(B))`` = crc of A + B, without reading either again.
_COMBINE: dict[str, Callable[[int, int, int], int]] = {
    "CRC64NVME": checksums.combine_crc64nvme,
    "CRC32C": checksums.combine_crc32c,
    "CRC32": checksums.combine_crc32,
}
#: The algorithms S3 offers full-object checksums for.
FULL_OBJECT_ALGORITHMS = frozenset(_FUNCTIONS)


class FullObjectChecksum:
    """The running checksum of an object's bytes, fed in order with :meth:`update`."""

    __slots__ = ("_fn", "_size", "algorithm", "crc")

    def __init__(self, algorithm: str) -> None:
        self.algorithm = algorithm.upper()
        self._fn, self._size = _FUNCTIONS[self.algorithm]
        self.crc = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.crc = self._fn(data, self.crc)

    def part(self, data: bytes | bytearray | memoryview, crc: int = 0) -> int:
        """The CRC of ``data`` alone (continuing ``crc``, a CRC of the bytes just before it within
        the same part); this object's running value does not change (see :meth:`append`)."""
        return self._fn(data, crc)

    def append(self, part_crc: int, length_bytes: int) -> None:
        """Extend the running value by a block of ``length_bytes`` whose CRC is ``part_crc``.

        A stream computes each part's CRC once, sends it as the part's checksum, and combines it
        into the whole object's: one pass over the bytes for both.
        """
        self.crc = _COMBINE[self.algorithm](self.crc, part_crc, length_bytes)

    def encode(self, crc: int) -> str:
        """``crc`` (of this algorithm) as S3 writes it: base64 of the big-endian value."""
        return base64.b64encode(crc.to_bytes(self._size, "big")).decode()

    def base64(self) -> str:
        return self.encode(self.crc)

    def value(self) -> tuple[str, str]:
        """``(algorithm, base64 value)``, as :meth:`Store.complete_multipart_upload` takes it."""
        return self.algorithm, self.base64()


def full_checksum(algorithm: str, data: bytes | bytearray | memoryview) -> tuple[str, str]:
    """``(algorithm, base64 value)`` of ``data`` in one go."""
    c = FullObjectChecksum(algorithm)
    c.update(data)
    return c.value()
