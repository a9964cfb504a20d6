"""A rerun never trusts its journal over the bucket: the files an earlier run journaled as done are
skipped only if their objects are still there, with the journaled size and ETag.

Between a run that stopped (Ctrl-C, a kill, failures) and its rerun, objects it wrote may be deleted
(by a person, a lifecycle rule, another tool) or replaced. Before the rerun plans anything,
:func:`forget_missing_done` merges the journal's done files with one listing of the bucket (as sync
merges its walk with a listing; not one HEAD per file): those whose object is missing, or has another
size or ETag, are forgotten, so they are uploaded again. One done file (a single-key destination) is
checked by one HeadObject. The listing is of the longest prefix the done keys share, so a journal of
a few files in a large bucket lists no more than it must; a rerun after a run that finished lists
nothing (that journal was deleted).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from .errors import S3PumpError
from .journal import Journal
from .store.base import ObjectInfo, Store

__all__ = ["forget_missing_done"]

_log = logging.getLogger("s3pump.journal")

#: listed objects inserted into the temporary table per transaction
_BATCH = 1000


def _etag(text: str | None) -> str:
    return (text or "").strip('"')


def forget_missing_done(journal: Journal, store: Store, bucket: str) -> int:
    """Forget the journal's done files whose objects are not in ``bucket`` as journaled (size and
    ETag; a journaled file without an ETag by size). If the bucket cannot be listed (a write-only
    credential, an outage past the retries), every done file is forgotten: uploading one again is
    safe, skipping one that is missing is not. Returns how many were forgotten."""
    journal.flush()
    db = journal.db
    count, low, high = db.execute("SELECT count(*), min(key), max(key) FROM files WHERE status='done'").fetchone()
    if not count:
        return 0
    db.execute("CREATE TEMP TABLE IF NOT EXISTS listed (key TEXT PRIMARY KEY, size_bytes INTEGER, etag TEXT)")
    db.execute("DELETE FROM listed")
    try:
        if count == 1:
            info = store.head_object(bucket, low)
            _insert(journal, iter([info] if info is not None else []), low, high)
        else:
            _insert(journal, store.list_objects(bucket, os.path.commonprefix([low, high])), low, high)  # noqa: RUF071
    except S3PumpError as e:
        _log.warning("s3://%s: cannot check that the files an earlier run uploaded are still there (%s); "
                     "uploading them again", bucket, e)
        db.execute("DELETE FROM listed")
    with journal._tx() as tx:
        gone = tx.execute(
            "DELETE FROM files WHERE status='done' AND NOT EXISTS (SELECT 1 FROM listed l WHERE l.key=files.key"
            " AND l.size_bytes=files.size_bytes AND (coalesce(files.etag, '')='' OR l.etag=trim(files.etag, '\"')))"
        ).rowcount
        tx.execute("DELETE FROM listed")
    if gone:
        _log.info("s3://%s: %d file(s) an earlier run uploaded are missing or changed; uploading them again",
                  bucket, gone)
    return int(gone)


def _insert(journal: Journal, objects: Iterator[ObjectInfo], low: str, high: str) -> None:
    """The listed objects between ``low`` and ``high`` into the temporary table, in batches."""
    batch: list[tuple[str, int, str]] = []
    for o in objects:
        if low <= o.key <= high:
            batch.append((o.key, o.size_bytes, _etag(o.etag)))
            if len(batch) >= _BATCH:
                _flush(journal, batch)
                batch = []
    _flush(journal, batch)


def _flush(journal: Journal, rows: list[tuple[str, int, str]]) -> None:
    if rows:
        with journal._tx() as db:
            db.executemany("INSERT OR REPLACE INTO listed VALUES (?, ?, ?)", rows)
