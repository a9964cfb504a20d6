"""``s3pump generate``: test files, fast.

Bodies are slices of one random buffer with the file's index stamped in front, so
every file differs (distinct MD5s) while generation costs one write per file.
Files are spread over subdirectories of ``files_per_dir`` entries.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..units import MIB

__all__ = ["GenerateReport", "generate"]

_POOL_BYTES = 4 * MIB
_CHUNK_BYTES = 4 * MIB


@dataclass(frozen=True, slots=True)
class GenerateReport:
    files: int
    bytes: int
    directory: str


def generate(
    directory: str | Path,
    *,
    count: int,
    size_bytes: int | None = None,
    size_min_bytes: int | None = None,
    size_max_bytes: int | None = None,
    files_per_dir: int = 1000,
    seed: int = 0,
    prefix: str = "file",
) -> GenerateReport:
    """Write ``count`` files under ``directory``: each ``size_bytes`` long, or of a size drawn
    log-uniformly from ``[size_min_bytes, size_max_bytes]``.

    Raises:
        UsageError: bad sizes or count; ``directory`` is a file or cannot be created (exit 2).
    """
    if count < 0:
        raise UsageError("--count must be >= 0")
    if size_bytes is None and (size_min_bytes is None or size_max_bytes is None):
        raise UsageError("give --size, or both --size-min and --size-max")
    if size_bytes is None and not 0 <= (size_min_bytes or 0) <= (size_max_bytes or 0):
        raise UsageError("--size-min must be <= --size-max")
    if files_per_dir < 1:
        raise UsageError("--files-per-dir must be >= 1")
    rng = random.Random(seed)
    pool = rng.randbytes(_POOL_BYTES)
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a directory; give a directory to write into")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{root}: cannot create the directory: {e.strerror}") from None
    width = len(str(max(count - 1, 0)))
    total = 0
    for i in range(count):
        if size_bytes is not None:
            size = size_bytes
        else:
            assert size_min_bytes is not None and size_max_bytes is not None
            lo, hi = max(size_min_bytes, 1), max(size_max_bytes, 1)
            size = round(lo * (hi / lo) ** rng.random()) if hi > lo else lo
            if size_min_bytes == 0 and rng.random() < 0.01:
                size = 0
        sub = root if count <= files_per_dir else root / f"d{i // files_per_dir:05d}"
        if i % files_per_dir == 0:
            sub.mkdir(exist_ok=True)
        path = sub / f"{prefix}{i:0{width}d}.bin"
        _write(path, i, size, pool, rng)
        total += size
    return GenerateReport(count, total, str(root))


def _write(path: Path, index: int, size: int, pool: bytes, rng: random.Random) -> None:
    stamp = index.to_bytes(8, "little")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if size == 0:
            return
        written = 0
        first = True
        while written < size:
            n = min(_CHUNK_BYTES, size - written)
            start = rng.randrange(0, _POOL_BYTES - n + 1) if n < _POOL_BYTES else 0
            chunk = pool[start : start + n]
            if first:
                chunk = (stamp + chunk[8:])[:n] if n >= 8 else stamp[:n]
                first = False
            os.write(fd, chunk)
            written += n
    finally:
        os.close(fd)
