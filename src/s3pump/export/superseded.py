"""Objects an export no longer needs: those a complete run superseded, and rows' older schema versions.

A complete run (it read the whole table and stored every object) deletes, with ``--from-start``,
the data objects that were under ``prefix/<table>/`` when it began and that it (or the run it
resumed) did not rewrite; with ``--dedup``, the objects that held rows last time and got none now
(rows moved or deleted). A run in a new schema version deletes the objects of the batches it
exports again that an older version stored, so a row is stored in one version only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..store.base import Store
from ..urls import S3Url, join_key
from .partition import escape_cursor, escape_name
from .state import Checkpoint

__all__ = ["delete_superseded", "drop_older_versions"]

#: DeleteObjects takes at most 1,000 keys (S3 API reference).
_DELETE_BATCH = 1000


def _delete(store: Store, bucket: str, keys: list[str]) -> None:
    for i in range(0, len(keys), _DELETE_BATCH):
        store.delete_objects(bucket, keys[i:i + _DELETE_BATCH])


def delete_superseded(store: Store, bucket: str, checkpoint: Checkpoint, old_keys: Iterable[str],
                      seen_keys: set[str], *, dry_run: bool) -> list[str]:
    """Delete (unless ``dry_run``) the keys of ``old_keys`` (``--dedup``: the keys that held rows last
    time) and of ``checkpoint.superseded`` that this run did not write (``seen_keys``); returns them, sorted.

    Raises:
        StoreError: a DeleteObjects call failed.
    """
    stale = {k for k in old_keys if k and k not in seen_keys}
    if checkpoint.superseded is not None:
        stale |= {k for k in checkpoint.superseded if k not in seen_keys}
    keys = sorted(stale)
    if not dry_run:
        _delete(store, bucket, keys)
    return keys


def drop_older_versions(store: Store, dest: S3Url, table: str, version: int, ranges: list[tuple[Any, Any]]) -> None:
    """Delete the objects of batches ``(first, last)`` stored in an older schema version than
    ``version`` (a killed run's unfinished cuts, dead-letter entries replayed): this run exports their
    rows again in its version, and a row is stored in one version only.

    Raises:
        StoreError: the listing or a DeleteObjects call failed.
    """
    if version <= 1 or not ranges:
        return
    names = tuple(f"part-{escape_cursor(first)}-{escape_cursor(last)}." for first, last in ranges)
    base = join_key(dest.prefix, escape_name(table) + "/")
    keys = [o.key for o in store.list_objects(dest.bucket, base)
            if not o.key[len(base):].startswith(f"_v{version}/") and o.key.rsplit("/", 1)[-1].startswith(names)]
    _delete(store, dest.bucket, keys)
