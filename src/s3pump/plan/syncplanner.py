"""Sync's planner: the local walk and the remote listing, sorted and merge-joined into a plan.

Runs in a producer thread (:class:`~s3pump.sources.handoff.Handoff`), in bounded memory:

- the remote listing (ListObjectsV2, streamed, in its own thread) and the local walk each feed
  an :class:`~s3pump.plan.extsort.ExternalSorter` (UTF-8 key order; it spills to disk beyond
  ``sort_items`` records per side). Neither the walk (directory by directory) nor every store's
  listing (SeaweedFS lists directory first) is in S3 key order, so both are sorted;
- the merge-join (:mod:`s3pump.plan.syncplan`) decides upload / compare / skip / delete;
- files to upload or compare are hashed on a thread pool (hashlib releases the GIL), through the
  :class:`~s3pump.hashcache.HashCache`, and decided by :class:`~s3pump.plan.syncexamine.Examiner`:
  ``--checksum`` compares the MD5 or recomputed multipart ETag with the object's ETag, then
  (HeadObject with checksum mode) the file's CRC with the object's full-object checksum
  (:mod:`s3pump.plan.crccheck`; a stream's), then its ``md5`` metadata;
- every upload carries the file's MD5 as ``x-amz-meta-md5``, so later checksum syncs are exact
  even for multipart objects.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..config import TransferConfig
from ..etags import FileDigest
from ..events import Discovered, EntrySkipped, FileSkipped, FilesUnchanged, UploadPlanned
from ..fileid import FileIdentity
from ..hashcache import HashCache
from ..items import UploadItem
from ..sources.content_types import attrs_by_content_type
from ..sources.handoff import Handoff, Stopped
from ..sources.keynames import KeyNames
from ..sources.pathfilter import PathFilter
from ..sources.walk import WalkTotals, walk_items
from ..store.base import ObjectAttributes, Store
from ..units import MIB
from ..urls import S3Url
from .digests import Hasher
from .extsort import ExternalSorter, Spool
from .putcheck import Md5Check
from .syncexamine import SAME_CONTENT, Examiner, Outcome
from .syncplan import (
    Action,
    LocalRecord,
    RemoteRecord,
    SyncMode,
    plan,
)

__all__ = ["SyncPlanner", "Walker"]

Walker = Callable[[Sequence[str], S3Url, PathFilter, Callable[[], bool]], Iterable[Any]]
"""``walker(roots, dest, path_filter, stopped)``: another walk of the local side (``--cluster``'s, on
the workers): :func:`~s3pump.sources.walk.walk_items`' items, plus ``EntrySkipped`` (handed on) and
``Discovered`` (ignored) events, in any order; it ends early once ``stopped()``."""

log = logging.getLogger("s3pump.sync")

#: A hashing task: up to this many files, or this many bytes.
_BATCH_FILES = 64
_BATCH_BYTES = 16 * MIB
#: Unchanged files counted into one FilesUnchanged event (``list_unchanged=False``).
_UNCHANGED_PER_EVENT = 1000
#: Seconds between the totals said while the walk goes on (every 256 files at most).
_SAY_EVERY_S = 0.25
#: Walk errors remembered to withhold deletes under them; beyond this, no delete at all.
_MAX_ERROR_KEYS = 10_000


class SyncPlanner:
    """Builds the plan in a producer thread: hands out events (``Discovered``, ``FileSkipped``,
    ``UploadPlanned``) and the :class:`~s3pump.items.UploadItem` s to upload, and keeps the
    keys to delete (:attr:`deletes`) for after the uploads. ``list_unchanged=False``: unchanged
    files are counted (``FilesUnchanged``, a thousand at a time) instead of one ``FileSkipped``
    each, which is most of a no-op sync's work after the walk and the listing."""

    def __init__(
        self, *, root: str, dest: S3Url, key_prefix: str, store: Store, config: TransferConfig, mode: SyncMode,
        delete: bool, dry_run: bool, path_filter: PathFilter, cache: HashCache | None, sort_items: int,
        hash_workers: int, walker: Walker | None = None, list_unchanged: bool = True,
        hasher: Hasher | None = None,
    ) -> None:
        self.root = root
        self.walker = walker
        self.list_unchanged = list_unchanged
        self._unchanged = [0, 0]  # files and bytes counted and not yet handed out (list_unchanged=False)
        self._root_slash = root if root.endswith("/") else root + "/"
        root_abs = os.path.abspath(root)
        self._root_abs_slash = root_abs if root_abs.endswith("/") else root_abs + "/"
        self._prefix_len = len(key_prefix)
        self._renamed: dict[str, str] = {}  # key -> path, where the key is not the path's (--normalize-keys nfc)
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
        self.found_files = 0  # files planned (skipped as unchanged, or to upload or compare)
        self.walk_totals = WalkTotals()  # the walk's counts, and the entries it passed over
        self.found_bytes = 0
        self.attrs_for = attrs_by_content_type(ObjectAttributes.of(config))
        # after a single PUT, the engine asks it whether the ETag is the MD5 hashed here
        self.put_check = Md5Check(dest.bucket, config.sse, config.follow_symlinks)
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
        self.delete_bytes = 0  # the size of the objects in :attr:`deletes`
        self.remote_only_kept = 0
        self.sort_runs = 0
        self.examiner = Examiner(root=root, dest=dest, store=store, config=config, mode=mode, cache=cache,
                                 hasher=hasher, path_of=self._path, cache_path_of=self._cache_path)

    # ------------------------------------------------------------------ helpers
    def _path(self, key: str) -> str:
        """The local path of ``key`` (as the walk built it: root + "/" + relative path; a key whose
        names were normalized, ``--normalize-keys nfc``, maps to the path the walk found)."""
        if self._renamed and (path := self._renamed.get(key)) is not None:
            return path
        return self._root_slash + key[self._prefix_len:]

    def _cache_path(self, key: str) -> str:
        if self._renamed:
            return self._root_abs_slash + self._path(key)[len(self._root_slash):]
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
            if stop.is_set():  # the planner stopped (cancelled, or the walk failed): it no longer waits for this
                return
            if not info.key.startswith(self.key_prefix):
                continue
            if keep.active and not keep(info.key[n:]):
                continue
            # a RemoteRecord's fields as a plain tuple: the sort's run files are marshal, which takes no named tuple
            sorter.add((info.key.encode("utf-8"), info.size_bytes, info.etag, info.last_modified))

    def _walk(self, out: Handoff[Any]) -> Iterable[Any]:
        """The local side: the walk of the root in a thread here, or the :attr:`walker` given."""
        dest = S3Url(self.dest.bucket, self.key_prefix)
        if self.walker is not None:
            return self.walker([self.root], dest, self.path_filter, lambda: out.stopped)
        return walk_items([self.root], dest, follow_symlinks=self.config.follow_symlinks,
                          path_filter=self.path_filter, attrs_for=lambda _key: _NO_ATTRS,
                          queue_size=self.config.walk_queue_size, totals=self.walk_totals,
                          names=KeyNames(self.config.normalize_keys))

    def _sorted_sides(self, out: Handoff[Any]) -> tuple[Iterator[LocalRecord], Iterator[RemoteRecord]]:
        local = ExternalSorter(self.sort_items)
        remote = ExternalSorter(self.sort_items)
        failure: list[BaseException] = []
        stop = threading.Event()

        def list_remote() -> None:
            try:
                self._list_remote(remote, stop)
            except BaseException as e:
                failure.append(e)

        normalized = self.config.normalize_keys != "none"
        lister = threading.Thread(target=list_remote, name="s3pump-sync-list", daemon=True)
        lister.start()
        walked = [0, 0]  # files and bytes the walk found: the run's totals, said as they grow (issue 26)
        say_at = time.monotonic() + _SAY_EVERY_S
        try:
            for item in self._walk(out):
                if failure:  # the listing failed: its error, not a plan
                    break
                if isinstance(item, EntrySkipped):  # the cluster's walk hands its skipped entries over
                    out.put(item)
                    continue
                if not isinstance(item, UploadItem):  # its Discovered totals: the planner counts its own
                    continue
                for path, kind in self.walk_totals.drain_skips():  # symlinks, FIFOs, ...: said, not planned
                    out.put(EntrySkipped(path, kind))
                if item.error is not None:
                    if len(self.error_keys) < _MAX_ERROR_KEYS:
                        self.error_keys.append(item.key)
                    else:
                        self.error_keys_overflow = True
                    out.put(item)
                    continue
                ident = item.identity  # the walk's stat, which keys the hash cache's answer (no second stat)
                local.add((item.key.encode("utf-8"), item.size_bytes, item.mtime_ns,  # a LocalRecord's fields
                           ident.ctime_ns if ident is not None else -1, ident.inode if ident is not None else -1))
                if normalized and item.path is not None and item.path != self._path(item.key):
                    self._renamed[item.key] = item.path
                walked[0] += 1
                walked[1] += item.size_bytes
                if walked[0] % 256 == 0 and time.monotonic() >= say_at:
                    say_at = time.monotonic() + _SAY_EVERY_S
                    out.put(Discovered(walked[0], walked[1]))
                    out.flush()
                if out.stopped:
                    raise Stopped
            if out.stopped:  # a walk cut short is no plan: never delete on it
                raise Stopped
            for path, kind in self.walk_totals.drain_skips():
                out.put(EntrySkipped(path, kind))
            # every local file is planned once (unchanged, to upload, or to compare): the walk's count is the total
            out.put(Discovered(walked[0], walked[1], final=True))
            out.flush()
            while lister.is_alive():  # a cancel is seen within 0.2 s, however long a listing page takes
                if out.stopped:
                    raise Stopped
                lister.join(0.2)
        except BaseException:
            stop.set()  # the lister ends at its next object; a daemon, it is not waited for
            raise
        if failure:
            raise failure[0]
        self.local_files, self.remote_objects = local.count, remote.count
        self.sort_runs = local.runs + remote.runs
        # named as they leave the sort (it holds and spills plain tuples)
        return map(LocalRecord._make, local.sorted()), map(RemoteRecord._make, remote.sorted())

    # ------------------------------------------------------------------ outcomes (producer thread)
    def _emit_outcome(self, o: Outcome, out: Handoff[Any]) -> None:
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
            size = a.local.size_bytes if a.local else 0
            out.put(UploadItem(key=a.key, size_bytes=size, source=path, error=o.error))
            return
        if o.kind == "skip":
            size = o.digest.size_bytes if o.digest else a.local.size_bytes if a.local else 0
            self._skipped(out, a.key, size, o.reason)
            return
        assert o.digest is not None
        out.put(UploadPlanned(path, a.key, o.digest.size_bytes, o.reason, o.fallback))
        if o.fallback:
            log.info("uploading %s: %s", self.dest.key_url(a.key), o.reason)
        if not self.dry_run:
            attrs = self.attrs_for(a.key).with_metadata({"md5": o.digest.md5})
            d = o.digest  # the version hashed: the upload must send exactly it (identity and MD5 checked after)
            out.put(UploadItem(key=a.key, size_bytes=d.size_bytes, source=path, path=path, attrs=attrs,
                               mtime_ns=d.mtime_ns, identity=FileIdentity(d.size_bytes, d.mtime_ns, d.ctime_ns,
                                                                          d.inode, d.device), md5=d.md5,
                               check_put=self.put_check))

    # ------------------------------------------------------------------ the producer
    def produce(self, out: Handoff[Any]) -> None:
        local, remote = self._sorted_sides(out)
        pool = cf.ThreadPoolExecutor(max_workers=self.hash_workers, thread_name_prefix="s3pump-hash")
        pending: set[cf.Future[list[Outcome]]] = set()
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
                    raise Stopped

        def submit() -> None:
            nonlocal batch, batch_bytes
            cached: dict[str, FileDigest] | None = None  # None: the pool task queries the cache
            if batch and self.cache is not None:  # what the cache decides, decide here
                cached = self.examiner.cached(batch)
                answered: list[Action] = []
                rest: list[Action] = []
                by_mtime = self.mode == "default"
                for a in batch:
                    digest = cached.get(self._cache_path(a.key))
                    if not self.examiner.answered_by_cache(a, digest):
                        rest.append(a)
                    elif by_mtime and digest is not None:  # the same bytes: said here, with no outcome to build
                        self.cache_hits += 1
                        self._skipped(out, a.key, digest.size_bytes, SAME_CONTENT)
                    else:
                        answered.append(a)
                for o in self.examiner.examine_batch(answered, cached):
                    self._emit_outcome(o, out)
                batch = rest
            if batch:
                pending.add(pool.submit(self.examiner.examine_batch, batch, cached))  # the cache was queried once
            batch, batch_bytes = [], 0
            collect(False)
            while len(pending) >= window:
                collect(True)

        try:
            for a in plan(local, remote, self.mode, delete=self.delete):
                if a.kind == "skip":  # the totals hold every file and byte; a skipped one counts as done
                    self._found(out, 1, a.local.size_bytes if a.local else 0)
                    self._skipped(out, a.key, a.local.size_bytes if a.local else 0, a.reason)
                elif a.kind == "keep":
                    self.remote_only_kept += 1
                elif a.kind == "delete":
                    if self._withheld(a.key):
                        self.deletes_withheld += 1
                    else:
                        self.deletes.append(a.key)
                        self.delete_bytes += a.remote.size_bytes if a.remote else 0
                else:
                    assert a.local is not None
                    self._found(out, 1, a.local.size_bytes)
                    if a.kind == "upload" and self.dry_run:
                        out.put(UploadPlanned(self._path(a.key), a.key, a.local.size_bytes, a.reason))
                        continue
                    batch.append(a)
                    batch_bytes += a.local.size_bytes
                    if len(batch) >= _BATCH_FILES or batch_bytes >= _BATCH_BYTES:
                        submit()
            submit()
            while pending:
                collect(True)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            if self.cache is not None:
                self.cache.flush()
        self._skipped(out, None)
        out.put(Discovered(self.found_files, self.found_bytes, final=True))

    def _skipped(self, out: Handoff[Any], key: str | None, size_bytes: int = 0, reason: str = "") -> None:
        """An unchanged file: its own ``FileSkipped``, or counted into the next ``FilesUnchanged``
        (``key`` None: hand out what is counted)."""
        if self.list_unchanged:
            if key is not None:
                out.put(FileSkipped(self._path(key), key, size_bytes, reason))
            return
        counted = self._unchanged
        if key is not None:
            counted[0] += 1
            counted[1] += size_bytes
            if counted[0] < _UNCHANGED_PER_EVENT:
                return
        if counted[0]:
            out.put(FilesUnchanged(counted[0], counted[1]))
            counted[:] = [0, 0]

    def _found(self, out: Handoff[Any], files: int, size_bytes: int) -> None:
        """Count planned files and bytes (the totals were said after the walk; the final ``Discovered``
        at the end of the plan says these counts, the same unless the tree changed)."""
        self.found_files += files
        self.found_bytes += size_bytes


_NO_ATTRS = ObjectAttributes()
