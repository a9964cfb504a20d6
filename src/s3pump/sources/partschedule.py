"""The size of each part of a stream (``s3pump stream``, :mod:`s3pump.sources.stdin`).

S3 allows 10,000 parts of 5 MiB to 5 GiB (S3 API reference,
UploadPart). With an expected size, every part has the size that fits it in 10,000 parts. With
an unknown size the part size grows with the part number::

    parts 1 .. 1,000          P                   (P = --part-size, default 8 MiB: 7.8 GiB)
    then, every 100 parts     x 2, at most 5 GiB  (8 MiB: 16 MiB at part 1,001, 5 GiB from 1,901)

With P = 8 MiB that reaches 40.3 TiB in 10,000 parts (the ceiling is 48.8 TiB, which only
10,000 parts of exactly 5 GiB reach: give ``--expected-size`` for that).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MAX_PART_SIZE_BYTES, MAX_PARTS
from ..engine.multipart import part_size_for
from ..units import MIB

__all__ = ["PartSchedule"]


@dataclass(frozen=True, slots=True)
class PartSchedule:
    """The size of each part number of a stream (see the module docstring).

    ``flat_parts`` parts of ``start_bytes``, then the size doubles every ``double_every_parts``
    parts, up to ``max_part_bytes``; at most ``max_parts`` parts. Tests shrink all of these
    to show the growth on megabytes instead of terabytes.
    """

    start_bytes: int = 8 * MIB
    flat_parts: int = 1_000
    double_every_parts: int = 100
    max_part_bytes: int = MAX_PART_SIZE_BYTES
    max_parts: int = MAX_PARTS

    @classmethod
    def growing(cls, part_size_bytes: int) -> PartSchedule:
        """The schedule of a stream of unknown size starting at ``part_size_bytes``."""
        return cls(start_bytes=part_size_bytes)

    @classmethod
    def for_expected_size(cls, size_bytes: int, part_size_bytes: int) -> PartSchedule:
        """Fixed parts: ``part_size_bytes``, grown so ``size_bytes`` fits in 10,000 parts.

        Raises:
            UsageError: ``size_bytes`` is over 48.8 TiB.
        """
        size = part_size_for(size_bytes, part_size_bytes)
        return cls(start_bytes=size, flat_parts=MAX_PARTS)

    def part_size(self, part_number: int) -> int:
        """Bytes of part ``part_number`` (1-based)."""
        if part_number <= self.flat_parts:
            return self.start_bytes
        doublings = (part_number - self.flat_parts - 1) // self.double_every_parts + 1
        if doublings >= 40:
            return self.max_part_bytes
        return min(self.start_bytes << doublings, self.max_part_bytes)

    def capacity_bytes(self) -> int:
        """The largest stream the schedule can hold (the sum of all ``max_parts`` part sizes)."""
        total = 0
        n = 1
        while n <= self.max_parts:
            size = self.part_size(n)
            # parts of one size come in runs: add the run at once
            if n <= self.flat_parts:
                run_end = self.flat_parts
            elif size == self.max_part_bytes:
                run_end = self.max_parts
            else:
                run_end = self.flat_parts + ((n - self.flat_parts - 1) // self.double_every_parts + 1) \
                    * self.double_every_parts
            run_end = min(run_end, self.max_parts)
            total += size * (run_end - n + 1)
            n = run_end + 1
        return total
