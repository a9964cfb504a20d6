"""Sync's compare of a file with its object, on the planner's hash pool: the file's digest (the hash cache's, or
one read now), HeadObject when the ETag cannot decide, and the outcome: upload, skip or failed.

:class:`Examiner` decides the upload and compare actions of the merge-join (:mod:`s3pump.plan.syncplan`) for
:class:`~s3pump.plan.syncplanner.SyncPlanner`, a batch at a time: ``--checksum`` compares the MD5 or recomputed
multipart ETag with the object's ETag, then (HeadObject with checksum mode) the file's CRC with the object's
full-object checksum (:mod:`s3pump.plan.crccheck`), then its ``md5`` metadata; the default mode takes the hash
cache's MD5 equal to the ETag as the same file, else the object's recorded mtime (rclone's rule). A file to upload is
always hashed whole, for its ``md5`` metadata. With a :data:`~s3pump.plan.digests.Hasher` (``--cluster``) every
read is done elsewhere, in one request per batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..config import TransferConfig
from ..errors import S3PumpError, SourceChangedError, SourceError, StoreError
from ..etags import FileDigest, file_digest, parse_etag
from ..hashcache import HashCache
from ..store.base import Store
from ..urls import S3Url
from .crccheck import HeadMemo, head_with_checksums
from .digests import Hasher, HashRequest, NeedsRead, read_digest
from .syncplan import (
    Action,
    RemoteRecord,
    SyncMode,
    Verdict,
    checksum_part_sizes,
    checksum_verdict,
    local_is_newer,
    mtime_verdict,
    valid_md5,
)

__all__ = ["SAME_CONTENT", "Examiner", "Outcome"]

#: Why a file of the default mode is unchanged without a HeadObject.
SAME_CONTENT = "same size and content (the cached MD5 is the object's ETag)"


@dataclass(slots=True)
class Outcome:
    """A hashed action: upload it, skip it, or it failed."""

    kind: str  # "upload" | "skip" | "failed"
    action: Action
    reason: str = ""
    fallback: bool = False
    digest: FileDigest | None = None
    fresh: bool = False
    error: S3PumpError | None = None


class Examiner:
    """Decides a sync's upload and compare actions (:meth:`examine_batch`, on the hash pool's threads; what the hash
    cache alone decides, :meth:`answered_by_cache`, in the planner's). ``path_of(key)`` and ``cache_path_of(key)``
    are the planner's: the file the walk found for a key, and its absolute path (the hash cache's key)."""

    def __init__(self, *, root: str, dest: S3Url, store: Store, config: TransferConfig, mode: SyncMode,
                 cache: HashCache | None, hasher: Hasher | None, path_of: Callable[[str], str],
                 cache_path_of: Callable[[str], str]) -> None:
        self.root, self.dest, self.store, self.config, self.mode = root, dest, store, config, mode
        self.cache = cache
        #: reads files elsewhere (``--cluster``'s workers); None: the pool threads here read them
        self.hasher = hasher
        self.path_of, self.cache_path_of = path_of, cache_path_of

    def _digest(self, path: str, *, whole: bool, part_sizes: list[int],
                known: FileDigest | None, crcs: Sequence[str] = ()) -> tuple[FileDigest, bool]:
        """The file's MD5 (if ``whole``), multipart ETags for ``part_sizes`` and CRCs of ``crcs``: from
        ``known`` (the cache, or an earlier pass) when it answers, else read once (opened beneath the
        root, see :func:`~s3pump.plan.digests.read_digest`: the upload then opens the inode hashed here).
        Returns (digest, read_now).

        Raises:
            NeedsRead: the planner has a :attr:`hasher`: the read is its to do.
            SourceError: the file cannot be read as walked.
        """
        if known is not None and known.has(whole=whole, part_sizes=part_sizes, crcs=crcs):
            return known, False
        if self.hasher is not None:
            raise NeedsRead(part_sizes, crcs)
        d = read_digest(self.root, path, part_sizes, whole=whole, follow_symlinks=self.config.follow_symlinks,
                        digest=file_digest, crcs=crcs)
        if known is not None and known.same_file(d):
            d = d.merged(known)
        return d, True

    def _head(self, key: str, heads: dict[str, HeadMemo] | None) -> HeadMemo:
        """HeadObject of ``key``, at most once per ``heads`` (a batch examined in rounds); with checksum
        mode for ``--checksum`` (the stored CRC can decide), without it for the default mode's mtime."""
        bucket, store = self.dest.bucket, self.store
        memo = heads.get(key) if heads is not None else None
        if memo is None:
            memo = HeadMemo((lambda: store.head_object(bucket, key)) if self.mode == "default"
                            else (lambda: head_with_checksums(store, bucket, key)))
            if heads is not None:
                heads[key] = memo
        return memo

    def _examine(self, action: Action, cached: FileDigest | None, heads: dict[str, HeadMemo] | None = None) -> Outcome:
        """Hash (or take from ``cached``) and decide one upload or compare action.

        Raises:
            NeedsRead: the file must be read, by the :attr:`hasher`.
        """
        path = self.path_of(action.key)
        remote = action.remote
        try:
            if action.kind == "upload" or remote is None:
                digest, fresh = self._digest(path, whole=True, part_sizes=[], known=cached)
                return Outcome("upload", action, action.reason, False, digest, fresh)
            if self.mode == "default":
                return self._examine_mtime(action, remote, cached, heads)
            part_sizes = checksum_part_sizes(remote, self.config.part_size_bytes)
            head = self._head(action.key, heads)
            etag = remote.etag.strip('"').lower()
            if not part_sizes:  # a single-part (or opaque) ETag: the MD5 decides, HeadObject only if it differs
                digest, fresh = self._digest(path, whole=True, part_sizes=[], known=cached)
            elif cached is not None and any(cached.multipart_etag_for(p) == etag for p in part_sizes):
                digest, fresh = cached, False  # a cached multipart ETag matches: no HeadObject
            elif crc := head.crc():
                # a full-object CRC (a stream's): one CRC pass (awscrt, ~0.15 CPU-s/GiB), no part size to guess
                digest, fresh = self._digest(path, whole=False, part_sizes=[], crcs=[crc[0]], known=cached)
            else:
                # a multipart ETag: the md5 metadata (s3pump's own uploads) needs only the MD5; without it,
                # only the candidate multipart ETags. Either way one MD5 pass per byte in the common case.
                stored = _stored_md5(head)
                digest, fresh = self._digest(path, whole=stored is not None, part_sizes=[] if stored else part_sizes,
                                             known=cached)
            if digest.size_bytes != remote.size_bytes:
                verdict = Verdict(False, "size differs (file changed since the walk)")
            else:
                verdict = checksum_verdict(digest, remote, part_sizes, head)
                if verdict.fallback and (crc := head.crc()) and crc[0] not in digest.crcs:
                    # the ETag could not decide (SSE-KMS, an unknown part size): the stored CRC can
                    digest, again = self._digest(path, whole=False, part_sizes=[], crcs=[crc[0]], known=digest)
                    fresh = fresh or again
                    verdict = checksum_verdict(digest, remote, part_sizes, head)
            if not verdict.same and not digest.md5:  # the upload needs the MD5 for its metadata
                digest, again = self._digest(path, whole=True, part_sizes=[], known=digest)
                fresh = fresh or again
        except SourceError as e:
            return Outcome("failed", action, error=e)
        return Outcome("skip" if verdict.same else "upload", action, verdict.reason, verdict.fallback,
                        digest, fresh)

    def _examine_mtime(self, action: Action, remote: RemoteRecord, cached: FileDigest | None,
                       heads: dict[str, HeadMemo] | None = None) -> Outcome:
        """The default mode's compare (rclone's rule, :func:`~s3pump.plan.syncplan.mtime_verdict`): the
        hash cache's MD5 equal to the object's ETag is the same file with no request; else HeadObject
        and the object's recorded mtime decide (a HeadObject refused for this object, e.g. SSE-C, falls
        back to LastModified; one that no request can escape is raised: the item fails and the run stops). Only
        a file to upload is read (its MD5, for the ``md5`` metadata). Raises SourceError."""
        if self.answered_by_cache(action, cached):
            return Outcome("skip", action, SAME_CONTENT, digest=cached)
        assert action.local is not None
        try:
            verdict = mtime_verdict(action.local.mtime_ns, self._head(action.key, heads)(), remote.last_modified_s)
        except StoreError as e:
            if e.stops_run or e.exit_code == 2:  # credentials, region, clock: not this object's; the run's
                raise
            newer = local_is_newer(action.local.mtime_ns, remote.last_modified_s)
            verdict = Verdict(not newer, f"HeadObject failed ({e}); local file is {'' if newer else 'not '}newer "
                              "than the object's LastModified")
        if verdict.same:
            return Outcome("skip", action, verdict.reason)
        digest, fresh = self._digest(self.path_of(action.key), whole=True, part_sizes=[], known=cached)
        return Outcome("upload", action, verdict.reason, False, digest, fresh)

    def cached(self, batch: list[Action]) -> dict[str, FileDigest]:
        """The hash cache's digests of the batch's files that still match them (one query): keyed by the size,
        mtime, ctime and inode the walk's ``stat`` saw (a file changed since is caught by the upload's own
        checks, as any file that changes after the walk), else by a ``stat`` now."""
        if self.cache is None:
            return {}
        stats: dict[str, tuple[int, int, int, int]] = {}
        for a in batch:
            loc = a.local
            if loc is not None and loc.inode >= 0:
                stats[self.cache_path_of(a.key)] = (loc.size_bytes, loc.mtime_ns, loc.ctime_ns, loc.inode)
                continue
            try:
                st = os.stat(self.path_of(a.key), follow_symlinks=self.config.follow_symlinks)
            except OSError:
                continue  # reported when the file is read
            stats[self.cache_path_of(a.key)] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        return self.cache.get_many(stats)

    def answered_by_cache(self, a: Action, cached: FileDigest | None) -> bool:
        """Whether the cached digest decides ``a`` as unchanged with no read and no request: the
        object's single-part ETag is its MD5, or its multipart ETag is one it holds (a warm
        ``--checksum`` sync's common case, decided in the producer thread: handing such files to
        the hash pool cost more in thread switches than the decision itself)."""
        if cached is None or a.kind != "compare" or a.remote is None or cached.size_bytes != a.remote.size_bytes:
            return False
        etag = a.remote.etag.strip('"').lower()
        parsed = parse_etag(etag)
        if parsed is None:
            return False
        if parsed[1] is None:
            return bool(cached.md5) and parsed[0] == cached.md5
        return any(cached.multipart_etag_for(p) == etag
                   for p in checksum_part_sizes(a.remote, self.config.part_size_bytes))

    def examine_batch(self, batch: list[Action], cached: dict[str, FileDigest] | None = None) -> list[Outcome]:
        """Pool task: one cache query for the batch (unless ``cached`` is given), then each action."""
        if cached is None:
            cached = self.cached(batch)
        if self.hasher is not None:
            return self._examine_elsewhere(batch, cached, self.hasher)
        out = []
        for a in batch:
            try:
                out.append(self._examine(a, cached.get(self.cache_path_of(a.key))))
            except StoreError as e:  # HeadObject failed hard (not a per-object refusal)
                out.append(Outcome("failed", a, error=e))
        return out

    def _examine_elsewhere(self, batch: list[Action], cached: dict[str, FileDigest], hasher: Hasher) -> list[Outcome]:
        """:meth:`examine_batch` with every read done by ``hasher`` (another process): examine each
        action; those that must read a file are read together in one request (the MD5 always, so the
        upload's metadata needs no second read), then examined again with what was read (their
        HeadObject is not sent twice). Two rounds at most: the second has every digest it asks for."""
        known = dict(cached)
        heads: dict[str, HeadMemo] = {}
        outcomes: dict[int, Outcome] = {}
        read: set[str] = set()  # cache paths read in this batch (their outcomes are fresh)
        todo = list(range(len(batch)))
        for _round in range(3):
            need: dict[int, tuple[tuple[int, ...], tuple[str, ...]]] = {}
            for i in todo:
                a = batch[i]
                try:
                    o = self._examine(a, known.get(self.cache_path_of(a.key)), heads)
                except NeedsRead as n:
                    need[i] = (n.part_sizes, n.crcs)
                    continue
                except StoreError as e:
                    o = Outcome("failed", a, error=e)
                o.fresh = o.fresh or (o.digest is not None and self.cache_path_of(a.key) in read)
                outcomes[i] = o
            if not need:
                break
            answers = hasher([HashRequest(self.root, self.path_of(batch[i].key), p, c) for i, (p, c) in need.items()],
                             self.config.follow_symlinks)
            for i, answer in zip(need, answers, strict=True):
                a = batch[i]
                if isinstance(answer, S3PumpError):
                    outcomes[i] = Outcome("failed", a, error=answer)
                    continue
                cpath = self.cache_path_of(a.key)
                prev = known.get(cpath)
                known[cpath] = answer.merged(prev) if prev is not None and prev.same_file(answer) else answer
                read.add(cpath)
            todo = [i for i in need if i not in outcomes]
        for i in todo:  # a digest that answered nothing twice (cannot happen: it holds what was asked)
            outcomes.setdefault(i, Outcome("failed", batch[i], error=SourceChangedError(
                f"{self.path_of(batch[i].key)}: could not be hashed; not uploaded")))
        return [outcomes[i] for i in range(len(batch))]


def _stored_md5(head: HeadMemo) -> str | None:
    """The object's ``md5`` user metadata, if HeadObject works and it is a valid hex MD5."""
    try:
        info = head()
    except StoreError:
        return None
    return valid_md5((info.metadata.get("md5") if info else None) or "")
