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

from ..config import TransferConfig
from ..reports import LsEntry
from ..run import Run
from ..store.base import CommonPrefix, Store
from ..urls import parse_s3_url

__all__ = ["ls"]

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
