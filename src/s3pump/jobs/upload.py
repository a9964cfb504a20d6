"""``s3pump upload``: files and directory trees to ``s3://bucket/prefix``, in parallel.

Validate (the destination, the paths, two sources for one key), plan the items (a streaming
walk, or a failed-list from an earlier run), transfer them (the run applies the resume journal,
:mod:`s3pump.resume`), report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..config import TransferConfig
from ..errors import (
    InvalidKeyError,
    PathNotFoundError,
    UsageError,
    WorkerLostError,
)
from ..events import Discovered, FileSkipped, Subscriber
from ..items import UploadItem
from ..reports import UploadReport
from ..resume import ResumeJournal
from ..run import Run
from ..sources.clashes import check_no_key_clashes, find_clashes_in, find_key_clashes, root_order
from ..sources.content_types import attrs_by_content_type
from ..sources.countahead import counted_ahead
from ..sources.failedlist import read_failed_list
from ..sources.keynames import KeyNames
from ..sources.pathfilter import FilterRule, PathFilter
from ..sources.walk import walk_items
from ..store.base import ObjectAttributes, Store
from ..urls import parse_s3_url, sanitize_key

__all__ = ["check_paths_exist", "read_failed_list", "upload"]


def check_paths_exist(paths: Iterable[str | Path]) -> None:
    """The aws cli's rule for its PATH argument: one that does not exist is a usage error. With
    several PATHs of which some exist, a missing one fails alone (listed, exit 1) and the others
    are uploaded; only when none exists is it a usage error.

    Raises:
        PathNotFoundError: no PATH exists; names the first (exit 2).
    """
    given = list(paths)
    if given and not any(os.path.lexists(p) for p in given):
        raise PathNotFoundError(f"the path {given[0]} does not exist")


def upload(
    paths: Sequence[str | Path],
    destination: str,
    config: TransferConfig | None = None,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    filters: Sequence[FilterRule] | None = None,
    from_list: str | Path | None = None,
    dry_run: bool = False,
    embedded: bool = False,
    failed_list: str | Path | None = None,
    subscribers: Iterable[Subscriber] = (),
    store: Store | None = None,
    resume: bool = True,
    handle_signals: bool = False,
    cluster: Any = None,
    cluster_options: dict[str, Any] | None = None,
) -> UploadReport:
    """Upload files and directory trees to ``destination`` (``s3://bucket/prefix``).

    Keys are the prefix plus each file's POSIX path relative to its directory argument
    (see :mod:`s3pump.sources.walk`). ``filters``: ``("include"|"exclude", glob)`` pairs in
    order, the aws cli's rule (the last match decides); without it, ``include``/``exclude``.
    Files above ``config.multipart_threshold_bytes``
    go as multipart uploads with parts of ``config.part_size_bytes`` (grown so no object
    needs over 10,000 parts). Failed files are listed in the report and written as JSON
    lines to ``failed_list`` (default: the state directory), for ``from_list=``.

    Resume: a journal per (sources, destination, endpoint) in the state directory records
    finished files and each multipart upload's completed parts as they complete. Running
    the same upload again after a crash, Ctrl-C or failures skips the finished files and
    continues unfinished multipart uploads, sending only missing parts; a run that ends
    with nothing failed deletes the journal. ``resume=False`` (``--no-resume``) aborts the
    journal's open uploads and starts over.

    ``handle_signals``: the first SIGINT/SIGTERM cancels at a safe point, a second at once (the
    CLI's setting; by default no signal handler is installed).

    ``cluster``: run the uploads on Dask distributed workers (``local:N``, ``tcp://host:8786`` or a
    ``distributed.Client``; needs ``s3pump[dask]``); the workers walk the tree too (unless
    ``config.follow_symlinks``; :mod:`s3pump.cluster.treewalk`), this process journals, cuts shards
    and reports (see :mod:`s3pump.cluster` and docs/cluster.md). ``cluster_options``: keyword arguments of
    :func:`s3pump.cluster.coordinator.transfer_on_cluster` (shard limits, a per-worker cap).

    Returns:
        UploadReport: counts, bytes, elapsed seconds, retries, latency p50/p99, failures.

    Raises:
        UsageError: bad destination or config, or ``cluster`` without ``s3pump[dask]`` (exit 2). A PATH
            that does not exist fails alone, as a SourceNotFoundError item (the CLI checks the paths
            first: :func:`check_paths_exist`).
        WorkerMismatchError: a cluster worker sees other files than this process (exit 2).
        NoSuchBucketError, CredentialsError: the bucket check failed (exit 2).
        CancelledError: cancelled; open multipart uploads were kept for the journal to resume, or
            aborted with ``resume=False`` (exit 130).
    """
    config = config or TransferConfig.from_env()
    dest = parse_s3_url(destination)
    if dest.prefix.rstrip("/"):
        try:  # a bad prefix would fail every key: say so once (exit 2)
            sanitize_key(dest.prefix.rstrip("/"))
        except InvalidKeyError as e:
            raise InvalidKeyError(f"{destination}: the prefix is not a valid key: {e}") from None
    if not paths and from_list is None:
        raise UsageError("give at least one PATH, or --from-list FILE")
    if cluster is not None and not dry_run:
        from ..cluster.connect import require_distributed

        require_distributed()  # before anything is walked or sent
    attrs = ObjectAttributes.of(config)
    path_filter = PathFilter(include, exclude, rules=filters)  # the walk's and the clash check's: one filter
    roots = [str(p) for p in paths]
    names = KeyNames(config.normalize_keys)  # one for the clash check and the walk: a warning once
    with contextlib.ExitStack() as stack:
        walk: Any = None  # the distributed walk's counts (WalkStats), when the workers walk
        if cluster is not None and not dry_run and from_list is None:
            from ..cluster.treewalk import WalkStats, walk_on_workers

            if walk_on_workers(config):
                from ..cluster.connect import connect
                from ..cluster.coordinator import credentials_env

                # one connection for the clash pre-pass, the walk and the shards
                cluster = stack.enter_context(connect(cluster, local_env=credentials_env(config)))
                walk = WalkStats()

        def tree(stats: Any = None, cancelled: Any = lambda: False) -> Iterable[Any]:
            """The walk of ``roots``: on the cluster's workers, or in a thread of this process."""
            if walk is not None:
                from ..cluster.followwalk import walk_followed_on_cluster
                from ..cluster.treewalk import walk_on_cluster

                walker = walk_followed_on_cluster if config.follow_symlinks else walk_on_cluster
                return walker(cluster, roots, dest, path_filter=path_filter, attrs=attrs, stats=stats,
                              cancelled=cancelled)
            return walk_items(roots, dest, follow_symlinks=config.follow_symlinks, path_filter=path_filter,
                              attrs_for=attrs_by_content_type(attrs), queue_size=config.walk_queue_size,
                              discovered=True, names=names)

        # two sources that map to one key: refuse before sending (only several roots, or a list, can have them)
        if from_list is not None:
            check_no_key_clashes(find_clashes_in(read_failed_list(from_list, dest, attrs)), dest)
        elif len(paths) > 1 and walk is not None:
            check_no_key_clashes(find_clashes_in(whole_walk(tree()), order=root_order(roots)), dest)
        elif len(paths) > 1:
            check_no_key_clashes(find_key_clashes(roots, dest, follow_symlinks=config.follow_symlinks,
                                                  path_filter=path_filter, names=names), dest)
        run = Run("upload", config, dest.bucket, store=store, embedded=embedded, subscribers=subscribers,
                  failed_list=failed_list, handle_signals=handle_signals, check_bucket=not dry_run,
                  check_failed_list=True, resume=ResumeJournal(
                      roots if from_list is None else [f"--from-list={from_list}"], destination, fresh=not resume,
                      workers_create=cluster is not None))
        items: Iterable[UploadItem | Discovered] = (
            read_failed_list(from_list, dest, attrs) if from_list is not None else tree(walk, lambda: run.cancelled))
        if from_list is None and walk is None and not dry_run:  # totals now, not when the walk gets there
            items = counted_ahead(items, roots, run.bus.emit, follow_symlinks=config.follow_symlinks,
                                  path_filter=path_filter, on_stop=run.on_cancel)
        if dry_run:
            return _dry_run(run, items)
        with run:  # Ctrl-C keeps open multipart uploads for the journal to resume; --no-resume aborts them
            if cluster is not None:
                from ..cluster.coordinator import transfer_on_cluster

                outcome = run.transfer(items, through=lambda planned: transfer_on_cluster(
                    run, planned, cluster, walk=walk, **(cluster_options or {})))
            else:
                run.transfer(items)
    if cluster is not None:
        return dataclasses.replace(run.report(), cluster=outcome.to_json())
    return run.report()


def whole_walk(items: Iterable[Any]) -> Iterator[Any]:
    """``items`` (a walk on the cluster's workers) for the key-clash check, which must see every file:
    a directory whose walk task was lost (its workers died) is walked again by the upload's own walk,
    so a clash inside it would go unseen and both files be sent to one key.

    Raises:
        WorkerLostError: a walk task was lost; nothing was uploaded, and a rerun walks it again (exit 1).
    """
    for item in items:
        if isinstance(item, UploadItem) and isinstance(item.error, WorkerLostError):
            raise WorkerLostError(f"{item.source}: the key-clash check could not walk this directory (the workers "
                                  "that walked it were lost); nothing was uploaded; rerun the command")
        yield item


def _dry_run(run: Run, items: Iterable[UploadItem | Discovered]) -> UploadReport:
    """List what would be uploaded (FileSkipped, reason ``dry-run``) and what could not be; send nothing."""
    for item in run.emitting(items):
        if item.error is not None:
            run.fail(item, item.error)
        else:
            run.emit(FileSkipped(item.source, item.key, item.size_bytes, "dry-run"))
    run.close_failed_list()
    return run.report(dry_run=True)
