"""Count ahead: a walk of names and sizes only, run ahead of the upload, so a progress view has a total
(and an ETA) within a second or two, long before the real walk (held back by the engine's bounded
queue) gets to the end of the tree.

The count lists the same directories as :func:`~s3pump.sources.walk.walk_items`, the same way
(by descriptor, :mod:`s3pump.sources.dirfd`: a subdirectory opened relative to its parent, without
following a symlink unless ``follow_symlinks``, and only if it is the directory its parent listed),
with the same filter and symlink rule, so it never leaves the named tree. It holds no items: two
counters, and the open directories of the current path with their subdirectories' names still to
count. It counts in two passes: names only first (the directories' listings, no file's ``stat``:
about four times as fast), which fixes the number of files (``files_final``), then the sizes. Its
totals are :class:`~s3pump.events.Discovered` events, every ``interval_s``, at the end of the first
pass, and once at the end (``final``).

:func:`counted_ahead` runs it beside a walk: the walk's own non-final totals (which lag behind) are
dropped while the count's are in force; the walk's final totals, what it really found, end the count
and are passed on (a tree that changed meanwhile, or a name that is no valid key, is counted right
in the end).
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..events import Discovered
from .dirfd import open_dir
from .pathfilter import PathFilter

__all__ = ["CountAhead", "count_tree", "counted_ahead"]


class CountAhead:
    """A count of ``roots``' files and bytes in a thread of its own (daemon), reported to ``emit``.

    ``emit`` is called from the count's thread (an :class:`~s3pump.events.EventBus`' ``emit`` is
    thread-safe), never after :meth:`stop` returned. ``interval_s``: seconds between non-final totals.
    """

    def __init__(self, roots: Sequence[str], emit: Callable[[Discovered], None], *, follow_symlinks: bool = False,
                 path_filter: PathFilter | None = None, interval_s: float = 0.25) -> None:
        self.roots = list(roots)
        self.follow = follow_symlinks
        self.keep = path_filter or PathFilter()
        self.interval_s = interval_s
        self.files = 0
        self.bytes = 0
        self.files_total: int | None = None  # the first pass's count (names only), once it is done
        self._sizes = False  # the second pass: files are stat'ed for their sizes
        self.finished = False  # the count reached the end of every root (and said so, unless stopped)
        self._emit = emit
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3pump-count-ahead", daemon=True)
        self._last_s = 0.0

    def start(self) -> CountAhead:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No event after this returns (thread-safe); the thread ends at its next directory."""
        with self._lock:
            self._stopped.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _say(self, final: bool) -> None:
        if final:
            event = Discovered(self.files, self.bytes, final=True)
        elif self.files_total is not None:  # counting sizes: the files' total is known
            event = Discovered(self.files_total, self.bytes, files_final=True)
        else:
            event = Discovered(self.files, 0)
        with self._lock:
            if not self._stopped.is_set():
                self._emit(event)

    def _tick(self) -> bool:
        """Say the totals so far when ``interval_s`` has passed; False once stopped."""
        now = time.monotonic()
        if now - self._last_s >= self.interval_s:
            self._last_s = now
            self._say(False)
        return not self._stopped.is_set()

    def _run(self) -> None:
        try:
            self._last_s = time.monotonic()
            for sizes in (False, True):
                self._sizes = sizes
                self.files = self.bytes = 0
                for root in self.roots:
                    if not self._count_root(root):
                        return
                if not sizes:
                    self.files_total = self.files
                    self._say(False)
            self.finished = True
            self._say(True)
        except Exception:  # a count is a hint: the walk's own totals stand in for it
            self.stop()

    def _count_root(self, root: str) -> bool:
        follow = self.follow
        try:
            st = os.stat(root) if follow or not os.path.islink(root) else os.lstat(root)
        except OSError:
            return True
        if stat_mod.S_ISREG(st.st_mode):  # a file named on the command line: no filter applies
            self.files += 1
            self.bytes += st.st_size
            return True
        if not stat_mod.S_ISDIR(st.st_mode):
            return True
        try:
            fd = open_dir(root, None, follow, (st.st_dev, st.st_ino))
        except OSError:
            return True
        seen = {(st.st_dev, st.st_ino)} if follow else None
        # depth first, as the walk: each frame is an open directory and its subdirectories still to count
        frames: list[tuple[int, list[tuple[str, str, tuple[int, int]]]]] = []
        try:
            frames.append((fd, []))  # registered before its scan: the finally closes it, whatever happens
            frames[-1] = (fd, self._scan(fd, "", seen))
            while frames:
                if not self._tick():
                    return False
                parent_fd, todo = frames[-1]
                if not todo:
                    os.close(parent_fd)
                    frames.pop()
                    continue
                name, rel, ident = todo.pop()
                try:
                    fd = open_dir(name, parent_fd, follow, ident)
                except OSError:
                    continue
                frames.append((fd, []))  # as the root's: registered before its scan
                frames[-1] = (fd, self._scan(fd, rel, seen))
        finally:
            for open_fd, _ in frames:
                os.close(open_fd)
        return True

    def _scan(self, fd: int, reldir: str, seen: set[tuple[int, int]] | None) -> list[tuple[str, str, tuple[int, int]]]:
        """Count the regular files of the open directory ``fd`` (``reldir``: its path under its root, with a
        trailing ``/``); its subdirectories as ``(name, relative path/, (device, inode))``."""
        follow = self.follow
        keep = self.keep if self.keep.active else None
        sizes = self._sizes
        subdirs = []
        files = size = 0
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    try:
                        if not follow and entry.is_symlink():
                            continue
                        if entry.is_dir(follow_symlinks=follow):
                            st = entry.stat(follow_symlinks=follow)
                            ident = (st.st_dev, st.st_ino)
                            if seen is not None:
                                if ident in seen:
                                    continue
                                seen.add(ident)
                            subdirs.append((entry.name, f"{reldir}{entry.name}/", ident))
                        elif entry.is_file(follow_symlinks=follow):
                            if keep is not None and not keep(f"{reldir}{entry.name}"):
                                continue
                            if sizes:
                                size += entry.stat(follow_symlinks=follow).st_size
                            files += 1
                    except OSError:
                        continue
        except OSError:
            pass
        self.files += files
        self.bytes += size
        return subdirs


def count_tree(roots: Sequence[str], *, follow_symlinks: bool = False,
               path_filter: PathFilter | None = None) -> tuple[int, int]:
    """The files and bytes a count of ``roots`` finds, counted in this thread (for tests and benchmarks)."""
    counter = CountAhead(roots, lambda _e: None, follow_symlinks=follow_symlinks, path_filter=path_filter,
                         interval_s=float("inf"))
    counter._run()
    return counter.files, counter.bytes


def counted_ahead(items: Iterable[Any], roots: Sequence[str], emit: Callable[[Discovered], None], *,
                  follow_symlinks: bool = False, path_filter: PathFilter | None = None,
                  on_stop: Callable[[Callable[[], None]], None] | None = None) -> Iterator[Any]:
    """``items`` (a walk of ``roots`` with its ``Discovered`` events) with a :class:`CountAhead` of the
    same roots started beside it on the first item: the walk's non-final ``Discovered`` are dropped
    (the count's, ahead of them, stand), its final one stops the count and is passed on. The count is
    stopped too when the items end or are abandoned, and by ``on_stop`` (e.g. a run's ``on_cancel``)."""
    counter = CountAhead(roots, emit, follow_symlinks=follow_symlinks, path_filter=path_filter)
    if on_stop is not None:
        on_stop(counter.stop)
    counter.start()
    try:
        for obj in items:
            if isinstance(obj, Discovered):
                if not obj.final:
                    continue
                counter.stop()  # what the walk found is the truth: no count's total after it
            yield obj
    finally:
        counter.stop()
