"""The dead-letter queue of ``s3pump export``: what could not be exported, and why.

Two kinds of entry, one JSON document each, named by table, kind and the batch's cursor
range (so writing the same failure twice overwrites, never piles up)::

    <T>/rows-<first>-<last>.json     rows of the batch that could not be read or serialized
    <T>/upload-<first>-<last>.json   objects of the batch whose upload failed after retries

An entry is written (and flushed to disk, or PUT) before the checkpoint moves past its
batch, so a failure is either in the queue or still ahead of the checkpoint.
``s3pump export --replay-dlq`` re-reads each entry's cursor range, exports it again (the
same keys, so good objects are overwritten with identical bytes), and removes entries
that now succeed.

The queue lives in a local directory (``--dlq DIR``) or under an S3 prefix (default:
``s3://bucket/prefix/_dlq/``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.base import ObjectAttributes
from ..urls import join_key, parse_s3_url
from .partition import escape_cursor, escape_name
from .state import get_object_or_none

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["DeadLetterQueue", "DlqEntry"]


@dataclass
class DlqEntry:
    """One failed batch: ``kind`` is ``rows`` or ``upload``; cursors are JSON-encoded."""

    kind: str
    table: str
    cursor_column: str
    first: Any
    last: Any
    error: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # {"cursor", "error", "values"}
    keys: list[dict[str, str]] = field(default_factory=list)  # {"key", "error"}
    created_at: str = ""

    def name(self, first_raw: Any, last_raw: Any) -> str:
        return f"{escape_name(self.table)}/{self.kind}-{escape_cursor(first_raw)}-{escape_cursor(last_raw)}.json"

    def to_json(self) -> bytes:
        return json.dumps({"version": 1, **asdict(self)}, indent=1, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> DlqEntry:
        d = json.loads(data)
        d.pop("version", None)
        return cls(**d)


class DeadLetterQueue:
    """A dead-letter queue in a local directory or under ``s3://bucket/prefix`` (any bucket of
    ``run``'s store; PUT by :meth:`~s3pump.run.Run.put_now`)."""

    def __init__(self, location: str, run: Run) -> None:
        self.location = location
        self.run = run
        self.store = run.store
        if location.startswith("s3://"):
            url = parse_s3_url(location)
            self.bucket: str | None = url.bucket
            self.prefix = url.prefix
            self.dir: Path | None = None
        else:
            self.bucket, self.prefix, self.dir = None, "", Path(location)

    def put(self, entry: DlqEntry, first_raw: Any, last_raw: Any) -> str:
        """Write ``entry`` durably; returns where it went.

        Raises:
            OSError: the local directory is not writable. StoreError: the PUT failed.
        """
        entry.created_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        name = entry.name(first_raw, last_raw)
        body = entry.to_json()
        if self.dir is not None:
            path = self.dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            return str(path)
        assert self.bucket is not None
        key = join_key(self.prefix, name)
        self.run.put_now(key, body, ObjectAttributes(content_type="application/json"), bucket=self.bucket)
        return f"s3://{self.bucket}/{key}"

    def entries(self, table: str) -> Iterator[tuple[str, DlqEntry]]:
        """``(handle, entry)`` for every entry of ``table``, oldest range first."""
        if self.dir is not None:
            folder = self.dir / escape_name(table)
            for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
                yield str(path), DlqEntry.from_json(path.read_bytes())
            return
        assert self.bucket is not None
        keys = sorted(o.key for o in self.store.list_objects(self.bucket, join_key(self.prefix,
                                                                                   escape_name(table) + "/")))
        for key in keys:
            if key.endswith(".json"):
                data = get_object_or_none(self.store, self.bucket, key)
                if data is not None:
                    yield key, DlqEntry.from_json(data)

    def remove(self, handle: str) -> None:
        if self.dir is not None:
            Path(handle).unlink(missing_ok=True)
        else:
            assert self.bucket is not None
            self.store.delete_objects(self.bucket, [handle])
