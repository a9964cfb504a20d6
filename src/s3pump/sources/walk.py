"""Streaming directory walk: local paths become :class:`UploadItem` s through a bounded queue.

The walk runs in its own thread and hands items over in small batches through a
queue of at most ``queue_size`` items, so memory stays flat however many files
there are. Symbolic links are skipped unless ``follow_symlinks``; when they are
followed, a directory reached twice through links is a loop and is reported.

:func:`walk_part` walks a bounded part of a tree and hands back the directories it did not reach:
``--cluster`` runs it in walk tasks on the workers (:mod:`s3pump.cluster.treewalk`), with the same
per-directory scan, filters, symlink rule and keys as :func:`walk_items`.

Key mapping (as ``aws s3 cp --recursive``):

* a directory ``D``: ``prefix/<path relative to D>``;
* a file ``F``: ``prefix/<basename>``; but a single file sent to a destination
  that does not end in ``/`` is written to exactly that key.

Key text (``--normalize-keys``, :class:`~s3pump.sources.keynames.KeyNames`): a name's bytes as they
are (``none``; a tree holding names not in Unicode NFC, as macOS writes them, is warned about once), or each name in
NFC (``nfc``), so a macOS tree and a Linux tree of the same files give the same keys. Names of one
directory that are one name in NFC are refused (the later one is an item with an error).

Filters: :mod:`.pathfilter` (the aws cli's rule); Content-Type by name: :mod:`.content_types`.
"""

from __future__ import annotations

import collections
import os
import stat as stat_mod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    InvalidKeyError,
    S3PumpError,
    SourceNotFoundError,
    SourceUnreadableError,
    WorkerMismatchError,
    source_os_error,
)
from ..events import Discovered, EntrySkipped
from ..fileid import FileIdentity
from ..items import UploadItem
from ..store.base import ObjectAttributes
from ..urls import S3Url, join_key, sanitize_key
from .content_types import attrs_by_content_type
from .dirfd import open_dir
from .handoff import threaded as _threaded
from .keynames import AS_IS as _AS_IS
from .keynames import KeyNames
from .pathfilter import PathFilter

__all__ = [
    "WalkDir",
    "WalkPart",
    "WalkTotals",
    "exact_key_for",
    "inode_of",
    "root_item",
    "skipped_line",
    "walk_items",
    "walk_part",
]

_BATCH = 256


#: Skipped entries kept for events until the consumer drains them; beyond, they are only counted.
MAX_PENDING_SKIPS = 10_000


@dataclass(slots=True)
class WalkTotals:
    """Counters of what the walk found so far (the walk's own; reported as Discovered events), and
    the entries it passed over: ``skipped`` counts them by kind (``symlink``, ``fifo``, ``socket``,
    ``device``, ``broken symlink``); :meth:`drain_skips` hands their paths over (EntrySkipped events)."""

    files: int = 0
    bytes: int = 0
    finished: bool = False
    skipped: dict[str, int] = field(default_factory=dict)
    _pending: collections.deque[tuple[str, str]] = field(default_factory=collections.deque)

    def skip(self, path: str, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1
        if len(self._pending) < MAX_PENDING_SKIPS:
            self._pending.append((path, kind))

    def drain_skips(self) -> list[tuple[str, str]]:
        """The ``(path, kind)`` skipped since the last call (thread-safe with one walk thread)."""
        out = []
        while self._pending:
            out.append(self._pending.popleft())
        return out



def skipped_line(skipped: dict[str, int]) -> str | None:
    """One summary line of skipped entries by kind, e.g. ``skipped 2 symlinks (not followed;
    --follow-symlinks follows them), 1 fifo: not regular files``; None when nothing was skipped."""
    if not skipped:
        return None
    parts = []
    for kind, n in sorted(skipped.items()):
        noun = kind if n == 1 else f"{kind}s"
        parts.append(f"{n} {noun}" + (" (not followed; --follow-symlinks follows them)" if kind == "symlink" else ""))
    return "skipped " + ", ".join(parts) + ": not regular files"



def _error_item(source: str, key: str, error: S3PumpError) -> UploadItem:
    return UploadItem(key=key, size_bytes=0, source=source, error=error)


def exact_key_for(roots: Sequence[str], dest: S3Url) -> bool:
    """Whether a file root is written to exactly ``dest.prefix`` (one root, a prefix not ending in ``/``)."""
    return len(roots) == 1 and dest.prefix != "" and not dest.prefix.endswith("/")


def root_item(
    root: str, dest: S3Url, exact_key: bool, follow: bool,
    attrs_for: Callable[[str], ObjectAttributes], totals: WalkTotals, names: KeyNames = _AS_IS,
) -> UploadItem | os.stat_result:
    """What a root is: a file (its item, keyed as described in the module docstring; ``exact_key``:
    see :func:`exact_key_for`; ``names``: :class:`KeyNames`), one that cannot be walked (an item
    with ``error`` set), or a directory (its ``stat`` result, to walk)."""
    try:
        st = os.stat(root) if follow or not os.path.islink(root) else os.lstat(root)
    except FileNotFoundError:
        return _error_item(root, "", SourceNotFoundError(f"{root}: no such file or directory"))
    except OSError as e:
        return _error_item(root, "", source_os_error(root, e))
    if stat_mod.S_ISREG(st.st_mode):
        name = os.path.basename(root)
        key = dest.prefix if exact_key else join_key(dest.prefix, names(name, root))
        return _file_item(root, key, st, attrs_for, totals)
    if not stat_mod.S_ISDIR(st.st_mode):
        return _error_item(root, "", SourceUnreadableError(f"{root}: not a regular file or directory"))
    return st


def _walk_one(
    root: str, dest: S3Url, exact_key: bool, keep: PathFilter, follow: bool,
    attrs_for: Callable[[str], ObjectAttributes], totals: WalkTotals, names: KeyNames,
) -> Iterator[UploadItem]:
    """One root's walk, depth first, by directory file descriptor (see :mod:`s3pump.sources.dirfd`):
    the directories on the current path are held open, each subdirectory is opened relative to its
    parent's descriptor (without following a symlink, unless ``follow``) and must be the directory
    its parent listed, so a directory replaced by a link while the walk was queued is not entered."""
    st = root_item(root, dest, exact_key, follow, attrs_for, totals, names)
    if isinstance(st, UploadItem):
        yield st
        return
    try:
        fd = open_dir(root, None, follow, (st.st_dev, st.st_ino))
        entries = _listed(fd)
    except OSError as e:
        yield _dir_error(root, "", dest, e)
        return
    seen_dirs = {(st.st_dev, st.st_ino)}
    frames: list[tuple[int, list[_Subdir]]] = []
    try:
        subdirs: list[_Subdir] = []
        yield from _scan(entries, root, "", dest, keep, follow, attrs_for, totals, seen_dirs, subdirs, names)
        frames.append((fd, subdirs[::-1]))
        while frames:
            parent_fd, todo = frames[-1]
            if not todo:
                os.close(parent_fd)
                frames.pop()
                continue
            path, reldir, name, ident = todo.pop()
            try:
                fd = open_dir(name, parent_fd, follow, ident, shown=path)
                entries = _listed(fd)
            except OSError as e:
                yield _dir_error(path, reldir, dest, e)
                continue
            frames.append((fd, []))
            subdirs = []
            yield from _scan(entries, path, reldir, dest, keep, follow, attrs_for, totals, seen_dirs, subdirs,
                             names)
            frames[-1] = (fd, subdirs[::-1])
    finally:
        for fd, _ in frames:
            os.close(fd)


def _listed(fd: int) -> list[os.DirEntry[str]]:
    """:func:`_list_dir` of the open directory ``fd`` (closed if the listing fails). Raises OSError."""
    try:
        return _list_dir(fd)
    except BaseException:
        os.close(fd)
        raise


def _list_dir(dir_fd: int) -> list[os.DirEntry[str]]:
    """The entries of the open directory ``dir_fd`` sorted by name (the walk's order); the
    descriptor stays open (``scandir`` works on a duplicate). Raises OSError."""
    with os.scandir(dir_fd) as it:
        return sorted(it, key=lambda e: e.name)


def _dir_error(dirpath: str, reldir: str, dest: S3Url, e: OSError) -> UploadItem:
    return _error_item(dirpath, join_key(dest.prefix, reldir),
                       source_os_error(dirpath, e, "; skipped this directory"))


#: A subdirectory to walk: its path, its path relative to its root (with a trailing ``/``), its name
#: in its parent, and its ``(device, inode)`` as the parent's listing found it.
_Subdir = tuple[str, str, str, tuple[int, int]]


def _scan(
    entries: Sequence[os.DirEntry[str]], dirpath: str, reldir: str, dest: S3Url, keep: PathFilter, follow: bool,
    attrs_for: Callable[[str], ObjectAttributes], totals: WalkTotals, seen_dirs: set[tuple[int, int]] | None,
    subdirs: list[_Subdir], names: KeyNames = _AS_IS,
) -> Iterator[UploadItem]:
    """The items of one directory's ``entries`` (listed from its descriptor, in order; ``dirpath``:
    the directory's path); its subdirectories to walk are appended to ``subdirs``. Entries are
    stat'ed relative to the directory (``lstat``, unless ``follow``): an item's identity is that of
    the file listed here, which the upload checks again when it opens the file. ``seen_dirs``: the
    ``(device, inode)`` of the directories visited, when symlinks are followed (a directory reached
    twice is a loop). ``names``: each name's text in its key (:class:`KeyNames`)."""
    base = dirpath if dirpath.endswith("/") else dirpath + "/"  # os.path.join's paths, built faster
    taken: dict[str, str] | None = {} if names.nfc else None  # NFC name -> the entry that has it
    for entry in entries:
        path = base + entry.name
        name = names(entry.name, path)
        rel = f"{reldir}{name}"
        if taken is not None:
            if name in taken:
                yield _error_item(path, join_key(dest.prefix, rel), InvalidKeyError(
                    f"{path}: its name in Unicode NFC is that of {base + taken[name]} (--normalize-keys nfc); skipped"))
                continue
            taken[name] = entry.name
        try:
            if entry.is_symlink() and not follow:
                totals.skip(path, "symlink")
                continue
            if entry.is_dir(follow_symlinks=follow):
                dst = entry.stat(follow_symlinks=follow)
                ident = (dst.st_dev, dst.st_ino)
                if follow and seen_dirs is not None:
                    if ident in seen_dirs:
                        yield _error_item(path, join_key(dest.prefix, rel), SourceUnreadableError(
                            f"{path}: directory symlink loop (already visited); skipped"))
                        continue
                    seen_dirs.add(ident)
                subdirs.append((path, rel + "/", entry.name, ident))
                continue
            if not entry.is_file(follow_symlinks=follow):  # sockets, FIFOs, devices, dangling links
                totals.skip(path, _special_kind(entry))
                continue
            if keep.active and not keep(rel):
                continue
            est = entry.stat(follow_symlinks=follow)
        except OSError as e:
            yield _error_item(path, join_key(dest.prefix, rel), source_os_error(path, e))
            continue
        yield _file_item(path, join_key(dest.prefix, rel), est, attrs_for, totals)


@dataclass(frozen=True, slots=True)
class WalkDir:
    """A directory to walk: ``path``, and ``reldir``, its path relative to its root with a trailing
    ``/`` (``""`` for a root). A slice of a large directory walks only the entries whose names are
    after ``after`` and up to ``upto`` included (None: no bound). ``inode``: the directory's inode
    number where it was found (None: not checked); the walk that lists it on another machine
    checks that it sees the same directory there, and not, say, an empty mount point."""

    path: str
    reldir: str
    after: str | None = None
    upto: str | None = None
    inode: int | None = None


@dataclass(frozen=True, slots=True)
class WalkPart:
    """What :func:`walk_part` found: ``items`` (files and errors, as the full walk yields them), the
    ``skipped`` entries (``(path, kind)``), the ``frontier`` of directories (or slices) left to
    walk, and counts: ``files``/``bytes`` found, ``dirs`` listed, ``entries`` looked at."""

    items: tuple[UploadItem, ...]
    skipped: tuple[tuple[str, str], ...]
    frontier: tuple[WalkDir, ...]
    files: int
    bytes: int
    dirs: int
    entries: int


def walk_part(
    start: WalkDir, dest: S3Url, *, max_entries: int, split: bool = False,
    path_filter: PathFilter | None = None, attrs_for: Callable[[str], ObjectAttributes] | None = None,
) -> WalkPart:
    """Walk the tree under ``start`` (symlinks not followed) until about ``max_entries`` directory
    entries were looked at; the directories not walked yet come back as the ``frontier``, for
    other calls (on other machines) to walk. ``split``: list ``start`` only and hand back all its
    subdirectories (a breadth-first step, to spread a tree's top quickly).

    A directory of more than ``max_entries`` entries is cut into slices of ``max_entries`` names
    (:class:`WalkDir` ``after``/``upto``): the first is walked here, the others are in the frontier
    (each slice lists the directory again and looks only at its names). The items, filters, keys
    and errors are those of :func:`walk_items` over the same tree: the walk of a root's part is
    that root's walk restricted to it, and the union of the parts is the whole walk.

    Every directory handed back (and ``start``, when its ``inode`` is set) carries its inode number,
    checked before it is listed: a part walked on another machine refuses a directory that is not
    the one found (an unmounted filesystem's empty mount point, a stale copy), rather than report
    its files missing, which a sync with ``--delete`` would act on.

    Raises:
        ValueError: ``max_entries`` below 1.
        WorkerMismatchError: a directory is not the one whose inode was recorded (exit 2).
    """
    if max_entries < 1:
        raise ValueError("a walk part looks at one entry at least")
    keep = path_filter or PathFilter()
    attrs_for = attrs_for or attrs_by_content_type(ObjectAttributes())
    totals = WalkTotals()
    items: list[UploadItem] = []
    frontier: list[WalkDir] = []
    skipped: list[tuple[str, str]] = []
    seen = dirs = 0
    # depth first by descriptor, as _walk_one: each frame is an open directory and its subdirectories
    # still to walk (popped from the end), each with its name there and the (device, inode) listed
    frames: list[tuple[int | None, list[tuple[WalkDir, str, tuple[int, int] | None]]]] = [
        (None, [(start, start.path, None)])]
    try:
        while frames:
            parent_fd, todo = frames[-1]
            if not todo:
                if parent_fd is not None:
                    os.close(parent_fd)
                frames.pop()
                continue
            d, name, ident = todo.pop()
            if seen >= max_entries or (split and dirs):
                frontier.append(d)
                continue
            try:
                if parent_fd is None or ident is None:
                    fd = _open_part_start(d)
                else:
                    fd = open_dir(name, parent_fd, False, ident, shown=d.path)
                entries = _listed(fd)
            except OSError as e:
                items.append(_dir_error(d.path, d.reldir, dest, e))
                continue
            frames.append((fd, []))
            dirs += 1
            if d.after is not None or d.upto is not None:
                entries = [e for e in entries if (d.after is None or e.name > d.after)
                           and (d.upto is None or e.name <= d.upto)]
            elif len(entries) > max_entries:  # a large directory: slices of max_entries names
                for i in range(max_entries, len(entries), max_entries):
                    last = i + max_entries - 1
                    frontier.append(WalkDir(d.path, d.reldir, entries[i - 1].name,
                                            entries[last].name if last < len(entries) - 1 else None, d.inode))
                entries = entries[:max_entries]
            seen += len(entries)
            subdirs: list[_Subdir] = []
            items.extend(_scan(entries, d.path, d.reldir, dest, keep, False, attrs_for, totals, None, subdirs))
            skipped.extend(totals.drain_skips())
            frames[-1] = (fd, [(WalkDir(path, rel, inode=sub[1]), sub_name, sub)
                               for path, rel, sub_name, sub in reversed(subdirs)])
    finally:
        for open_fd, _ in frames:
            if open_fd is not None:
                os.close(open_fd)
    return WalkPart(tuple(items), tuple(skipped), tuple(frontier), totals.files, totals.bytes, dirs, seen)


def _open_part_start(d: WalkDir) -> int:
    """Open a part's first directory by its path (a symlink there is not followed) and check its inode
    (another machine numbers devices its own way: the inode only). Raises OSError, WorkerMismatchError."""
    fd = open_dir(d.path, None, False, (0, 0), shown=d.path, check=False)
    try:
        if d.inode is not None and (found := os.fstat(fd).st_ino) != d.inode:
            raise WorkerMismatchError(f"{d.path} is another directory here (inode {found}, not {d.inode}; or it "
                                      "was replaced while the walk was under way)")
    except BaseException:
        os.close(fd)
        raise
    return fd


def inode_of(path: str) -> int | None:
    """``path``'s inode number as ``stat`` gives it (a mounted filesystem's root, at a mount point);
    None when it cannot be read (its listing then reports why)."""
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _special_kind(entry: os.DirEntry[str]) -> str:
    try:
        mode = entry.stat(follow_symlinks=True).st_mode
    except OSError:
        return "broken symlink"
    if stat_mod.S_ISFIFO(mode):
        return "fifo"
    if stat_mod.S_ISSOCK(mode):
        return "socket"
    if stat_mod.S_ISCHR(mode) or stat_mod.S_ISBLK(mode):
        return "device"
    return "special file"


def _file_item(
    path: str, key: str, st: os.stat_result, attrs_for: Callable[[str], ObjectAttributes], totals: WalkTotals,
) -> UploadItem:
    size = st.st_size
    try:
        sanitize_key(key)
    except InvalidKeyError as e:
        # a non-UTF-8 name shows its raw bytes as \xNN (surrogateescape -> bytes -> backslashreplace)
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        return _error_item(shown, os.fsencode(key).decode("utf-8", "backslashreplace"),
                           InvalidKeyError(f"{shown}: {e}"))
    totals.files += 1
    totals.bytes += size
    return UploadItem(key=key, size_bytes=size, source=path, path=path, attrs=attrs_for(key),
                      mtime_ns=st.st_mtime_ns, identity=FileIdentity.of(st))


def walk_items(
    roots: Sequence[str],
    dest: S3Url,
    *,
    follow_symlinks: bool = False,
    path_filter: PathFilter | None = None,
    attrs_for: Callable[[str], ObjectAttributes] | None = None,
    queue_size: int = 10_000,
    totals: WalkTotals | None = None,
    threaded: bool = True,
    discovered: bool = False,
    names: KeyNames | None = None,
) -> Iterator[Any]:
    """Walk ``roots`` and yield one :class:`UploadItem` per regular file (or per error), and a
    :class:`~s3pump.events.Discovered` with the totals so far every few hundred files and at the end
    (``final``) when ``discovered`` is set, for progress views; then also an
    :class:`~s3pump.events.EntrySkipped` for each entry that is not a regular file.

    Errors never stop the walk: a missing root, an unreadable directory, a symlink
    loop or an invalid key becomes an item with ``error`` set, which the engine
    reports as failed for that path alone. ``names``: the names' text in the keys (:class:`KeyNames`;
    default: as they are, warned about once if not in NFC).
    """
    names = names if names is not None else KeyNames()
    keep = path_filter or PathFilter()
    totals = totals if totals is not None else WalkTotals()
    attrs_for = attrs_for or attrs_by_content_type(ObjectAttributes())
    exact_key = exact_key_for(roots, dest)

    def generate() -> Iterator[UploadItem | Discovered | EntrySkipped]:
        reported = 0
        for root in roots:
            for item in _walk_one(root, dest, exact_key, keep, follow_symlinks, attrs_for, totals, names):
                if discovered:
                    for path, kind in totals.drain_skips():
                        yield EntrySkipped(path, kind)
                yield item
                if discovered and totals.files - reported >= _BATCH:
                    reported = totals.files
                    yield Discovered(totals.files, totals.bytes)
        if discovered:
            for path, kind in totals.drain_skips():
                yield EntrySkipped(path, kind)
            yield Discovered(totals.files, totals.bytes, final=True)

    if not threaded:
        yield from generate()
        return
    yield from _threaded(generate(), max(1, queue_size // _BATCH))
