"""Cutting planned items into shards: the unit of work a cluster worker runs.

A shard holds at most ``max_files`` files and ``max_bytes`` bytes (defaults 2,000 files and
4 GiB, fpsync's job size). Dask schedules a few hundred tasks a second, so a task per file would
make the scheduler the bottleneck; a shard of 2,000 small files is seconds of work for one
worker, and 4 GiB is about half a minute of one node's 1 Gbit/s, short enough that a worker
lost mid-shard costs little to redo.

A file of ``max_bytes`` or more is a shard of its own; its parts are not spread over workers.
The engine already sends one file's parts concurrently (``max_parts_in_flight``), so one worker
can fill its node's bandwidth with one file; spreading the parts would need the upload ID and the
part list shared between workers and one of them to complete the upload, and a tree with large
files has many of them, which spread over the workers as shards anyway. The cost: one file far
larger than the rest is bounded by one node's bandwidth (see docs/cluster.md).

Shards are idempotent: their keys are deterministic, and the coordinator's journal skips what
is done, so a shard run twice (a worker died) writes the same objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..items import UploadItem

__all__ = ["DEFAULT_SHARD_BYTES", "DEFAULT_SHARD_FILES", "Shard", "cut_shards"]

DEFAULT_SHARD_FILES = 2000
DEFAULT_SHARD_BYTES = 4 * 1024**3


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (in planning order, from 0) of a run: the files one task uploads.

    Each item is a plain file (``path`` set) with its size and mtime as planned, and its
    resume record if the journal has its multipart upload open. No credentials: a worker takes
    those from its own environment.
    """

    index: int
    items: tuple[UploadItem, ...]

    @property
    def size_bytes(self) -> int:
        return sum(i.size_bytes for i in self.items)


def cut_shards(items: Iterable[UploadItem], *, max_files: int = DEFAULT_SHARD_FILES,
               max_bytes: int = DEFAULT_SHARD_BYTES) -> Iterator[Shard]:
    """Group ``items`` (plain files, in planning order) into shards of at most ``max_files`` files
    and ``max_bytes`` bytes; a file of ``max_bytes`` or more is a shard by itself.

    Lazy: a shard is yielded as soon as it is full, so memory holds one shard being filled.

    Raises:
        ValueError: ``max_files`` or ``max_bytes`` below 1.
    """
    if max_files < 1 or max_bytes < 1:
        raise ValueError("a shard holds at least one file and one byte")
    index = 0
    batch: list[UploadItem] = []
    size = 0
    for item in items:
        if item.size_bytes >= max_bytes:
            yield Shard(index, (item,))
            index += 1
            continue
        if batch and (len(batch) >= max_files or size + item.size_bytes > max_bytes):
            yield Shard(index, tuple(batch))
            index += 1
            batch, size = [], 0
        batch.append(item)
        size += item.size_bytes
    if batch:
        yield Shard(index, tuple(batch))
