"""``s3pump ls``: buckets, prefixes and objects, in the aws cli's ``aws s3 ls`` format.

* no URL (or ``s3://``): the buckets (ListBuckets), ``<created> <name>``;
* ``s3://bucket/prefix``: one level (ListObjectsV2 with ``Delimiter=/``): ``PRE name/`` for
  each common prefix, ``<last modified> <size> <basename>`` for each object;
* ``--recursive``: every object under the prefix, with its full key.

Times are local, ``YYYY-MM-DD HH:MM:SS``; sizes are bytes right-aligned in 10 columns, or with
``human_readable`` the aws cli's base-2 form (``1 Byte``, ``10 Bytes``, ``1.5 MiB``). As in the
aws cli, listing a prefix that matches nothing is exit 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..config import TransferConfig
from ..run import Run
from ..store.base import CommonPrefix, Store
from ..urls import parse_s3_url

__all__ = ["LsEntry", "format_entry", "format_summary", "human_readable_size", "ls"]

_HUMAN_SUFFIXES = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


@dataclass(frozen=True, slots=True)
class LsEntry:
    """One line of ``ls``: ``kind`` is ``bucket``, ``prefix`` or ``object``. ``name`` is what the
    line shows (a bucket, ``dir/``, a basename or, recursive, the full key); ``key`` the full key or
    prefix; ``size_bytes`` and ``time`` (aware datetime: LastModified or CreationDate) where known."""

    kind: str
    name: str
    key: str = ""
    size_bytes: int = 0
    time: dt.datetime | None = None
    etag: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind, "name": self.name}
        if self.kind == "object":
            out.update(key=self.key, size=self.size_bytes, etag=self.etag)
        elif self.kind == "prefix":
            out["prefix"] = self.key
        if self.time is not None:
            out["last_modified" if self.kind == "object" else "created"] = self.time.isoformat()
        return out


def human_readable_size(value: int) -> str:
    """The aws cli's ``--human-readable`` size: ``1 Byte``, ``10 Bytes``, ``1.0 KiB``, ``1.5 MiB``."""
    if value == 1:
        return "1 Byte"
    if value < 1024:
        return f"{value} Bytes"
    for i, suffix in enumerate(_HUMAN_SUFFIXES):
        unit = 1024 ** (i + 2)
        if round(value / unit * 1024) < 1024:
            return f"{1024 * value / unit:.1f} {suffix}"
    return f"{value / 1024 ** 6:.1f} EiB"


def _local_time(when: dt.datetime | None) -> str:
    return (when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when else "").ljust(19)


def format_entry(entry: LsEntry, *, human_readable: bool = False) -> str:
    """The line ``aws s3 ls`` prints for ``entry`` (no newline)."""
    if entry.kind == "prefix":
        return f"{'PRE':>30} {entry.name}"
    if entry.kind == "bucket":
        return f"{_local_time(entry.time)} {entry.name}"
    size = human_readable_size(entry.size_bytes) if human_readable else str(entry.size_bytes)
    return f"{_local_time(entry.time)} {size:>10} {entry.name}"


def format_summary(objects: int, size_bytes: int, *, human_readable: bool = False) -> str:
    """``aws s3 ls --summarize``'s two lines (after an empty line)."""
    size = human_readable_size(size_bytes) if human_readable else str(size_bytes)
    return f"\nTotal Objects: {objects}\n{'Total Size: ':>15}{size}"


def ls(url: str | None, config: TransferConfig | None = None, *, recursive: bool = False,
       embedded: bool = False, store: Store | None = None) -> Iterator[LsEntry]:
    """Stream the entries of ``url`` (None or ``s3://``: the buckets), page by page, through one
    :class:`~s3pump.run.Run` (its retry policy retries each page; ``store``: a store to use instead
    of opening one, e.g. a MemoryStore).

    Raises:
        UsageError: a bad URL or config (exit 2).
        NoSuchBucketError, CredentialsError, EndpointUnreachableError: as for any job (exit 2).
        BrokenListingError: a listing truncated without a token, or looping (exit 1).
    """
    config = config or TransferConfig.from_env()
    target = parse_s3_url(url) if url and url.rstrip("/") not in ("s3:", "s3:/") else None
    # with a bucket, HeadBucket first: a wrong bucket or an endpoint that never answers fails fast
    with Run("ls", config, target.bucket if target else "", store=store, embedded=embedded,
             check_bucket=target is not None) as run:
        if target is None:
            for b in run.store.list_buckets():
                yield LsEntry("bucket", b.name, time=_time(b.created))
        elif recursive:  # the engine's lister (awscrt, store/listing.py)
            for o in run.store.list_objects(target.bucket, target.prefix):
                yield LsEntry("object", o.key, o.key, o.size_bytes, _time(o.last_modified), o.etag)
        else:
            for e in run.store.list_level(target.bucket, target.prefix, "/"):
                if isinstance(e, CommonPrefix):
                    yield LsEntry("prefix", e.prefix.split("/")[-2] + "/", e.prefix)
                else:
                    yield LsEntry("object", e.key.split("/")[-1], e.key, e.size_bytes, _time(e.last_modified),
                                  e.etag)


def _time(epoch_s: float | None) -> dt.datetime | None:
    """An aware UTC datetime of epoch seconds; None for none (or 0: not given)."""
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC) if epoch_s else None
