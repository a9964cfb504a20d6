"""``s3pump sync``: upload the new and changed files of a directory to ``s3://bucket/prefix``.

Reads top to bottom:

1. **Parse** the destination and the mode. Keys are ``prefix/<path relative to DIR>``, as
   ``aws s3 sync``; only objects under ``prefix/`` are compared (never ``prefix2/``).
2. **Plan**, in a producer thread, in bounded memory: :class:`~s3pump.plan.syncplanner.SyncPlanner`
   (the walk and the listing, sorted and merge-joined; hashing for ``--checksum``).
3. **Upload** through the :class:`~s3pump.run.Run`'s engine, as ``upload`` does (options,
   progress, retries, failed-list, exit codes).
4. **Delete** (``--delete``) the objects with no local file: DeleteObjects in batches of
   1,000, after the uploads. Objects under a directory the walk could not read are never
   deleted (they are counted as withheld).
5. **Report**: :class:`~s3pump.reports.SyncReport`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..config import TransferConfig
from ..errors import CancelledError, PathNotFoundError, S3PumpError, UsageError
from ..events import Event, ObjectDeleted, Subscriber, UploadPlanned
from ..hashcache import HashCache
from ..intents import IntentLog, sweep_dead_runs
from ..plan.deletelimit import DeleteLimit
from ..plan.syncplan import MODES, SyncMode
from ..plan.syncplanner import SyncPlanner, Walker
from ..reports import SyncReport, UploadReport
from ..run import Run
from ..session import state_dir
from ..sources.handoff import Handoff
from ..sources.pathfilter import FilterRule, PathFilter
from ..store.base import Store
from ..urls import S3Url, join_key, parse_s3_url

__all__ = ["SyncStats", "sync"]

log = logging.getLogger("s3pump.sync")

#: Records per side kept in memory by the sort before it spills a run to disk (~250 bytes each).
SORT_ITEMS_IN_MEMORY = 100_000


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


def sync(
    source_dir: str | Path,
    destination: str,
    config: TransferConfig | None = None,
    *,
    mode: SyncMode = "default",
    delete: bool = False,
    max_delete: int | str | None = None,
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
    handle_signals: bool = False,
    cluster: Any = None,
    list_unchanged: bool = True,
) -> SyncReport:
    """Upload the new and changed files of ``source_dir`` to ``destination`` (``s3://bucket/prefix``).

    ``mode``: ``"default"`` (as ``rclone sync``: size or ``x-amz-meta-mtime`` differs, one HeadObject
    per same-size object the hash cache cannot clear; no recorded mtime: the aws rule), ``"server-modtime"``
    (as ``aws s3 sync``: size differs or the file is newer than LastModified), ``"size-only"``, or
    ``"checksum"`` (MD5 against the ETag, a recomputed multipart ETag, the file's CRC against the
    object's full-object checksum, or the ``md5`` metadata; when none can decide, the file is uploaded
    and the ``planned`` event says why). ``delete``: remove objects under the prefix that have no local
    file (after the uploads). ``max_delete``: a count (``10``) or a share of
    the objects under the prefix (``"5%"``); a plan that deletes more deletes nothing and raises (rclone's
    ``--max-delete``; the uploads are done by then). ``dry_run``: list the plan as events
    (``UploadPlanned``, ``ObjectDeleted(dry_run=True)``), change nothing.
    ``filters``: ``("include"|"exclude", glob)`` in order, the aws cli's rule (last match wins;
    :class:`~s3pump.sources.pathfilter.PathFilter`); without it, ``include``/``exclude`` as two lists.
    ``include``/``exclude``: globs on the path relative to ``source_dir``, applied to both
    sides (an excluded object is never deleted). ``hash_cache``: True for the cache in the
    state directory, a path, or False. Memory: at most ``sort_items_in_memory`` records
    per side (~250 bytes each) before the sort spills to a temporary file. ``cluster``: the
    uploads run on Dask workers (``local:N``, ``tcp://host:8786`` or a ``distributed.Client``;
    needs ``s3pump[dask]``), and so do the walk and the reading of files to hash (``--checksum``, the
    MD5 each upload carries); the listing, planning, hash cache, deletes and the report stay here
    (docs/cluster.md). ``list_unchanged``: one
    ``FileSkipped`` event per unchanged file (True), or ``FilesUnchanged`` counts of a thousand (False:
    what a no-op sync of many files wants; the report's counts are the same).

    Returns:
        SyncReport: uploads (done/failed/unchanged), deletes, hashing, plan counts.

    Raises:
        UsageError: bad destination, mode or config, or ``source_dir`` not a directory (exit 2).
        PathNotFoundError: ``source_dir`` does not exist (a UsageError and SourceNotFoundError, exit 2).
        DeleteLimitError: the plan deletes more than ``max_delete`` (exit 2, nothing deleted).
        NoSuchBucketError, CredentialsError: the bucket check or the listing failed (exit 2).
        CancelledError: cancelled (``handle_signals``: the first SIGINT/SIGTERM); open multipart
            uploads were aborted (exit 130).
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
    if cluster is not None and not dry_run:
        from ..cluster.connect import require_distributed

        require_distributed()
    cluster_info: dict[str, Any] | None = None
    key_prefix = join_key(dest.prefix, "")  # "" or "prefix/": never compare "prefix2/..."
    sync_stats = SyncStats()
    cache: HashCache | None = None
    if hash_cache:
        cache = HashCache(state_dir() / "hashcache.sqlite" if hash_cache is True else Path(hash_cache))
        if cache.error:
            log.warning("%s", cache.error)
    walk: Any = None  # the distributed walk's counts (WalkStats), when the workers walk
    walker: Walker | None = None
    with contextlib.ExitStack() as stack:
        if cache is not None:  # closed however this ends (a bad S3PUMP_CLUSTER_WALK, a scheduler not reached)
            stack.callback(cache.close)
        hasher: Any = None  # the workers' hash tasks (ClusterHasher), with --cluster
        if cluster is not None and not dry_run:
            from ..cluster.connect import connect
            from ..cluster.coordinator import credentials_env
            from ..cluster.hashing import ClusterHasher
            from ..cluster.treewalk import WalkStats, walk_on_workers

            on_workers = walk_on_workers(config)  # checks S3PUMP_CLUSTER_WALK before connecting
            # one connection for the planner's walk, its hash tasks and the shards
            cluster = stack.enter_context(connect(cluster, local_env=credentials_env(config)))
            hasher = ClusterHasher(cluster)
            if on_workers:
                from ..cluster.followwalk import walk_followed_on_cluster
                from ..cluster.treewalk import walk_on_cluster

                walk_tree = walk_followed_on_cluster if config.follow_symlinks else walk_on_cluster

                walk = WalkStats()

                def walker(roots: Sequence[str], to: S3Url, keep: PathFilter, stopped: Callable[[], bool]) -> Any:
                    return walk_tree(cluster, roots, to, path_filter=keep, stats=walk, cancelled=stopped)

        limit = DeleteLimit.parse(max_delete)
        handoff: Handoff[Any] = Handoff(name="s3pump-sync-plan")
        with Run("sync", config, dest.bucket, store=store, embedded=embedded,
                 subscribers=[sync_stats, *subscribers], failed_list=failed_list, handle_signals=handle_signals,
                 check_failed_list=True) as run:
            planner = SyncPlanner(
                root=root, dest=dest, key_prefix=key_prefix, store=run.store, config=run.config, mode=mode,
                delete=delete, dry_run=dry_run, cache=cache,
                path_filter=PathFilter(tuple(include), tuple(exclude), rules=filters),
                sort_items=sort_items_in_memory, hash_workers=hash_workers or max(4, os.cpu_count() or 1),
                walker=walker, list_unchanged=list_unchanged, hasher=hasher,
            )
            intents = None if dry_run else _intent_log(run, root, destination)
            run.on_cancel(handoff.stop)  # Ctrl-C reaches the planner, even while its listing stalls or loops
            try:
                handoff.start(planner.produce)
                if dry_run:
                    for item in run.emitting(handoff):
                        assert item.error is not None  # a dry run plans no upload items
                        run.fail(item, item.error)
                    for key in planner.deletes:
                        run.emit(ObjectDeleted(key, dry_run=True))
                    limit.check(len(planner.deletes), planner.remote_objects, dest)
                else:
                    cluster_info = _transfer(run, handoff, cluster, walk)
                    if cluster_info is not None and hasher is not None:
                        cluster_info["hash"] = hasher.to_json()
                    limit.check(len(planner.deletes), planner.remote_objects, dest)
                    run.delete(planner.deletes)
            finally:
                handoff.stop()
                planner.deletes.close()
                if intents is not None:
                    intents.finish(run.store)
    base = dataclasses.replace(run.report(dry_run=dry_run), cluster=cluster_info)
    return SyncReport(
        **{f: getattr(base, f) for f in UploadReport.__dataclass_fields__},
        mode=mode, local_files=planner.local_files, remote_objects=planner.remote_objects,
        planned_uploads=sync_stats.planned_uploads, fallback_uploads=sync_stats.fallback_uploads,
        planned_deletes=sync_stats.planned_deletes, planned_delete_bytes=planner.delete_bytes,
        objects_deleted=sync_stats.objects_deleted,
        deletes_failed=sync_stats.deletes_failed, deletes_withheld=planner.deletes_withheld,
        remote_only_kept=planner.remote_only_kept, files_hashed=planner.files_hashed,
        bytes_hashed=planner.bytes_hashed, hash_cache_hits=planner.cache_hits,
        sort_runs_spilled=planner.sort_runs,
    )


def _intent_log(run: Run, root: str, destination: str) -> IntentLog:
    """Abort what killed runs left open in the bucket (their journals, no live run's), then record this
    run's multipart intents and uploads, so a kill leaves none that the next run cannot abort."""
    with contextlib.suppress(S3PumpError, OSError):
        sweep_dead_runs(state_dir() / "journals", run.store, run.config.endpoint_url, run.bucket, policy=run.policy)
    intents = IntentLog(state_dir(), "sync", [root], destination, run.config.endpoint_url, run.bucket)
    run.subscribe(run.guard(intents, lambda: intents.path, "resume journal"))
    return intents


def _transfer(run: Run, handoff: Handoff[Any], cluster: Any = None, walk: Any = None) -> dict[str, Any] | None:
    """The planner's uploads through the run's engine (or a cluster's workers: what they did is
    returned); a planner that fails cancels the transfer (the safe way: open multipart uploads are
    aborted) and its error is raised instead."""
    planner_error: list[BaseException] = []

    def items() -> Iterator[Any]:
        try:
            yield from handoff
        except Exception as e:
            planner_error.append(e)
            run.cancel()

    outcome = None
    try:
        if cluster is None:
            run.transfer(items())
        else:
            from ..cluster.coordinator import transfer_on_cluster

            outcome = transfer_on_cluster(run, run.emitting(items()), cluster, walk=walk).to_json()
    except CancelledError:
        if planner_error and not isinstance(planner_error[0], CancelledError):  # the planner's own error
            raise _as_s3pump_error(planner_error[0]) from None
        raise
    if planner_error:  # the planner failed after the engine had taken its last item
        raise _as_s3pump_error(planner_error[0])
    return outcome


def _as_s3pump_error(e: BaseException) -> BaseException:
    if isinstance(e, S3PumpError):
        return e
    if isinstance(e, OSError):
        return S3PumpError(f"sync stopped: {e}; nothing was deleted; check free space in the temp directory")
    return e
