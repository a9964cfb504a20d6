"""``s3pump upload``: files and directory trees to ``s3://bucket/prefix``, in parallel.

Parse the destination, plan the items (a streaming walk, or a failed-list from an
earlier run), hand them to the engine, report.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..config import TransferConfig
from ..engine.scheduler import Engine, UploadItem
from ..errors import InvalidKeyError, PathNotFoundError, S3PumpError, SourceNotFoundError, UsageError
from ..events import EntrySkipped, EventBus, FileFailed, FileSkipped, Subscriber
from ..journal import Journal, abort_orphans, journal_path, skip_and_resume
from ..report import FailedListWriter, RunStats, UploadReport
from ..session import open_store, state_dir
from ..sources.walk import FilterRule, PathFilter, WalkTotals, attrs_by_content_type, walk_items
from ..store.base import ObjectAttributes, Store
from ..urls import S3Url, parse_s3_url, sanitize_key

__all__ = ["attributes_of", "check_paths_exist", "read_failed_list", "upload"]


def attributes_of(config: TransferConfig) -> ObjectAttributes:
    """The per-object headers a config asks for."""
    return ObjectAttributes(config.content_type, config.acl, config.sse, config.sse_kms_key_id,
                            config.storage_class, config.metadata, cache_control=config.cache_control,
                            content_encoding=config.content_encoding,
                            content_disposition=config.content_disposition,
                            content_language=config.content_language, expires=config.expires,
                            tagging=config.tagging)


def default_failed_list_path(job: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return state_dir() / "failed" / f"{job}-{stamp}.jsonl"


def _open_journal(sources: list[str], destination: str, config: TransferConfig, store: Store, bucket: str,
                  *, fresh: bool) -> Journal:
    """The resume journal of this command; with ``fresh``, its open uploads are aborted and it restarts."""
    path = journal_path(state_dir(), "upload", sources, destination, config.endpoint_url)
    journal = Journal(path)
    if fresh:
        for u in journal.open_uploads():
            store.abort_multipart_upload(bucket, u.key, u.upload_id)
        journal.delete()
        journal = Journal(path)
    return journal


def read_failed_list(path: str | Path, dest: S3Url, attrs: ObjectAttributes) -> Iterator[UploadItem]:
    """Items from a failed-list (JSON lines with ``source`` and ``key``) or a plain list of paths.

    A JSON line is re-uploaded from its ``source`` to exactly its ``key``. A plain line is
    treated like a PATH argument (its file or tree goes under ``dest``).

    Raises:
        SourceNotFoundError: the list file does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise SourceNotFoundError(f"{path}: no such list file")
    attrs_for = attrs_by_content_type(attrs)
    plain: list[str] = []
    with open(p, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            if line.startswith("{"):
                rec = json.loads(line)
                source, key = rec["source"], rec["key"]
                if key:
                    yield from walk_items([source], S3Url(dest.bucket, key), attrs_for=attrs_for,
                                          threaded=False)
                else:  # a root that was missing or unreadable: retry it as a path
                    plain.append(source)
            else:
                plain.append(line)
    if plain:
        yield from walk_items(plain, dest, attrs_for=attrs_for, threaded=False)


def check_paths_exist(paths: Iterable[str | Path]) -> None:
    """The aws cli's rule for its PATH arguments: one that does not exist is a usage error.

    Raises:
        PathNotFoundError: the first missing path (exit 2).
    """
    for p in paths:
        if not os.path.lexists(p):
            raise PathNotFoundError(f"the path {p} does not exist")


def _reporting_skips(items: Iterable[UploadItem], totals: WalkTotals, bus: EventBus) -> Iterator[UploadItem]:
    """``items``, emitting an EntrySkipped for each entry the walk passed over (on this thread)."""
    for item in items:
        for path, kind in totals.drain_skips():
            bus.emit(EntrySkipped(path, kind))
        yield item
    for path, kind in totals.drain_skips():
        bus.emit(EntrySkipped(path, kind))


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
    totals: WalkTotals | None = None,
    resume: bool = True,
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

    Returns:
        UploadReport: counts, bytes, elapsed seconds, retries, latency p50/p99, failures.

    Raises:
        UsageError: bad destination or config (exit 2). A PATH that does not exist fails alone, as a
            SourceNotFoundError item (the CLI checks the paths first: :func:`check_paths_exist`).
        NoSuchBucketError, CredentialsError: the bucket check failed (exit 2).
        CancelledError: Ctrl-C / SIGTERM; open multipart uploads were aborted (exit 130).
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
    attrs = attributes_of(config)
    totals = totals if totals is not None else WalkTotals()
    if from_list is not None:
        items: Iterable[UploadItem] = read_failed_list(from_list, dest, attrs)
    else:
        items = walk_items(
            [str(p) for p in paths], dest, follow_symlinks=config.follow_symlinks,
            path_filter=PathFilter(include, exclude, rules=filters), attrs_for=attrs_by_content_type(attrs),
            queue_size=config.walk_queue_size, totals=totals,
        )
    stats = RunStats()
    failed_path = Path(failed_list) if failed_list else default_failed_list_path("upload")
    failed_writer = FailedListWriter(failed_path, dest.bucket)
    bus = EventBus(stats, failed_writer, *subscribers)
    items = _reporting_skips(items, totals, bus)
    try:
        if dry_run:
            for item in items:
                if item.error is not None:
                    bus.emit(FileFailed(item.source, item.key, item.size_bytes, item.error))
                else:
                    bus.emit(FileSkipped(item.source, item.key, item.size_bytes, "dry-run"))
        else:
            own_store = store is None
            if store is None:
                store, config = open_store(config, dest.bucket, embedded=embedded)
            journal = None
            try:
                journal = _open_journal(
                    [str(p) for p in paths] if from_list is None else [f"--from-list={from_list}"],
                    destination, config, store, dest.bucket, fresh=not resume,
                )
                bus.subscribe(journal)
                active = store

                def abort(key: str, upload_id: str) -> None:
                    active.abort_multipart_upload(dest.bucket, key, upload_id)

                # Ctrl-C keeps open multipart uploads for the journal to resume; --no-resume aborts them
                engine = Engine(store, dest.bucket, config, bus, keep_uploads_on_cancel=resume)
                engine.run(skip_and_resume(items, journal, bus, abort,
                                           multipart_threshold_bytes=config.multipart_threshold_bytes))
                if stats.files_failed == 0:
                    if journal.multipart_planned:  # only then can a killed run have left an orphan
                        with contextlib.suppress(S3PumpError):
                            abort_orphans(journal, store, dest.bucket, dest.prefix)
                    journal.delete()
            finally:
                if journal is not None:
                    journal.close()
                if own_store:
                    store.close()
    finally:
        failed_writer.close()
    return UploadReport.from_stats(
        stats, failed_list_path=str(failed_path) if failed_writer.count else None, dry_run=dry_run
    )
