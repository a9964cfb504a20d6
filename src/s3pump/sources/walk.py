"""Streaming directory walk: local paths become :class:`UploadItem` s through a bounded queue.

The walk runs in its own thread and hands items over in small batches through a
queue of at most ``queue_size`` items, so memory stays flat however many files
there are. Symbolic links are skipped unless ``follow_symlinks``; when they are
followed, a directory reached twice through links is a loop and is reported.

Key mapping (as ``aws s3 cp --recursive``):

* a directory ``D``: ``prefix/<path relative to D>``;
* a file ``F``: ``prefix/<basename>``; but a single file sent to a destination
  that does not end in ``/`` is written to exactly that key.

Filters: ``--include``/``--exclude`` globs (fnmatch, ``*`` crosses ``/``) match
the path relative to its root. A path matching an include is taken; else one
matching an exclude is dropped; else, when includes were given without excludes,
it is dropped (a whitelist); else it is taken. So both ``--include '*.txt'`` and
``--exclude '*' --include '*.txt'`` upload only ``.txt`` files.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import os
import stat as stat_mod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import (
    InvalidKeyError,
    S3PumpError,
    SourceNotFoundError,
    SourceUnreadableError,
)
from ..events import Discovered
from ..items import UploadItem
from ..store.base import ObjectAttributes
from ..urls import S3Url, join_key, sanitize_key
from .handoff import threaded as _threaded

__all__ = ["PathFilter", "WalkTotals", "attrs_by_content_type", "walk_items"]

_BATCH = 256


@dataclass(slots=True)
class WalkTotals:
    """Counters of what the walk found so far (the walk's own; reported as Discovered events)."""

    files: int = 0
    bytes: int = 0
    finished: bool = False


class PathFilter:
    """The include/exclude rule described in the module docstring."""

    __slots__ = ("_exclude", "_include", "_whitelist")

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self._include = tuple(include)
        self._exclude = tuple(exclude)
        self._whitelist = bool(include) and not exclude

    @property
    def active(self) -> bool:
        return bool(self._include or self._exclude)

    def __call__(self, relpath: str) -> bool:
        if any(fnmatch.fnmatchcase(relpath, p) for p in self._include):
            return True
        if any(fnmatch.fnmatchcase(relpath, p) for p in self._exclude):
            return False
        return not self._whitelist


def attrs_by_content_type(base: ObjectAttributes) -> Callable[[str], ObjectAttributes]:
    """``attrs_for(name)``: ``base`` with Content-Type guessed from the name (cached per type),
    unless ``base`` already fixes one."""
    if base.content_type:
        return lambda _name: base
    cache: dict[str | None, ObjectAttributes] = {}

    def attrs_for(name: str) -> ObjectAttributes:
        ctype = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
        attrs = cache.get(ctype)
        if attrs is None:
            attrs = ObjectAttributes(ctype, base.acl, base.sse, base.sse_kms_key_id, base.storage_class,
                                     base.metadata)
            cache[ctype] = attrs
        return attrs

    return attrs_for


def _error_item(source: str, key: str, error: S3PumpError) -> UploadItem:
    return UploadItem(key=key, size_bytes=0, source=source, error=error)


def _walk_one(
    root: str, dest: S3Url, exact_key: bool, keep: PathFilter, follow: bool,
    attrs_for: Callable[[str], ObjectAttributes], totals: WalkTotals,
) -> Iterator[UploadItem]:
    try:
        st = os.stat(root) if follow or not os.path.islink(root) else os.lstat(root)
    except FileNotFoundError:
        yield _error_item(root, "", SourceNotFoundError(f"{root}: no such file or directory"))
        return
    except OSError as e:
        yield _error_item(root, "", SourceUnreadableError(f"{root}: {e.strerror}"))
        return
    if stat_mod.S_ISREG(st.st_mode):
        name = os.path.basename(root)
        key = dest.prefix if exact_key else join_key(dest.prefix, name)
        yield _file_item(root, key, st.st_size, st.st_mtime_ns, attrs_for, totals)
        return
    if not stat_mod.S_ISDIR(st.st_mode):
        yield _error_item(root, "", SourceUnreadableError(f"{root}: not a regular file or directory"))
        return
    seen_dirs = {(st.st_dev, st.st_ino)}
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        dirpath, reldir = stack.pop()
        try:
            with os.scandir(dirpath) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError as e:
            yield _error_item(dirpath, join_key(dest.prefix, reldir),
                              SourceUnreadableError(f"{dirpath}: {e.strerror}; skipped this directory"))
            continue
        subdirs: list[tuple[str, str]] = []
        for entry in reversed(entries):
            rel = f"{reldir}{entry.name}"
            try:
                if entry.is_symlink() and not follow:
                    continue
                if entry.is_dir(follow_symlinks=follow):
                    if follow:
                        dst = entry.stat(follow_symlinks=True)
                        ident = (dst.st_dev, dst.st_ino)
                        if ident in seen_dirs:
                            yield _error_item(entry.path, join_key(dest.prefix, rel), SourceUnreadableError(
                                f"{entry.path}: directory symlink loop (already visited); skipped"))
                            continue
                        seen_dirs.add(ident)
                    subdirs.append((entry.path, rel + "/"))
                    continue
                if not entry.is_file(follow_symlinks=follow):
                    continue  # sockets, FIFOs, devices, dangling links
                if keep.active and not keep(rel):
                    continue
                est = entry.stat(follow_symlinks=follow)
            except OSError as e:
                yield _error_item(entry.path, join_key(dest.prefix, rel),
                                  SourceUnreadableError(f"{entry.path}: {e.strerror}"))
                continue
            yield _file_item(entry.path, join_key(dest.prefix, rel), est.st_size, est.st_mtime_ns,
                             attrs_for, totals)
        stack.extend(reversed(subdirs))


def _file_item(
    path: str, key: str, size: int, mtime_ns: int, attrs_for: Callable[[str], ObjectAttributes],
    totals: WalkTotals,
) -> UploadItem:
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
                      mtime_ns=mtime_ns)


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
) -> Iterator[Any]:
    """Walk ``roots`` and yield one :class:`UploadItem` per regular file (or per error), and a
    :class:`~s3pump.events.Discovered` with the totals so far every few hundred files and at the end
    (``final``) when ``discovered`` is set, for progress views.

    Errors never stop the walk: a missing root, an unreadable directory, a symlink
    loop or an invalid key becomes an item with ``error`` set, which the engine
    reports as failed for that path alone.
    """
    keep = path_filter or PathFilter()
    totals = totals if totals is not None else WalkTotals()
    attrs_for = attrs_for or attrs_by_content_type(ObjectAttributes())
    exact_key = len(roots) == 1 and dest.prefix != "" and not dest.prefix.endswith("/")

    def generate() -> Iterator[UploadItem | Discovered]:
        reported = 0
        for root in roots:
            for item in _walk_one(root, dest, exact_key, keep, follow_symlinks, attrs_for, totals):
                yield item
                if discovered and totals.files - reported >= _BATCH:
                    reported = totals.files
                    yield Discovered(totals.files, totals.bytes)
        if discovered:
            yield Discovered(totals.files, totals.bytes, final=True)

    if not threaded:
        yield from generate()
        return
    yield from _threaded(generate(), max(1, queue_size // _BATCH))
