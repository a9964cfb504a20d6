"""``--follow-symlinks`` walked with the workers: the directories in the coordinator, the files on the workers.

The single walk reports a directory reached a second time (through links) as a loop and skips
it; which time is "second" is set by the order of the whole walk: a directory is claimed when
its parent is listed, parents in depth-first order, names in order. Parallel walk tasks do not
share that order, so here the **coordinator** walks the directories alone, in exactly that order
(:func:`walk_followed_on_cluster`: one listing and one ``stat`` per subdirectory, links
followed, loops decided as in :func:`~s3pump.sources.walk.walk_items`), and **scan tasks** on the
workers (:func:`scan_task`) look at every other entry of those directories: they stat the
files (following links to files), apply the filters and build the items, as the single walk's
scan does. Directories are a small part of a tree's entries: the per-file stats, which bound
a walk of many files, are spread over the workers. Links to outside the tree are followed, as
in one process.
"""

from __future__ import annotations

import contextlib
import os
import queue
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SourceUnreadableError, WorkerMismatchError, source_os_error
from ..events import Discovered, EntrySkipped
from ..items import UploadItem
from ..sources.dirfd import open_dir
from ..sources.walk import (
    PathFilter,
    WalkPart,
    WalkTotals,
    _dir_error,
    _error_item,
    _listed,
    _scan,
    _Subdir,
    attrs_by_content_type,
    exact_key_for,
    root_item,
)
from ..store.base import ObjectAttributes
from ..urls import S3Url, join_key
from .treewalk import WalkResult, WalkSpec, WalkStats, _rebased, next_done, walk_entries_from_env, walk_lost

__all__ = ["ScanJob", "scan_task", "walk_followed_on_cluster"]


@dataclass(frozen=True, slots=True)
class ScanJob:
    """Scan directory ``path`` (``reldir`` under its root; the coordinator's names, through links) for
    all entries but ``dirs`` (the subdirectories the coordinator walks itself). ``inode``: the
    directory's inode where the coordinator listed it (the worker checks it sees that directory)."""

    path: str
    reldir: str
    inode: int
    dirs: frozenset[str]
    #: entries listed, directories included (the task's size)
    entries: int = 0


def scan_task(spec: WalkSpec, jobs: tuple[ScanJob, ...]) -> WalkResult:
    """The task: scan each job's directory on this worker, links followed (paths through
    ``S3PUMP_CLUSTER_PATH_MAP``): the items, skipped entries and counts of its non-directory entries.

    Raises:
        WorkerMismatchError: a directory is another one here (its inode differs): another tree.
    """
    from distributed import get_worker

    from .worker import local_path, path_map

    address = get_worker().address
    mapping = path_map()
    attrs_for = attrs_by_content_type(spec.attrs)
    items: list[UploadItem] = []
    skipped: list[tuple[str, str]] = []
    files = size = entries_seen = 0
    for job in jobs:
        local = local_path(job.path, mapping)
        totals = WalkTotals()
        found: list[UploadItem] = []
        try:
            fd = open_dir(local, None, True, (0, 0), shown=job.path, check=False)
        except OSError as e:
            items.append(_dir_error(job.path, job.reldir, spec.dest, e))
            continue
        try:
            if (inode := os.fstat(fd).st_ino) != job.inode:
                raise WorkerMismatchError(f"worker {address} sees {job.path} otherwise: another directory here "
                                          f"(inode {inode}, not {job.inode}); every worker must see the same files "
                                          "(a shared filesystem, or S3PUMP_CLUSTER_PATH_MAP)")
            entries = [e for e in _listed(fd) if e.name not in job.dirs]
            entries_seen += len(entries)
            ignored: list[_Subdir] = []  # a directory here that was none when the coordinator listed it
            found.extend(_scan(entries, local, job.reldir, spec.dest, spec.path_filter, True, attrs_for, totals,
                               None, ignored))
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
        part = _rebased(WalkPart(tuple(found), tuple(totals.drain_skips()), (), totals.files, totals.bytes, 1, 0),
                        local, job.path)
        items.extend(part.items)
        skipped.extend(part.skipped)
        files += totals.files
        size += totals.bytes
    return WalkResult(address, WalkPart(tuple(items), tuple(skipped), (), files, size, len(jobs), entries_seen))


def _directories(root: str, dest: S3Url, exact_key: bool, attrs_for: Callable[[str], ObjectAttributes],
                 totals: WalkTotals) -> Iterator[UploadItem | ScanJob]:
    """One root's directories in the single walk's order, links followed: a :class:`ScanJob` per
    directory listed, and the items the single walk yields for directories (a file root, a listing
    that failed, a loop: a directory reached again)."""
    st = root_item(root, dest, exact_key, True, attrs_for, totals)
    if isinstance(st, UploadItem):
        yield st
        return
    seen = {(st.st_dev, st.st_ino)}
    stack: list[_Subdir] = [(root, "", root, (st.st_dev, st.st_ino))]
    while stack:
        path, reldir, _name, ident = stack.pop()
        try:
            fd = open_dir(path, None, True, ident, shown=path)
            entries = _listed(fd)
        except OSError as e:
            yield _dir_error(path, reldir, dest, e)
            continue
        try:
            base = path if path.endswith("/") else path + "/"
            dirs: set[str] = set()
            subdirs: list[_Subdir] = []
            for entry in entries:
                sub = base + entry.name
                rel = reldir + entry.name
                try:
                    if not entry.is_dir(follow_symlinks=True):
                        continue
                    dirs.add(entry.name)
                    dst = entry.stat(follow_symlinks=True)
                except OSError as e:  # as the single scan: this entry's error; a listing's is the scan task's
                    if entry.name in dirs:
                        yield _error_item(sub, join_key(dest.prefix, rel), source_os_error(sub, e))
                    continue
                sub_ident = (dst.st_dev, dst.st_ino)
                if sub_ident in seen:
                    yield _error_item(sub, join_key(dest.prefix, rel), SourceUnreadableError(
                        f"{sub}: directory symlink loop (already visited); skipped"))
                    continue
                seen.add(sub_ident)
                subdirs.append((sub, rel + "/", entry.name, sub_ident))
            yield ScanJob(path, reldir, ident[1], frozenset(dirs), len(entries))
            stack.extend(reversed(subdirs))
        finally:
            os.close(fd)


def walk_followed_on_cluster(
    client: Any, roots: Sequence[str], dest: S3Url, *, path_filter: PathFilter | None = None,
    attrs: ObjectAttributes | None = None, max_entries: int | None = None, stats: WalkStats | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[UploadItem | Discovered | EntrySkipped]:
    """:func:`~.treewalk.walk_on_cluster` with symlinks followed: what
    ``walk_items(roots, dest, follow_symlinks=True, discovered=True)`` yields (in another order).
    Directories are listed here; their other entries are scanned by tasks of about ``max_entries``
    entries (default ``S3PUMP_WALK_TASK_ENTRIES``), at most one per worker thread in flight, and
    only while the consumer asks for files. A scan task whose workers all died makes its
    directories failed items (:class:`~s3pump.errors.WorkerLostError`, exit 1).

    Raises:
        WorkerMismatchError: a worker sees a directory other than the one listed here (exit 2).
    """
    spec = WalkSpec(dest, path_filter or PathFilter(), attrs or ObjectAttributes(),
                    max_entries or walk_entries_from_env())
    stats = stats if stats is not None else WalkStats()
    totals = WalkTotals()  # the coordinator's: file roots and directory errors
    exact_key = exact_key_for(roots, dest)
    attrs_for = attrs_by_content_type(spec.attrs)
    workers = client.scheduler_info()["workers"]
    slots = sum(max(1, int(w.get("nthreads", 1))) for w in workers.values()) or 1
    name = f"s3pump-walk-{uuid.uuid4().hex[:12]}"
    done: queue.Queue[Any] = queue.Queue()  # not SimpleQueue: see treewalk.walk_on_cluster
    inflight: dict[str, tuple[Any, tuple[ScanJob, ...]]] = {}
    files = size = submitted = 0
    batch: list[ScanJob] = []
    batch_entries = 0

    def submit() -> None:
        nonlocal batch, batch_entries, submitted
        jobs = tuple(batch)
        fut = client.submit(scan_task, spec, jobs, key=f"{name}-{submitted}", pure=False)
        submitted += 1
        inflight[fut.key] = (fut, jobs)
        fut.add_done_callback(done.put)
        batch, batch_entries = [], 0

    def settle() -> Iterator[UploadItem | Discovered | EntrySkipped]:
        nonlocal files, size
        fut = next_done(done, cancelled)
        if fut is None:
            return
        _, jobs = inflight.pop(fut.key)
        stats.tasks += 1
        try:
            result: WalkResult = fut.result()
        except WorkerMismatchError:
            raise
        except Exception as e:  # the workers that ran it died, or the scheduler lost it
            stats.failed += 1
            for job in jobs:
                yield walk_lost(dest, job.reldir, job.path, e)
            return
        finally:
            fut.release()
        part = result.part
        stats.per_worker[result.worker] = stats.per_worker.get(result.worker, 0) + 1
        stats.files += part.files
        for path, kind in part.skipped:
            yield EntrySkipped(path, kind)
        yield from part.items
        files += part.files
        size += part.bytes
        yield Discovered(totals.files + files, totals.bytes + size)

    try:
        for root in roots:
            for found in _directories(root, dest, exact_key, attrs_for, totals):
                if cancelled():
                    return
                if isinstance(found, UploadItem):
                    yield found
                    continue
                stats.dirs += 1
                batch.append(found)
                batch_entries += 1 + found.entries - len(found.dirs)  # what the scan task looks at
                if batch_entries >= spec.max_entries or len(batch) >= spec.max_entries:
                    submit()
                while len(inflight) >= slots:
                    yield from settle()
                    if cancelled():
                        return
        if batch:
            submit()
        while inflight:
            yield from settle()
            if cancelled():
                return
        yield Discovered(totals.files + files, totals.bytes + size, final=True)
    finally:
        if inflight:
            with contextlib.suppress(Exception):
                client.cancel([f for f, _ in inflight.values()])
