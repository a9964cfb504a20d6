"""Export state kept under the destination prefix: the checkpoint and the dedup hashes.

``prefix/_s3pump/state/<T>.json`` holds the checkpoint: the largest cursor value whose
objects are durably uploaded (or recorded in the dead-letter queue), and the batch cuts
(``batches``: ``[after, first, last]`` cursor values) recorded *before* any object of
their batch is written. A batch's keys are named by its cut, and a rerun exports the same
cut again (rows ``after < C <= last``) to the same keys, so a crash can repeat a batch (an
overwrite) but never skip one or store its rows under a second key. Without ``--dedup``
only the cuts past ``cursor`` are kept; with ``--dedup`` every cut is kept, because every
run re-reads the whole table in the same batches. ``export --cluster`` records all its cuts
(its plan) at once and marks the ones finished out of order in ``done``. ``--state-file`` keeps a copy on local
disk too.

``prefix/_s3pump/state/<T>.dedup.parquet`` (with ``--dedup``) maps each row's cursor value
to a 128-bit BLAKE2b hash of its values and the key of the object holding it; about 100
bytes per row in memory while exporting.

State objects are small and written synchronously, by the run's one synchronous PUT
(:meth:`~s3pump.run.Run.put_now`: the run's retry policy, through the same awscrt data plane as the
data objects).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import StoreError, UsageError
from ..store.base import ObjectAttributes, Store
from ..urls import join_key

if TYPE_CHECKING:
    from ..run import Run

__all__ = ["Checkpoint", "StateStore", "get_object_or_none"]


def get_object_or_none(store: Store, bucket: str, key: str) -> bytes | None:
    """GetObject; None if the key does not exist."""
    try:
        return store.get_object(bucket, key)
    except StoreError as e:
        if e.status == 404 or e.code in ("NoSuchKey", "NotFound"):
            return None
        raise


@dataclass
class Checkpoint:
    """Where an export stands. ``cursor`` is JSON-encoded (see ``sources.table.encode_cursor``).
    ``versions`` names, per object key, the version ID the export wrote (absent when the bucket
    is not versioned), so a consumer can pin exactly what was exported."""

    table: str
    cursor_column: str
    cursor: Any
    format: str
    partition_by: list[str] = field(default_factory=list)
    schema_hash: str = ""
    rows_exported: int = 0
    objects_written: int = 0
    updated_at: str = ""
    batches: list[list[Any]] = field(default_factory=list)  # cuts [after, first, last], JSON-encoded
    dedup: bool | None = None  # None: written before s3pump recorded it
    # a --from-start run's list of the objects under prefix/T/ when it began, each dropped once rewritten;
    # the run (or its rerun after a kill) deletes what is left when it completes. None: no such run.
    superseded: list[str] | None = None
    #: key -> version ID of the object version this export last wrote there (versioned buckets)
    versions: dict[str, str] = field(default_factory=dict)
    #: cuts of ``batches`` whose objects are all stored (or in the dead-letter queue) while an earlier
    #: cut is not: ``export --cluster`` finishes its ranges out of order. A rerun does not export them
    #: again; the cursor moves past them once every cut before them is done.
    done: list[list[Any]] = field(default_factory=list)
    #: schema version -> its columns ``[name, Arrow type, nullable, declared type]`` (export/schema_check.py);
    #: empty: written before schemas were recorded
    schemas: dict[str, list[list[Any]]] = field(default_factory=dict)
    #: the schema version of the objects this export writes now (``prefix/T/_v<N>/`` above 1)
    schema_version: int = 1

    def to_json(self) -> bytes:
        return json.dumps({"version": 1, **asdict(self)}, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Checkpoint:
        try:
            d = json.loads(data)
            d.pop("version", None)
            return cls(**d)
        except (ValueError, TypeError) as e:
            raise UsageError(f"{where}: not an s3pump export checkpoint ({e}); delete it or use another "
                             "prefix") from None


class StateStore:
    """Reads and writes the checkpoint and dedup hashes of one table under ``s3://bucket/prefix``
    with ``run``'s store (writes through :meth:`~s3pump.run.Run.put_now`)."""

    def __init__(self, run: Run, bucket: str, prefix: str, table: str, local_path: str | Path | None = None) -> None:
        self.run = run
        self.store = run.store
        self.bucket = bucket
        base = join_key(prefix, f"_s3pump/state/{table}")
        self.checkpoint_key = base + ".json"
        self.dedup_key = base + ".dedup.parquet"
        self.local_path = Path(local_path) if local_path else None

    def load(self) -> Checkpoint | None:
        """The saved checkpoint: the one under the prefix, else the local file, else None."""
        data = get_object_or_none(self.store, self.bucket, self.checkpoint_key)
        where = f"s3://{self.bucket}/{self.checkpoint_key}"
        if data is None and self.local_path is not None and self.local_path.exists():
            data, where = self.local_path.read_bytes(), str(self.local_path)
        return Checkpoint.from_json(data, where) if data is not None else None

    def save(self, cp: Checkpoint) -> None:
        """Write the checkpoint under the prefix (and to the local file, atomically)."""
        cp.updated_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.write(cp.to_json())

    def write(self, body: bytes) -> None:
        """Write a serialized checkpoint under the prefix (and to the local file, atomically).

        Raises:
            StoreError: the PUT failed past the retry policy.
        """
        self.run.put_now(self.checkpoint_key, body, ObjectAttributes(content_type="application/json"),
                         bucket=self.bucket)
        if self.local_path is not None:
            self.local_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.local_path.with_name(self.local_path.name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.local_path)

    def load_hashes(self) -> dict[str, tuple[bytes, str]]:
        """Dedup hashes: ``repr(cursor value)`` → (16-byte row hash, key of the object holding the row).

        A file written before keys were recorded gives key ``""`` (its groups are written once more).
        """
        data = get_object_or_none(self.store, self.bucket, self.dedup_key)
        if data is None:
            return {}
        t = pq.read_table(io.BytesIO(data))
        keys = t["key"].to_pylist() if "key" in t.column_names else [""] * t.num_rows
        return dict(zip(t["cursor"].to_pylist(), zip(t["hash"].to_pylist(), keys, strict=True), strict=True))

    def save_hashes(self, hashes: dict[str, tuple[bytes, str]]) -> None:
        t = pa.table({"cursor": pa.array(list(hashes.keys()), pa.string()),
                      "hash": pa.array([h for h, _ in hashes.values()], pa.binary(16)),
                      "key": pa.array([k for _, k in hashes.values()], pa.string()).dictionary_encode()})
        sink = pa.BufferOutputStream()
        pq.write_table(t, sink, compression="zstd")
        self.run.put_now(self.dedup_key, sink.getvalue().to_pybytes(),
                         ObjectAttributes(content_type="application/vnd.apache.parquet"), bucket=self.bucket)
