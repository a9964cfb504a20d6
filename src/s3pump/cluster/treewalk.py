"""The walk spread over the workers: directory-subtree walk tasks whose files become shards.

One process stats ~2,000 files/s on Lustre, so one walker needs 69 h for 500 M files. Here the
coordinator only stats its roots; every directory is listed and its files stat'ed by a **walk
task** on a worker (:func:`walk_task`, running :func:`~s3pump.sources.walk.walk_part`: the same
scan, filters, symlink rule, key mapping and key checks as the single-process walk). A task looks
at about ``max_entries`` entries (default 2,000, ``S3PUMP_WALK_TASK_ENTRIES``) and hands back the
directories it did not reach (its **frontier**), which become further tasks; a directory larger
than that is cut into slices of names. While fewer than ``FANOUT_PER_SLOT`` directories per
worker thread are waiting, a task lists one directory and hands back all its subdirectories (a
breadth-first step), so the top of a tree spreads over the workers at once.

The coordinator keeps at most one walk task per worker thread in flight, and only while its
consumer asks for files: the walk is pulled by the shard window (:mod:`.coordinator`), so what it
holds is a few tasks' results (``max_entries`` files each) and the frontier (directories, not
files), however many files the tree has. The files then go the same way as a coordinator walk's:
journal skip, key-clash pre-pass (when several roots), shards.

With ``--follow-symlinks`` the single walk reports a directory reached a second time through
links as a loop, and which time is "second" depends on the order of the whole walk, which
parallel tasks do not share: the coordinator then lists the directories and the workers scan
their other entries (:mod:`.followwalk`, docs/cluster.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import TransferConfig
from ..errors import UsageError, WorkerLostError, WorkerMismatchError
from ..events import Discovered, EntrySkipped
from ..items import UploadItem
from ..sources.walk import (
    PathFilter,
    WalkDir,
    WalkPart,
    WalkTotals,
    attrs_by_content_type,
    exact_key_for,
    inode_of,
    root_item,
    walk_part,
)
from ..store.base import ObjectAttributes
from ..urls import S3Url, join_key

__all__ = ["DEFAULT_WALK_ENTRIES", "WalkSpec", "WalkStats", "walk_entries_from_env", "walk_on_cluster",
           "walk_on_workers", "walk_task"]

#: Directory entries one walk task looks at (about 1 s of stat on Lustre).
DEFAULT_WALK_ENTRIES = 2000
#: Directories waiting per worker thread below which a walk task takes one breadth-first step.
FANOUT_PER_SLOT = 4


@dataclass(frozen=True, slots=True)
class WalkSpec:
    """What every walk task of a run needs: the destination (keys), the filter, the objects' base
    attributes (Content-Type is guessed per name as in the single walk) and the task size."""

    dest: S3Url
    path_filter: PathFilter
    attrs: ObjectAttributes
    max_entries: int


@dataclass(frozen=True, slots=True)
class WalkResult:
    """A walk task's part, walked on ``worker`` (its Dask address)."""

    worker: str
    part: WalkPart


@dataclass(slots=True)
class WalkStats:
    """What the distributed walk did: tasks run (per worker address), directories listed, files
    found, tasks failed (their directories reported as failed files)."""

    tasks: int = 0
    dirs: int = 0
    files: int = 0
    failed: int = 0
    per_worker: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"on": "workers", "tasks": self.tasks, "dirs": self.dirs, "files": self.files,
                "failed": self.failed, "per_worker": dict(sorted(self.per_worker.items()))}


def walk_entries_from_env(env: dict[str, str] | None = None) -> int:
    """``S3PUMP_WALK_TASK_ENTRIES`` (entries one walk task looks at), default 2,000.

    Raises:
        UsageError: not a positive whole number.
    """
    raw = (env if env is not None else os.environ).get("S3PUMP_WALK_TASK_ENTRIES")
    if raw is None:
        return DEFAULT_WALK_ENTRIES
    if not raw.strip().isdigit() or int(raw) < 1:
        raise UsageError(f"S3PUMP_WALK_TASK_ENTRIES={raw!r}: give a whole number of entries, 1 or more")
    return int(raw)


def walk_on_workers(config: TransferConfig, env: dict[str, str] | None = None) -> bool:
    """Whether ``upload --cluster`` and ``sync --cluster`` walk their tree on the workers: yes,
    unless keys are normalized (``--normalize-keys nfc``: the walk tasks map names as they are)
    or ``S3PUMP_CLUSTER_WALK=coordinator`` asks for the coordinator's walk. With
    ``--follow-symlinks`` the coordinator lists the directories and the workers scan the rest
    (:mod:`.followwalk`: loop detection needs the whole walk's order).

    Raises:
        UsageError: ``S3PUMP_CLUSTER_WALK`` is neither ``workers`` nor ``coordinator``.
    """
    where = (env if env is not None else os.environ).get("S3PUMP_CLUSTER_WALK", "workers")
    if where not in ("workers", "coordinator"):
        raise UsageError(f"S3PUMP_CLUSTER_WALK={where!r}: use 'workers' or 'coordinator'")
    return where == "workers" and config.normalize_keys == "none"


def next_done(done: queue.Queue[Any], cancelled: Callable[[], bool]) -> Any | None:
    """The next finished future put in ``done`` (by ``add_done_callback``), or None once ``cancelled()``
    (looked at every 0.5 s)."""
    while not cancelled():
        try:
            return done.get(timeout=0.5)
        except queue.Empty:
            continue
    return None


def walk_lost(dest: S3Url, reldir: str, path: str, error: Exception) -> UploadItem:
    """The failed item of a directory whose walk task was lost (its workers died, the scheduler lost
    it): listed in the failed-list, so a rerun walks it again."""
    return UploadItem(key=join_key(dest.prefix, reldir), size_bytes=0, source=path,
                      error=WorkerLostError(f"{path}: the walk of this directory did not finish "
                                            f"({type(error).__name__}: {error}); rerun the command"))


def walk_task(spec: WalkSpec, start: WalkDir, split: bool) -> WalkResult:
    """The task: walk part of the tree under ``start`` on this worker (paths as the coordinator
    names them; ``S3PUMP_CLUSTER_PATH_MAP`` applies). Identities carry no device number: another
    host numbers devices its own way."""
    from distributed import get_worker

    from .worker import local_path, path_map

    local = local_path(start.path, path_map())
    try:
        part = walk_part(dataclasses.replace(start, path=local), spec.dest, max_entries=spec.max_entries,
                         split=split, path_filter=spec.path_filter, attrs_for=attrs_by_content_type(spec.attrs))
    except WorkerMismatchError as e:
        raise WorkerMismatchError(f"worker {get_worker().address} sees {start.path} otherwise: {e}; every worker "
                                  "must see the same files (a shared filesystem, or S3PUMP_CLUSTER_PATH_MAP)") from None
    return WalkResult(get_worker().address, _rebased(part, local, start.path))


def _rebased(part: WalkPart, local: str, shown: str) -> WalkPart:
    """``part`` with paths under ``local`` named under ``shown`` (the coordinator's), and no devices."""
    def name(path: str | None) -> str | None:
        if path is None or local == shown or not path.startswith(local):
            return path
        return shown + path[len(local):]

    items = []
    for item in part.items:
        ident = dataclasses.replace(item.identity, device=None) if item.identity is not None else None
        items.append(dataclasses.replace(item, source=name(item.source) or item.source, path=name(item.path),
                                         identity=ident))
    return dataclasses.replace(
        part, items=tuple(items), skipped=tuple((name(p) or p, k) for p, k in part.skipped),
        frontier=tuple(dataclasses.replace(d, path=name(d.path) or d.path) for d in part.frontier))


def walk_on_cluster(
    client: Any, roots: Sequence[str], dest: S3Url, *, path_filter: PathFilter | None = None,
    attrs: ObjectAttributes | None = None, max_entries: int | None = None, stats: WalkStats | None = None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Iterator[UploadItem | Discovered | EntrySkipped]:
    """Walk ``roots`` on ``client``'s workers; yield what :func:`~s3pump.sources.walk.walk_items`
    yields with ``discovered`` set (items, ``Discovered`` totals, ``EntrySkipped``), in another order.

    Lazy: walk tasks are submitted as the consumer asks for files, at most one per worker thread in
    flight. A walk task that fails as a whole (its workers died) makes its directory one failed
    item (:class:`~s3pump.errors.WorkerLostError`, exit 1); the rest of the tree is walked.
    ``cancelled``: polled while waiting; once true, the walk stops (no final ``Discovered``).
    ``stats``: filled as tasks finish.

    Raises:
        WorkerMismatchError: a worker sees a directory other than the one found (a root: the one this
            process stats; below it: the one the parent's walk task saw), e.g. an unmounted
            filesystem's empty mount point (exit 2). Nothing from that walk is used.
    """
    keep = path_filter or PathFilter()
    base = attrs or ObjectAttributes()
    spec = WalkSpec(dest, keep, base, max_entries or walk_entries_from_env())
    stats = stats if stats is not None else WalkStats()
    totals = WalkTotals()
    exact_key = exact_key_for(roots, dest)
    attrs_for = attrs_by_content_type(base)
    pending: list[WalkDir] = []  # a stack: depth first, so it holds directories of a few levels
    for root in roots:
        found = root_item(root, dest, exact_key, False, attrs_for, totals)
        if isinstance(found, UploadItem):
            yield found
        else:
            pending.append(WalkDir(root, "", inode=inode_of(root)))  # the workers must see this directory
    pending.reverse()
    workers = client.scheduler_info()["workers"]
    slots = sum(max(1, int(w.get("nthreads", 1))) for w in workers.values()) or 1
    name = f"s3pump-walk-{uuid.uuid4().hex[:12]}"
    # queue.Queue, not SimpleQueue: a signal during SimpleQueue.get(timeout=...) turns the wait into one
    # without a timeout on Python 3.11 (it then waits for the next finished walk task, Ctrl-C unseen until then)
    done: queue.Queue[Any] = queue.Queue()
    inflight: dict[str, tuple[Any, WalkDir]] = {}
    files = size = submitted = 0
    try:
        while pending or inflight:
            while pending and len(inflight) < slots:
                start = pending.pop()
                split = len(pending) + len(inflight) < FANOUT_PER_SLOT * slots
                fut = client.submit(walk_task, spec, start, split, key=f"{name}-{submitted}", pure=False)
                submitted += 1
                inflight[fut.key] = (fut, start)
                fut.add_done_callback(done.put)
            fut = next_done(done, cancelled)
            if fut is None:
                return
            _, start = inflight.pop(fut.key)
            stats.tasks += 1
            try:
                result: WalkResult = fut.result()
            except WorkerMismatchError:  # a worker sees another tree: none of its answers can be trusted
                raise
            except Exception as e:  # the workers that ran it died, or the scheduler lost it
                stats.failed += 1
                yield walk_lost(dest, start.reldir, start.path, e)
                continue
            finally:
                fut.release()
            part = result.part
            stats.per_worker[result.worker] = stats.per_worker.get(result.worker, 0) + 1
            stats.dirs += part.dirs
            stats.files += part.files
            pending.extend(reversed(part.frontier))
            for path, kind in part.skipped:
                yield EntrySkipped(path, kind)
            yield from part.items
            files += part.files
            size += part.bytes
            yield Discovered(totals.files + files, totals.bytes + size)
        yield Discovered(totals.files + files, totals.bytes + size, final=True)
    finally:
        if inflight:
            # a run that stopped before the walk ended (a worker that sees another tree) may close this
            # generator only after the client closed, when its futures are gone with it
            with contextlib.suppress(Exception):
                client.cancel([f for f, _ in inflight.values()])
