"""``s3pump sync``: upload the new and changed files of a directory to ``s3://bucket/prefix``.

Reads top to bottom:

1. **Parse** the destination and the mode. Keys are ``prefix/<path relative to DIR>``, as
   ``aws s3 sync``; only objects under ``prefix/`` are compared (never ``prefix2/``).
2. **Plan**, in a producer thread, in bounded memory:

   - the remote listing (ListObjectsV2, streamed, in its own thread) and the local walk
     each feed an :class:`~s3pump.plan.extsort.ExternalSorter` (UTF-8 key order; it
     spills to disk beyond ``sort_items_in_memory`` records per side). Neither the walk
     (directory by directory) nor every store's listing (SeaweedFS lists directory
     first) is in S3 key order, so both are sorted;
   - the merge-join (:mod:`s3pump.plan.syncplan`) decides upload / compare / skip / delete;
   - files to upload or compare are hashed on a thread pool (hashlib releases the GIL),
     through the :class:`~s3pump.hashcache.HashCache`; ``--checksum`` compares the
     MD5 or recomputed multipart ETag with the object's ETag, then its ``md5`` metadata;
   - every upload carries the file's MD5 as ``x-amz-meta-md5``, so later checksum syncs
     are exact even for multipart objects.

3. **Upload** through the same :class:`~s3pump.engine.scheduler.Engine` as ``upload``
   (options, progress, retries, failed-list, exit codes). Events reach subscribers on
   the engine's thread only.
4. **Delete** (``--delete``) the objects with no local file: DeleteObjects in batches of
   1,000, after the uploads. Objects under a directory the walk could not read are never
   deleted (they are counted as withheld).
5. **Report**: :class:`SyncReport`.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import TransferConfig
from ..engine.scheduler import Engine, UploadItem
from ..errors import (
    CancelledError,
    PathNotFoundError,
    S3PumpError,
    SourceChangedError,
    SourceError,
    SourceNotFoundError,
    SourceUnreadableError,
    StoreError,
    UsageError,
)
from ..etags import FileDigest, file_digest
from ..events import (
    Event,
    EventBus,
    FileFailed,
    FileSkipped,
    ObjectDeleted,
    Subscriber,
    UploadPlanned,
)
from ..hashcache import HashCache
from ..plan.extsort import ExternalSorter, Spool
from ..plan.syncplan import (
    MODES,
    Action,
    LocalRecord,
    RemoteRecord,
    SyncMode,
    Verdict,
    checksum_part_sizes,
    checksum_verdict,
    plan,
    valid_md5,
)
from ..report import FailedListWriter, RunStats, UploadReport
from ..session import open_store, state_dir
from ..sources.walk import FilterRule, PathFilter, WalkTotals, attrs_by_content_type, walk_items
from ..store.base import ObjectAttributes, ObjectInfo, Store
from ..urls import S3Url, join_key, parse_s3_url
from .upload import attributes_of, default_failed_list_path

__all__ = ["SyncReport", "SyncStats", "sync"]

log = logging.getLogger("s3pump.sync")

#: Records per side kept in memory by the sort before it spills a run to disk (~250 bytes each).
SORT_ITEMS_IN_MEMORY = 100_000
#: A hashing task: up to this many files, or this many bytes.
_BATCH_FILES = 64
_BATCH_BYTES = 16 * 1024 * 1024
_DELETE_BATCH = 1000
#: Walk errors remembered to withhold deletes under them; beyond this, no delete at all.
_MAX_ERROR_KEYS = 10_000


@dataclass(frozen=True)
class SyncReport(UploadReport):
    """Outcome of :func:`s3pump.sync`: the upload figures of :class:`UploadReport`
    (``files_done`` = objects uploaded, ``files_skipped`` = unchanged files) and the plan.

    ``planned_uploads``: files found new or changed (uploaded, failed, or listed by
    --dry-run); ``fallback_uploads``: those uploaded because their contents could not be
    compared exactly (see the ``planned`` events for why); ``objects_deleted`` /
    ``deletes_failed`` / ``deletes_withheld`` (under a local directory that could not be
    read); ``remote_only_kept``: objects with no local file, without --delete;
    ``files_hashed`` / ``bytes_hashed`` / ``hash_cache_hits``: the hashing work.
    """

    mode: str = "default"
    local_files: int = 0
    remote_objects: int = 0
    planned_uploads: int = 0
    fallback_uploads: int = 0
    planned_deletes: int = 0
    objects_deleted: int = 0
    deletes_failed: int = 0
    deletes_withheld: int = 0
    remote_only_kept: int = 0
    files_hashed: int = 0
    bytes_hashed: int = 0
    hash_cache_hits: int = 0
    sort_runs_spilled: int = 0

    @property
    def ok(self) -> bool:
        return self.files_failed == 0 and self.deletes_failed == 0


class SyncStats:
    """Subscriber: counts the sync's own events (planned uploads, deletes)."""

    def __init__(self) -> None:
        self.planned_uploads = 0
        self.fallback_uploads = 0
        self.planned_deletes = 0
        self.objects_deleted = 0
        self.deletes_failed = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, UploadPlanned):
            self.planned_uploads += 1
            self.fallback_uploads += event.fallback
        elif isinstance(event, ObjectDeleted):
            self.planned_deletes += 1
            if event.error is not None:
                self.deletes_failed += 1
            elif not event.dry_run:
                self.objects_deleted += 1


class _Stopped(Exception):
    """The consumer went away (cancelled); the producer unwinds."""


_END = object()


class _Handoff:
    """Producer thread -> consumer: objects in batches through a bounded queue.

    The producer's exception is re-raised in the consumer; :meth:`stop` makes the
    producer's next :meth:`put` raise :class:`_Stopped`."""

    _BATCH = 256

    def __init__(self, max_batches: int = 64) -> None:
        self._q: queue.Queue[object] = queue.Queue(maxsize=max_batches)
        self._stop = threading.Event()
        self._batch: list[object] = []
        self._failure: list[BaseException] = []

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def put(self, obj: object) -> None:
        self._batch.append(obj)
        if len(self._batch) >= self._BATCH:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            self._put(batch)

    def _put(self, obj: object) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                self._q.put(obj, timeout=0.2)
                return
            except queue.Full:
                continue

    def start(self, produce: Callable[[_Handoff], None]) -> None:
        def run() -> None:
            try:
                produce(self)
                self.flush()
            except _Stopped:
                pass
            except BaseException as e:  # surfaced in the consumer
                self._failure.append(e)
            finally:
                while not self._stop.is_set():
                    try:
                        self._q.put(_END, timeout=0.2)
                        break
                    except queue.Full:
                        continue

        threading.Thread(target=run, name="s3pump-sync-plan", daemon=True).start()

    def __iter__(self) -> Iterator[object]:
        while True:
            got = self._q.get()
            if got is _END:
                break
            yield from got  # type: ignore[misc]
        if self._failure:
            raise self._failure[0]

    def stop(self) -> None:
        self._stop.set()


@dataclass(slots=True)
class _Outcome:
    """A hashed action: upload it, skip it, or it failed."""

    kind: str  # "upload" | "skip" | "failed"
    action: Action
    reason: str = ""
    fallback: bool = False
    digest: FileDigest | None = None
    fresh: bool = False
    error: S3PumpError | None = None


class _Planner:
    """Builds the plan in the producer thread and hands out events and UploadItems."""

    def __init__(
        self, *, root: str, dest: S3Url, key_prefix: str, store: Store, config: TransferConfig, mode: SyncMode,
        delete: bool, dry_run: bool, path_filter: PathFilter, cache: HashCache | None, sort_items: int,
        hash_workers: int, totals: WalkTotals,
    ) -> None:
        self.root = root
        self._root_slash = root if root.endswith("/") else root + "/"
        root_abs = os.path.abspath(root)
        self._root_abs_slash = root_abs if root_abs.endswith("/") else root_abs + "/"
        self._prefix_len = len(key_prefix)
        self.dest = dest
        self.key_prefix = key_prefix
        self.store = store
        self.config = config
        self.mode = mode
        self.delete = delete
        self.dry_run = dry_run
        self.path_filter = path_filter
        self.cache = cache
        self.sort_items = sort_items
        self.hash_workers = hash_workers
        self.totals = totals
        self.attrs_for = attrs_by_content_type(attributes_of(config))
        self.deletes = Spool()
        self.error_keys: list[str] = []
        self.error_keys_overflow = False
        # counters (written by the producer thread, read after it finished)
        self.local_files = 0
        self.remote_objects = 0
        self.files_hashed = 0
        self.bytes_hashed = 0
        self.cache_hits = 0
        self.deletes_withheld = 0
        self.remote_only_kept = 0
        self.sort_runs = 0

    # ------------------------------------------------------------------ helpers
    def _path(self, key: str) -> str:
        """The local path of ``key`` (as the walk built it: root + "/" + relative path)."""
        return self._root_slash + key[self._prefix_len:]

    def _cache_path(self, key: str) -> str:
        return self._root_abs_slash + key[self._prefix_len:]

    def _withheld(self, key: str) -> bool:
        """A delete under a path the walk failed on would remove objects whose files may exist."""
        if self.error_keys_overflow:
            return True
        for e in self.error_keys:
            if e in ("", self.key_prefix) or key == e or key.startswith(e if e.endswith("/") else e + "/"):
                return True
        return False

    # ------------------------------------------------------------------ the two sides
    def _list_remote(self, sorter: ExternalSorter, stop: threading.Event) -> None:
        keep = self.path_filter
        n = len(self.key_prefix)
        for info in self.store.list_objects(self.dest.bucket, self.key_prefix):
            if stop.is_set():
                return
            if not info.key.startswith(self.key_prefix):
                continue
            if keep.active and not keep(info.key[n:]):
                continue
            sorter.add((info.key.encode("utf-8"), info.size_bytes, info.etag, info.last_modified))

    def _sorted_sides(self, out: _Handoff) -> tuple[Iterator[LocalRecord], Iterator[RemoteRecord]]:
        local = ExternalSorter(self.sort_items)
        remote = ExternalSorter(self.sort_items)
        failure: list[BaseException] = []
        stop = threading.Event()

        def list_remote() -> None:
            try:
                self._list_remote(remote, stop)
            except BaseException as e:
                failure.append(e)

        lister = threading.Thread(target=list_remote, name="s3pump-sync-list", daemon=True)
        lister.start()
        try:
            for item in walk_items(
                [self.root], S3Url(self.dest.bucket, self.key_prefix), follow_symlinks=self.config.follow_symlinks,
                path_filter=self.path_filter, attrs_for=lambda _key: _NO_ATTRS,
                queue_size=self.config.walk_queue_size,
            ):
                if item.error is not None:
                    if len(self.error_keys) < _MAX_ERROR_KEYS:
                        self.error_keys.append(item.key)
                    else:
                        self.error_keys_overflow = True
                    out.put(item)
                    continue
                local.add((item.key.encode("utf-8"), item.size_bytes, item.mtime_ns))
                if out.stopped:
                    raise _Stopped
            out.flush()
        except BaseException:
            stop.set()
            raise
        finally:
            lister.join()
        if failure:
            raise failure[0]
        self.local_files, self.remote_objects = local.count, remote.count
        self.sort_runs = local.runs + remote.runs
        return local.sorted(), remote.sorted()

    # ------------------------------------------------------------------ hashing (pool threads)
    @staticmethod
    def _digest(path: str, *, whole: bool, part_sizes: list[int], known: FileDigest | None) -> tuple[FileDigest, bool]:
        """The file's MD5 (if ``whole``) and multipart ETags for ``part_sizes``: from ``known``
        (the cache, or an earlier pass) when it answers, else read once. Returns (digest, read_now)."""
        if known is not None and known.has(whole=whole, part_sizes=part_sizes):
            return known, False
        for attempt in range(3):
            try:
                d = file_digest(path, part_sizes, whole=whole)
                break
            except SourceChangedError:
                if attempt == 2:
                    raise
            except SourceUnreadableError:
                if not os.path.exists(path):
                    raise SourceNotFoundError(f"{path}: removed since the walk; not uploaded") from None
                raise
        if known is not None and known.same_file(d):
            d = d.merged(known)
        return d, True

    def _examine(self, action: Action, cached: FileDigest | None) -> _Outcome:
        """Hash (or take from ``cached``) and decide one upload or compare action."""
        path = self._path(action.key)
        remote = action.remote
        try:
            if action.kind == "upload" or remote is None:
                digest, fresh = self._digest(path, whole=True, part_sizes=[], known=cached)
                return _Outcome("upload", action, action.reason, False, digest, fresh)
            part_sizes = checksum_part_sizes(remote, self.config.part_size_bytes)
            bucket, key = self.dest.bucket, action.key
            head = _Memo(lambda: self.store.head_object(bucket, key))
            etag = remote[2].strip('"').lower()
            if not part_sizes:  # a single-part (or opaque) ETag: the MD5 decides, HeadObject only if it differs
                digest, fresh = self._digest(path, whole=True, part_sizes=[], known=cached)
            elif cached is not None and any(cached.multipart_etag_for(p) == etag for p in part_sizes):
                digest, fresh = cached, False  # a cached multipart ETag matches: no HeadObject
            else:
                # a multipart ETag: the md5 metadata (s3pump's own uploads) needs only the MD5; without it,
                # only the candidate multipart ETags. Either way one MD5 pass per byte in the common case.
                stored = _stored_md5(head)
                digest, fresh = self._digest(path, whole=stored is not None, part_sizes=[] if stored else part_sizes,
                                             known=cached)
            if digest.size_bytes != remote[1]:
                verdict = Verdict(False, "size differs (file changed since the walk)")
            else:
                verdict = checksum_verdict(digest, remote, part_sizes, head)
            if not verdict.same and not digest.md5:  # the upload needs the MD5 for its metadata
                digest, again = self._digest(path, whole=True, part_sizes=[], known=digest)
                fresh = fresh or again
        except SourceError as e:
            return _Outcome("failed", action, error=e)
        return _Outcome("skip" if verdict.same else "upload", action, verdict.reason, verdict.fallback,
                        digest, fresh)

    def _examine_batch(self, batch: list[Action]) -> list[_Outcome]:
        """Pool task: one cache query for the batch, then each action."""
        cached: dict[str, FileDigest] = {}
        if self.cache is not None:
            stats = {}
            for a in batch:
                try:
                    stats[self._cache_path(a.key)] = os.stat(self._path(a.key))
                except OSError:
                    continue  # reported when the file is read
            cached = self.cache.get_many(stats)
        out = []
        for a in batch:
            try:
                out.append(self._examine(a, cached.get(self._cache_path(a.key))))
            except StoreError as e:  # HeadObject failed hard (not a per-object refusal)
                out.append(_Outcome("failed", a, error=e))
        return out

    # ------------------------------------------------------------------ outcomes (producer thread)
    def _emit_outcome(self, o: _Outcome, out: _Handoff) -> None:
        a = o.action
        path = self._path(a.key)
        if o.digest is not None and o.fresh:
            self.files_hashed += 1
            self.bytes_hashed += o.digest.size_bytes
            if self.cache is not None:
                self.cache.put(self._cache_path(a.key), o.digest)
        elif o.digest is not None:
            self.cache_hits += 1
        if o.kind == "failed":
            assert o.error is not None
            size = a.local[1] if a.local else 0
            out.put(UploadItem(key=a.key, size_bytes=size, source=path, error=o.error))
            return
        assert o.digest is not None
        if o.kind == "skip":
            out.put(FileSkipped(path, a.key, o.digest.size_bytes, o.reason))
            return
        if a.kind == "compare":  # now known to need an upload
            self.totals.bytes += o.digest.size_bytes
        out.put(UploadPlanned(path, a.key, o.digest.size_bytes, o.reason, o.fallback))
        if o.fallback:
            log.info("uploading %s: %s", self.dest.key_url(a.key), o.reason)
        if not self.dry_run:
            attrs = self.attrs_for(a.key).with_metadata({"md5": o.digest.md5})
            out.put(UploadItem(key=a.key, size_bytes=o.digest.size_bytes, source=path, path=path, attrs=attrs,
                               mtime_ns=o.digest.mtime_ns))

    # ------------------------------------------------------------------ the producer
    def produce(self, out: _Handoff) -> None:
        local, remote = self._sorted_sides(out)
        pool = cf.ThreadPoolExecutor(max_workers=self.hash_workers, thread_name_prefix="s3pump-hash")
        pending: set[cf.Future[list[_Outcome]]] = set()
        window = self.hash_workers * 4
        batch: list[Action] = []
        batch_bytes = 0

        def collect(block: bool) -> None:
            nonlocal pending
            if block:
                out.flush()
            while pending:
                done, pending = cf.wait(pending, timeout=0.5 if block else 0,
                                        return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    for o in fut.result():
                        self._emit_outcome(o, out)
                if done or not block:
                    return
                if out.stopped:
                    raise _Stopped

        def submit() -> None:
            nonlocal batch, batch_bytes
            if batch:
                pending.add(pool.submit(self._examine_batch, batch))
                batch, batch_bytes = [], 0
            collect(False)
            while len(pending) >= window:
                collect(True)

        try:
            for a in plan(local, remote, self.mode, delete=self.delete):
                if a.kind == "skip":
                    self.totals.files += 1
                    out.put(FileSkipped(self._path(a.key), a.key, a.local[1] if a.local else 0, a.reason))
                elif a.kind == "keep":
                    self.remote_only_kept += 1
                elif a.kind == "delete":
                    if self._withheld(a.key):
                        self.deletes_withheld += 1
                    else:
                        self.deletes.append(a.key)
                else:
                    assert a.local is not None
                    self.totals.files += 1
                    if a.kind == "upload":
                        self.totals.bytes += a.local[1]
                    if a.kind == "upload" and self.dry_run:
                        out.put(UploadPlanned(self._path(a.key), a.key, a.local[1], a.reason))
                        continue
                    batch.append(a)
                    batch_bytes += a.local[1]
                    if len(batch) >= _BATCH_FILES or batch_bytes >= _BATCH_BYTES:
                        submit()
            submit()
            while pending:
                collect(True)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if self.cache is not None:
                self.cache.flush()
            self.totals.finished = True


_NO_ATTRS = ObjectAttributes()


class _Memo:
    """HeadObject at most once per compared object; an error is raised again on every call."""

    def __init__(self, fn: Callable[[], ObjectInfo | None]) -> None:
        self._fn = fn
        self._done = False
        self._value: ObjectInfo | None = None
        self._error: StoreError | None = None

    def __call__(self) -> ObjectInfo | None:
        if not self._done:
            self._done = True
            try:
                self._value = self._fn()
            except StoreError as e:
                self._error = e
        if self._error is not None:
            raise self._error
        return self._value


def _stored_md5(head: _Memo) -> str | None:
    """The object's ``md5`` user metadata, if HeadObject works and it is a valid hex MD5."""
    try:
        info = head()
    except StoreError:
        return None
    return valid_md5((info.metadata.get("md5") if info else None) or "")


def _delete_all(store: Store, bucket: str, keys: Iterable[str], bus: EventBus) -> None:
    """DeleteObjects in batches of 1,000; a failed batch is retried key by key to name the failures."""
    batch: list[str] = []

    def run(keys_: list[str]) -> None:
        try:
            store.delete_objects(bucket, keys_)
        except StoreError as e:
            if len(keys_) == 1:
                bus.emit(ObjectDeleted(keys_[0], error=e))
                return
            for k in keys_:
                run([k])
            return
        for k in keys_:
            bus.emit(ObjectDeleted(k))

    for k in keys:
        batch.append(k)
        if len(batch) >= _DELETE_BATCH:
            run(batch)
            batch = []
    if batch:
        run(batch)


def sync(
    source_dir: str | Path,
    destination: str,
    config: TransferConfig | None = None,
    *,
    mode: SyncMode = "default",
    delete: bool = False,
    dry_run: bool = False,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    filters: Sequence[FilterRule] | None = None,
    embedded: bool = False,
    failed_list: str | Path | None = None,
    subscribers: Iterable[Subscriber] = (),
    store: Store | None = None,
    hash_cache: bool | str | Path = True,
    sort_items_in_memory: int = SORT_ITEMS_IN_MEMORY,
    hash_workers: int | None = None,
    totals: WalkTotals | None = None,
) -> SyncReport:
    """Upload the new and changed files of ``source_dir`` to ``destination`` (``s3://bucket/prefix``).

    ``mode``: ``"default"`` (as ``aws s3 sync``: size differs or the file's mtime is later
    than the object's LastModified), ``"size-only"``, or ``"checksum"`` (MD5 against the
    ETag, a recomputed multipart ETag, or the ``md5`` metadata; when none can decide, the
    file is uploaded and the ``planned`` event says why). ``delete``: remove objects under
    the prefix that have no local file (after the uploads). ``dry_run``: list the plan
    as events (``UploadPlanned``, ``ObjectDeleted(dry_run=True)``), change nothing.
    ``filters``: ``("include"|"exclude", glob)`` in order, the aws cli's rule (last match wins;
    :class:`~s3pump.sources.walk.PathFilter`); without it, ``include``/``exclude`` as two lists.
    ``include``/``exclude``: globs on the path relative to ``source_dir``, applied to both
    sides (an excluded object is never deleted). ``hash_cache``: True for the cache in the
    state directory, a path, or False. Memory: at most ``sort_items_in_memory`` records
    per side (~250 bytes each) before the sort spills to a temporary file.

    Returns:
        SyncReport: uploads (done/failed/unchanged), deletes, hashing, plan counts.

    Raises:
        UsageError: bad destination, mode or config (exit 2).
        PathNotFoundError: ``source_dir`` does not exist (a UsageError and SourceNotFoundError, exit 2).
        UsageError: ``source_dir`` is not a directory (exit 2).
        NoSuchBucketError, CredentialsError: the bucket check or the listing failed (exit 2).
        CancelledError: Ctrl-C / SIGTERM; open multipart uploads were aborted (exit 130).
    """
    config = config or TransferConfig.from_env()
    dest = parse_s3_url(destination)
    if mode not in MODES:
        raise UsageError(f"sync mode must be one of {', '.join(MODES)}, got {mode!r}")
    root = os.fspath(source_dir)
    if not os.path.exists(root):  # usage errors, as in the aws cli (exit 2)
        raise PathNotFoundError(f"the path {root} does not exist")
    if not os.path.isdir(root):
        raise UsageError(f"{root}: not a directory; sync takes a directory (use upload for files)")
    if sort_items_in_memory < 1:
        raise UsageError("sort_items_in_memory must be >= 1")
    key_prefix = join_key(dest.prefix, "")  # "" or "prefix/": never compare "prefix2/..."
    totals = totals if totals is not None else WalkTotals()

    stats = RunStats()
    sync_stats = SyncStats()
    failed_path = Path(failed_list) if failed_list else default_failed_list_path("sync")
    failed_writer = FailedListWriter(failed_path, dest.bucket)
    bus = EventBus(stats, sync_stats, failed_writer, *subscribers)
    cache: HashCache | None = None
    if hash_cache:
        cache = HashCache(state_dir() / "hashcache.sqlite" if hash_cache is True else Path(hash_cache))
        if cache.error:
            log.warning("%s", cache.error)
    own_store = store is None
    if store is None:
        store, config = open_store(config, dest.bucket, embedded=embedded)
    planner = _Planner(
        root=root, dest=dest, key_prefix=key_prefix, store=store, config=config, mode=mode, delete=delete,
        dry_run=dry_run, path_filter=PathFilter(tuple(include), tuple(exclude), rules=filters), cache=cache,
        sort_items=sort_items_in_memory, hash_workers=hash_workers or max(4, os.cpu_count() or 1), totals=totals,
    )
    handoff = _Handoff()
    try:
        handoff.start(planner.produce)
        if dry_run:
            for obj in handoff:
                if isinstance(obj, UploadItem):
                    assert obj.error is not None
                    bus.emit(FileFailed(obj.source, obj.key, obj.size_bytes, obj.error))
                else:
                    bus.emit(obj)  # type: ignore[arg-type]
            for key in planner.deletes:
                bus.emit(ObjectDeleted(key, dry_run=True))
        else:
            _upload_and_delete(store, dest.bucket, config, bus, handoff, planner)
    finally:
        handoff.stop()
        planner.deletes.close()
        if cache is not None:
            cache.close()
        failed_writer.close()
        if own_store:
            store.close()
    base = UploadReport.from_stats(
        stats, failed_list_path=str(failed_path) if failed_writer.count else None, dry_run=dry_run
    )
    return SyncReport(
        **{f: getattr(base, f) for f in UploadReport.__dataclass_fields__},
        mode=mode, local_files=planner.local_files, remote_objects=planner.remote_objects,
        planned_uploads=sync_stats.planned_uploads, fallback_uploads=sync_stats.fallback_uploads,
        planned_deletes=sync_stats.planned_deletes, objects_deleted=sync_stats.objects_deleted,
        deletes_failed=sync_stats.deletes_failed, deletes_withheld=planner.deletes_withheld,
        remote_only_kept=planner.remote_only_kept, files_hashed=planner.files_hashed,
        bytes_hashed=planner.bytes_hashed, hash_cache_hits=planner.cache_hits,
        sort_runs_spilled=planner.sort_runs,
    )


def _upload_and_delete(
    store: Store, bucket: str, config: TransferConfig, bus: EventBus, handoff: _Handoff, planner: _Planner
) -> None:
    engine = Engine(store, bucket, config, bus)
    planner_error: list[BaseException] = []

    def items() -> Iterator[UploadItem]:
        try:
            for obj in handoff:
                if isinstance(obj, UploadItem):
                    yield obj
                else:
                    bus.emit(obj)  # type: ignore[arg-type]
        except Exception as e:  # planning failed: stop the engine the safe way (aborts open MPUs)
            planner_error.append(e)
            engine.cancel()

    try:
        engine.run(items())
    except CancelledError:
        if planner_error:
            raise _as_s3pump_error(planner_error[0]) from None
        raise
    if planner_error:  # pragma: no cover - the engine always sees the cancel
        raise _as_s3pump_error(planner_error[0])
    _delete_all(store, bucket, planner.deletes, bus)


def _as_s3pump_error(e: BaseException) -> BaseException:
    if isinstance(e, S3PumpError):
        return e
    if isinstance(e, OSError):
        return S3PumpError(f"sync stopped: {e}; nothing was deleted; check free space in the temp directory")
    return e
