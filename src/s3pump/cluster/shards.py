"""Cutting planned items into shards: the unit of work a cluster worker runs.

A shard holds at most ``max_files`` files and ``max_bytes`` bytes (defaults 2,000 files and
4 GiB, fpsync's job size). Dask schedules a few hundred tasks a second, so a task per file would
make the scheduler the bottleneck; a shard of 2,000 small files is seconds of work for one
worker, and 4 GiB is about half a minute of one node's 1 Gbit/s, short enough that a worker
lost mid-shard costs little to redo.

A file of ``max_bytes`` or more is a shard of its own. A file of ``S3PUMP_SPLIT_SIZE`` or more
(default ``2 x max_bytes``) is not in any shard: its parts are spread over the workers as ranges
(:mod:`.parts`), the coordinator creating and completing its multipart upload.

Shards are idempotent: their keys are deterministic, and the coordinator's journal skips what
is done, so a shard run twice (a worker died) writes the same objects.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..errors import UsageError
from ..items import UploadItem

__all__ = ["DEFAULT_SHARD_BYTES", "DEFAULT_SHARD_FILES", "FORECAST_AFTER_S", "SPREAD_MIN_BYTES", "SPREAD_MIN_FILES",
           "Shard", "cut_shards", "limits_from_env", "split_bytes_from_env"]

DEFAULT_SHARD_FILES = 2000
DEFAULT_SHARD_BYTES = 4 * 1024**3
#: The least bytes, or files, of each shard a tail is cut again into to spread it over the workers.
SPREAD_MIN_BYTES = 8 * 1024**2
SPREAD_MIN_FILES = 100
#: Seconds of transfer after which the coordinator emits its forecast (ClusterForecast).
FORECAST_AFTER_S = 60


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


def limits_from_env(env: Mapping[str, str] | None = None) -> dict[str, int | None]:
    """``shard_files``, ``shard_bytes``, ``worker_bwlimit_bps`` and ``forecast_after_s`` from
    ``S3PUMP_SHARD_FILES``, ``S3PUMP_SHARD_SIZE`` (e.g. ``4GiB``), ``S3PUMP_WORKER_BWLIMIT`` (e.g.
    ``8MB``; bytes/s per worker) and ``S3PUMP_CLUSTER_FORECAST_AFTER`` (seconds, default 60).

    Raises:
        UsageError: a malformed value.
    """
    from ..units import parse_size_bytes

    if env is None:
        env = os.environ
    files = env.get("S3PUMP_SHARD_FILES")
    if files is not None and not files.strip().isdigit():
        raise UsageError(f"S3PUMP_SHARD_FILES={files!r}: give a whole number of files")
    size = env.get("S3PUMP_SHARD_SIZE")
    cap = env.get("S3PUMP_WORKER_BWLIMIT")
    after = env.get("S3PUMP_CLUSTER_FORECAST_AFTER")
    if after is not None and not after.strip().isdigit():
        raise UsageError(f"S3PUMP_CLUSTER_FORECAST_AFTER={after!r}: give whole seconds")
    return {
        "shard_files": int(files) if files else DEFAULT_SHARD_FILES,
        "shard_bytes": parse_size_bytes(size, what="S3PUMP_SHARD_SIZE") if size else DEFAULT_SHARD_BYTES,
        "worker_bwlimit_bps": parse_size_bytes(cap, what="S3PUMP_WORKER_BWLIMIT") if cap else None,
        "forecast_after_s": int(after) if after else FORECAST_AFTER_S,
    }


def split_bytes_from_env(shard_bytes: int, env: Mapping[str, str] | None = None) -> int:
    """The size from which a file's parts are spread over the workers (:mod:`.parts`):
    ``S3PUMP_SPLIT_SIZE`` (e.g. ``1GiB``), by default twice ``shard_bytes``.

    Raises:
        UsageError: a malformed value.
    """
    from ..units import parse_size_bytes

    size = (os.environ if env is None else env).get("S3PUMP_SPLIT_SIZE")
    return parse_size_bytes(size, what="S3PUMP_SPLIT_SIZE") if size else 2 * shard_bytes


def cut_shards(items: Iterable[UploadItem], *, max_files: int = DEFAULT_SHARD_FILES,
               max_bytes: int = DEFAULT_SHARD_BYTES, spread: int = 1) -> Iterator[Shard]:
    """Group ``items`` (plain files, in planning order) into shards of at most ``max_files`` files
    and ``max_bytes`` bytes; a file of ``max_bytes`` or more is a shard by itself.

    ``spread``: how many shards can run at once (the cluster's worker threads). The last shards'
    worth of files (up to ``spread - 1`` full shards and the one being filled) is held back until
    the items end, then cut again into as many shards as greedy cutting makes, or more, up to
    ``spread``, where the tail is large enough (:data:`SPREAD_MIN_BYTES` or :data:`SPREAD_MIN_FILES`
    each), of about equal bytes: 60 MiB in 60 files on 2 workers is 2 shards of 30 MiB, and a
    large tree's last shards end together. ``spread=1``: plain greedy cutting.

    Lazy: a shard is yielded as soon as ``spread`` of them are full, so memory holds that many.

    Raises:
        ValueError: ``max_files``, ``max_bytes`` or ``spread`` below 1.
    """
    if max_files < 1 or max_bytes < 1 or spread < 1:
        raise ValueError("a shard holds at least one file and one byte, and at least one runs at once")
    index = 0
    held: list[list[UploadItem]] = []  # full shards held back (at most spread - 1)
    batch: list[UploadItem] = []
    size = 0
    for item in items:
        if item.size_bytes >= max_bytes:
            yield Shard(index, (item,))
            index += 1
            continue
        if batch and (len(batch) >= max_files or size + item.size_bytes > max_bytes):
            held.append(batch)
            batch, size = [], 0
            if len(held) >= spread:
                yield Shard(index, tuple(held.pop(0)))
                index += 1
        batch.append(item)
        size += item.size_bytes
    tail = [i for b in held for i in b] + batch
    if not tail:
        return
    greedy = len(held) + 1
    tail_bytes = sum(i.size_bytes for i in tail)
    wide = min(spread, len(tail), max(tail_bytes // SPREAD_MIN_BYTES, len(tail) // SPREAD_MIN_FILES))
    chunks = _even(tail, max(greedy, wide), max_files) if wide > greedy else [*held, batch]
    for chunk in chunks:
        yield Shard(index, tuple(chunk))
        index += 1


def _even(items: list[UploadItem], n: int, max_files: int) -> list[list[UploadItem]]:
    """``items`` cut, in order, into ``n`` (<= len) chunks of about equal bytes and at most
    ``max_files`` files each (``n >= ceil(len / max_files)``)."""
    out: list[list[UploadItem]] = []
    left = sum(i.size_bytes for i in items)
    pos = 0
    for k in range(n, 0, -1):
        target = left / k
        chunk: list[UploadItem] = []
        size = 0
        while pos < len(items):
            s = items[pos].size_bytes
            if chunk and len(chunk) >= max_files:
                break
            after = len(items) - pos  # this one and those after it
            must = after > (k - 1) * max_files  # the later chunks cannot hold them all
            if chunk and not must and (after <= k - 1 or size + s / 2 > target):
                break
            chunk.append(items[pos])
            size += s
            pos += 1
        out.append(chunk)
        left -= size
    return [c for c in out if c]
