"""``upload --from-list FILE``: the items of a failed-list (JSON lines an earlier run wrote, see
``report.py``'s failed-list writer) or of a plain list of paths, checked against the command's
destination before anything is sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import PathNotFoundError, UsageError
from ..events import Discovered
from ..items import UploadItem
from ..store.base import ObjectAttributes
from ..urls import S3Url
from .content_types import attrs_by_content_type
from .walk import walk_items

__all__ = ["read_failed_list"]


def read_failed_list(path: str | Path, dest: S3Url, attrs: ObjectAttributes) -> Iterator[UploadItem | Discovered]:
    """Items from a failed-list (JSON lines with ``source`` and ``key``) or a plain list of paths.

    A JSON line is re-uploaded from its ``source`` to exactly its ``key``. A plain line is
    treated like a PATH argument (its file or tree goes under ``dest``). A
    :class:`~s3pump.events.Discovered` follows each item, and a final one the last.

    Raises:
        PathNotFoundError: the list file does not exist (exit 2).
        UsageError: a JSON line that is malformed, lacks ``source`` or ``key``, names another bucket,
            or a key outside ``dest`` (``path:line`` in the message).
    """
    p = Path(path)
    if not p.exists():
        raise PathNotFoundError(f"{path}: no such list file")
    attrs_for = attrs_by_content_type(attrs)
    plain: list[str] = []
    files = size = 0

    def found(items: Iterator[UploadItem]) -> Iterator[UploadItem | Discovered]:
        nonlocal files, size
        for item in items:
            yield item
            if item.error is None:
                files += 1
                size += item.size_bytes
                yield Discovered(files, size)

    with open(p, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("{"):
                source, key = _list_record(line, f"{path}:{lineno}", dest)
                if key:
                    yield from found(walk_items([source], S3Url(dest.bucket, key), attrs_for=attrs_for,
                                                threaded=False))
                else:  # a root that was missing or unreadable: retry it as a path
                    plain.append(source)
            else:
                plain.append(line)
    if plain:
        yield from found(walk_items(plain, dest, attrs_for=attrs_for, threaded=False))
    yield Discovered(files, size, final=True)


def _list_record(line: str, where: str, dest: S3Url) -> tuple[str, str | None]:
    """``(source, key)`` of one JSON line of a failed-list, checked against the command's destination.

    Raises:
        UsageError: not a JSON object with a ``source`` and a ``key``; a ``bucket`` other than the
            destination's; a key outside the destination prefix (exit 2, before anything is sent).
    """
    try:
        rec = json.loads(line)
    except ValueError as e:
        raise UsageError(f"{where}: not a JSON line ({e}); fix or remove it") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("source"), str) or "key" not in rec:
        raise UsageError(f"{where}: a failed-list line needs \"source\" and \"key\"; fix or remove it")
    key = rec["key"]
    if key is not None and not isinstance(key, str):
        raise UsageError(f"{where}: \"key\" must be a string; fix or remove the line")
    bucket = rec.get("bucket")
    if bucket is not None and bucket != dest.bucket:
        raise UsageError(f"{where}: the line is for bucket {bucket!r}, the command's destination is "
                         f"{dest}; use s3://{bucket}/... as the destination")
    prefix = dest.prefix
    if key and prefix and not (key.startswith(prefix) if prefix.endswith("/")
                               else key == prefix or key.startswith(prefix + "/")):
        raise UsageError(f"{where}: key {key!r} is outside the destination {dest}; give the destination the "
                         "list was written for")
    return rec["source"], key
