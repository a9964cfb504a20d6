"""The stream reader's helpers (:mod:`s3pump.sources.stdin`): what it reads from (:class:`Readable`), the threads
that hash whole parts beside it (:class:`PartHasher`), a pipe's larger buffer (:func:`grow_pipe`), and glibc's
malloc arenas shared by awscrt's threads (:func:`share_malloc_arenas`).
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import stat
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..units import MIB

__all__ = ["PartHasher", "Readable", "grow_pipe", "share_malloc_arenas"]


class Readable(Protocol):
    """A binary stream: ``read(n)`` returns up to ``n`` bytes, ``b""`` at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


class PartHasher:
    """A thread feeding whole parts, in order, to one hashlib object; ``ack(n)`` after each."""

    def __init__(self, digest: Any, ack: Callable[[int], None]) -> None:
        self._digest = digest
        self._ack = ack
        self._q: queue.SimpleQueue[tuple[int, memoryview] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"s3pump-stream-{digest.name}", daemon=True)
        self._thread.start()

    def put(self, part_number: int, body: memoryview) -> None:
        self._q.put((part_number, body))

    def stop(self) -> None:
        self._q.put(None)

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        update = self._digest.update
        while (job := self._q.get()) is not None:
            update(job[1])
            self._ack(job[0])


def grow_pipe(readable: Readable) -> None:
    """Give a pipe on the input a 1 MiB buffer (Linux ``F_SETPIPE_SZ``; default 64 KiB), so an
    8 MiB part takes 8 reads and producer wakeups instead of 128. Best effort."""
    with contextlib.suppress(AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fd = readable.fileno()  # type: ignore[attr-defined]
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            import fcntl

            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), MIB)


def share_malloc_arenas() -> None:
    """Let awscrt's threads share two glibc malloc arenas (``mallopt(M_ARENA_MAX, 2)``).

    awscrt copies each part into an 8 MiB send buffer it mallocs on its event-loop threads and
    frees when the request ends. With one arena per thread (glibc's default, up to 8 per core),
    a freed buffer sits in one thread's arena while another thread's arena grows for the next
    one: RSS drifted 8-18 MiB above the memory bound on a 4 GiB stream. Two shared arenas reuse
    the freed buffers (measured: peak RSS back at the bound, no extra CPU). Forcing each buffer
    into its own mmap (a fixed ``M_MMAP_THRESHOLD``) bounds RSS too, but faults in and zeroes
    every page of every part again: about 0.3 CPU-s per GiB more. Call it before the awscrt
    client starts its threads; it is process-wide. Not glibc (musl, macOS): nothing to do.
    """
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX = -8 (malloc.h)
