"""External sort and spool: sort more records than fit in memory, in bounded memory.

:class:`ExternalSorter` keeps up to ``max_items_in_memory`` records; beyond that it
sorts them and writes them to a temporary file as a sorted run (``marshal`` chunks),
and at the end merges all runs with :func:`heapq.merge`. Memory is then about
``max_items_in_memory`` records while adding, and ``runs * chunk`` records while
merging. Records are tuples of marshal-able values whose first field is the sort
key (for s3pump: the key's UTF-8 bytes, which is S3's listing order).

:class:`Spool` is an append-only list that spills to disk the same way (e.g. the
keys to delete at the end of a sync).
"""

from __future__ import annotations

import heapq
import marshal
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["ExternalSorter", "Spool"]

#: Records per marshal chunk in a run file (read back one chunk per run at a time).
CHUNK_ITEMS = 2000


def _read_chunks(f: IO[bytes]) -> Iterator[Any]:
    f.seek(0)
    while True:
        try:
            chunk = marshal.load(f)
        except EOFError:
            return
        yield from chunk


def _write_chunks(f: IO[bytes], records: list[Any]) -> None:
    for i in range(0, len(records), CHUNK_ITEMS):
        marshal.dump(records[i:i + CHUNK_ITEMS], f)
    f.flush()


class ExternalSorter:
    """Sorts records (tuples) ascending, spilling sorted runs to ``tmp_dir`` beyond
    ``max_items_in_memory``. Use once: :meth:`add` everything, then iterate :meth:`sorted`.
    :meth:`close` (or the end of :meth:`sorted`) deletes the temporary files.

    Raises:
        OSError: the temporary directory is full or not writable.
    """

    def __init__(self, max_items_in_memory: int = 100_000, tmp_dir: str | None = None) -> None:
        if max_items_in_memory < 1:
            raise ValueError("max_items_in_memory must be >= 1")
        self.max_items_in_memory = max_items_in_memory
        self.tmp_dir = tmp_dir
        self.count = 0
        self._buffer: list[Any] = []
        self._runs: list[IO[bytes]] = []

    @property
    def runs(self) -> int:
        """Sorted runs spilled to disk so far."""
        return len(self._runs)

    def add(self, record: Any) -> None:
        self._buffer.append(record)
        self.count += 1
        if len(self._buffer) >= self.max_items_in_memory:
            self._spill()

    def _spill(self) -> None:
        self._buffer.sort()
        f = tempfile.TemporaryFile(prefix="s3pump-sort-", dir=self.tmp_dir)  # noqa: SIM115 - closed in close()
        self._runs.append(f)
        _write_chunks(f, self._buffer)
        self._buffer = []

    def sorted(self) -> Iterator[Any]:
        """All records in ascending order (a merge of the runs and the in-memory rest)."""
        try:
            self._buffer.sort()
            if not self._runs:
                buffer, self._buffer = self._buffer, []
                yield from buffer
                return
            if self._buffer:
                self._spill()
            yield from heapq.merge(*(_read_chunks(f) for f in self._runs))
        finally:
            self.close()

    def close(self) -> None:
        for f in self._runs:
            f.close()
        self._runs = []
        self._buffer = []


class Spool:
    """An append-only sequence that keeps ``max_items_in_memory`` items and spills the rest
    to a temporary file; iterate it (in insertion order) once everything is appended."""

    def __init__(self, max_items_in_memory: int = 10_000, tmp_dir: str | None = None) -> None:
        self.max_items_in_memory = max_items_in_memory
        self.tmp_dir = tmp_dir
        self.count = 0
        self._buffer: list[Any] = []
        self._file: IO[bytes] | None = None

    def append(self, item: Any) -> None:
        self._buffer.append(item)
        self.count += 1
        if len(self._buffer) >= self.max_items_in_memory:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="s3pump-spool-", dir=self.tmp_dir)  # noqa: SIM115
            _write_chunks(self._file, self._buffer)
            self._buffer = []

    def __iter__(self) -> Iterator[Any]:
        if self._file is not None:
            self._file.seek(0, os.SEEK_END)
            end = self._file.tell()
            self._file.seek(0)
            while self._file.tell() < end:
                yield from marshal.load(self._file)
        yield from self._buffer

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buffer = []
