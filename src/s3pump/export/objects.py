"""One export batch → its objects: Arrow, partitions, a serialized body per group, keys and metadata.

:class:`BatchWriter` converts a batch (bad rows → dead-letter queue), splits it by partition and
serializes each group with the format's writer (``export/formats.py``) to one upload whose key is a
pure function of table, schema version, partition and the batch's cut (``part-<first>-<last>``;
``--one-object-per-row``: ``<entity>/date=…/<id>_<unix>``). Every object is registered in the
:class:`~.ledger.Ledger` before the engine sees it.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ..errors import S3PumpError
from ..events import Event, FileSkipped
from ..items import UploadItem
from ..sources.table import BadRow, RowBatch, TableSource, encode_cursor
from ..store.base import ObjectAttributes
from ..urls import S3Url, join_key, sanitize_key
from .counters import ExportCounters
from .dlq import DlqEntry
from .formats import Serializer
from .ledger import Ledger, PendingBatch
from .partition import PartitionSpec, escape_cursor, escape_name, escape_value, object_key, split, timestamps_of
from .rows import to_arrow
from .schema_check import version_dir
from .time_text import drop_untimed

__all__ = ["WRITER_THREADS", "BatchWriter", "Converted", "ObjectLayout", "row_hash", "schema_hash"]

#: Threads that write a batch's objects (:meth:`BatchWriter.write_ahead`): the machine's cores.
WRITER_THREADS = 2

#: ``to_arrow``'s answer for one batch: the table, each table row's index in the batch, the bad rows.
Converted = tuple[pa.Table, list[int], list[BadRow]]


def schema_hash(schema: pa.Schema) -> str:
    """First 16 hex digits of SHA-256 over the columns' names, types and nullability."""
    desc = json.dumps([[f.name, str(f.type), f.nullable] for f in schema])
    return hashlib.sha256(desc.encode()).hexdigest()[:16]


def row_hash(row: tuple[Any, ...]) -> bytes:
    """128-bit BLAKE2b of a row's values (their repr: type-exact and stable across runs)."""
    return hashlib.blake2b(repr(row).encode("utf-8", "backslashreplace"), digest_size=16).digest()


class _LazyRows(Sequence[tuple[Any, ...]]):
    """The raw rows of one group, materialized only if needed (dedup, one object per row, a bad row)."""

    def __init__(self, rows: Sequence[tuple[Any, ...]], positions: list[int], idx: pa.Array) -> None:
        self._rows, self._positions, self._idx = rows, positions, idx
        self._list: list[tuple[Any, ...]] | None = None

    def _get(self) -> list[tuple[Any, ...]]:
        if self._list is None:
            self._list = [self._rows[self._positions[i]] for i in self._idx.to_pylist()]
        return self._list

    def __len__(self) -> int:
        return len(self._idx)

    def __getitem__(self, i: Any) -> Any:
        return self._get()[i]


@dataclass(frozen=True, slots=True)
class ObjectLayout:
    """What names and labels an export's objects: destination, table (its Arrow schema), partitions, format
    and its writer, the base attributes, the schema's hash; ``one_per_row``: the ``<entity>/date=…`` layout."""

    dest: S3Url
    table: str
    schema: pa.Schema
    specs: Sequence[PartitionSpec]
    fmt: str
    serializer: Serializer
    attrs: ObjectAttributes
    schema_hash: str
    one_per_row: bool
    dedup: bool


class BatchWriter:
    """Turns batches into uploads (see the module docstring); ``schema_version()`` names the run's version."""

    def __init__(self, layout: ObjectLayout, source: TableSource, ledger: Ledger, counters: ExportCounters, *,
                 schema_version: Callable[[], int], put_dlq: Callable[[DlqEntry, Any, Any], None],
                 dry_run: bool) -> None:
        self.layout, self.source, self.ledger, self.counters = layout, source, ledger, counters
        self.schema_version, self.put_dlq, self.dry_run = schema_version, put_dlq, dry_run
        self.seen_rows: set[str] = set()  # dedup: repr(cursor) of every row read this run
        self._writers: cf.ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the writer threads (a batch's groups are serialized on them)."""
        if self._writers is not None:
            self._writers.shutdown(wait=True, cancel_futures=True)
            self._writers = None

    def objects(self, batch: RowBatch | None, first: Any, last: Any, cut: list[Any] | None = None,
                converted: Converted | None = None) -> list[UploadItem | Event]:
        """The uploads (and ``FileSkipped`` events) of one batch named ``first``..``last`` (its ``cut``);
        bad rows go to the dead-letter queue. ``batch`` None: the cut's rows are gone or already stored;
        it settles at once. ``converted``: ``to_arrow`` of the batch, done already (read ahead)."""
        lay, c, ci = self.layout, self.counters, self.source.cursor_index
        rec = self.ledger.open_batch(first, last, cut)
        if batch is None:
            self.ledger.planned(rec)
            return []
        c.rows_read += batch.count
        c.batches += 1
        if lay.dedup:
            self.seen_rows.update(repr(r[ci]) for r in batch.rows)
        if converted is None and batch.table is not None:  # read straight into Arrow (sources/postgres.py)
            converted = (batch.table, list(range(batch.table.num_rows)), [])
        table, positions, bad = converted or to_arrow(batch.rows, lay.schema, ci)
        # a text that is no time has no time partition: its row is a bad row (export/time_text.py)
        table, positions, untimed = drop_untimed(table, positions, lay.specs, batch.rows, ci)
        bad_rows = list(batch.bad) + bad + untimed
        out: list[UploadItem | Event] = []
        groups = split(table, list(lay.specs))
        bodies = self.write_ahead(groups)
        for n, (path, idx, group) in enumerate(groups):
            body = bodies[n].result() if bodies else None
            raw = _LazyRows(batch.rows, positions, idx)
            if lay.one_per_row:
                for i in range(group.num_rows):
                    out.extend(self._item(group.slice(i, 1), raw[i:i + 1], rec, path, bad_rows, single=True))
            else:
                out.extend(self._item(group, raw, rec, path, bad_rows, single=False, body=body))
        if bad_rows:
            c.rows_failed += len(bad_rows)
            entry = DlqEntry("rows", lay.table, self.source.cursor.name, encode_cursor(first), encode_cursor(last),
                             f"{len(bad_rows)} rows could not be exported",
                             rows=[{"cursor": encode_cursor(b.cursor), "error": b.error, "values": b.values}
                                   for b in bad_rows])
            if not self.dry_run:
                self.put_dlq(entry, first, last)
        self.ledger.planned(rec)
        return out

    def write_ahead(self, groups: list[tuple[str, pa.Array, pa.Table]]) -> list[cf.Future[bytes | None]]:
        """Serialize a batch's groups on :data:`WRITER_THREADS` threads, in order (none for a
        single group, one object per row, or ``--dedup``, which may skip a group unwritten).

        Arrow's Parquet writer and the compressors release the GIL, so the objects of a batch are
        written on both cores while this thread builds the items (docs/benchmarks.md). A group
        whose body raised gets None and is serialized again, row by row, in ``_item``.
        """
        lay = self.layout
        if len(groups) < 2 or lay.one_per_row or lay.dedup:
            return []
        if self._writers is None:
            self._writers = cf.ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="s3pump-export-write")

        def write(group: pa.Table) -> bytes | None:
            try:
                return lay.serializer.serialize(group)
            except Exception:
                return None

        return [self._writers.submit(write, group) for _path, _idx, group in groups]

    def _item(self, group: pa.Table, raw: Sequence[tuple[Any, ...]], rec: PendingBatch, path: str,
              bad_rows: list[BadRow], *, single: bool, body: bytes | None = None) -> list[UploadItem | Event]:
        """The upload of one group (``body``: its serialization, if already done), a skip, or nothing."""
        lay, ci = self.layout, self.source.cursor_index
        hashes: dict[str, bytes] = {}
        if lay.dedup:
            hashes = {repr(r[ci]): row_hash(r) for r in raw}
            key = self.key(group, raw, rec, path, single)
            if self.ledger.unchanged(key, hashes):  # the object holds exactly these rows, each as it is now
                self.counters.objects_skipped += 1
                self.counters.rows_unchanged += group.num_rows
                return [FileSkipped(self.source_text(rec), key, 0, "unchanged")]
        if body is None:
            body, group, raw = self._serialize(group, raw, bad_rows)
        if body is None:
            return []
        key = self.key(group, raw, rec, path, single)
        first, last = (raw[0][ci], raw[-1][ci]) if single else (rec.first, rec.last)
        attrs = lay.attrs.with_metadata({
            "s3pump-table": escape_value(lay.table), "s3pump-format": lay.fmt,
            "s3pump-rows": str(group.num_rows), "s3pump-cursor-column": escape_value(self.source.cursor.name),
            "s3pump-cursor-first": escape_cursor(first), "s3pump-cursor-last": escape_cursor(last),
            "s3pump-schema-hash": lay.schema_hash, "s3pump-schema-version": str(self.schema_version()),
        })
        error: S3PumpError | None = None
        try:
            sanitize_key(key)
        except S3PumpError as e:
            error = e
        kept = {repr(r[ci]): hashes[repr(r[ci])] for r in raw} if lay.dedup else None
        self.ledger.register(rec, key, group.num_rows, kept)
        return [UploadItem(key=key, size_bytes=len(body), source=self.source_text(rec), body=body, attrs=attrs,
                           error=error)]

    def source_text(self, rec: PendingBatch) -> str:
        return f"{self.layout.table} rows {self.source.cursor.name} {rec.first}..{rec.last}"

    def key(self, group: pa.Table, raw: Sequence[tuple[Any, ...]], rec: PendingBatch, path: str, single: bool) -> str:
        """The object's key (see the module docstring)."""
        lay, version = self.layout, self.schema_version()
        ext = lay.serializer.extension
        if not single:
            if version > 1:  # under the table's directory of this run's schema version (``_v2/…``)
                path = f"_v{version}/{path}" if path else f"_v{version}"
            return object_key(lay.dest.prefix, lay.table, path, rec.first, rec.last, ext)
        # the lab layout: <entity>/date=YYYY-MM-DD/<id>_<unix>.<ext>, all from the row itself
        time_spec = next(s for s in lay.specs if s.kind == "time")
        col_spec = next((s for s in lay.specs if s.kind == "column"), None)
        moment = timestamps_of(group[time_spec.column], time_spec.epoch).cast(pa.timestamp("us"))[0].as_py()
        entity = escape_name(lay.table)
        if col_spec is not None:
            v = group[col_spec.column][0].as_py()
            entity = escape_value("" if v is None else str(v))
        ident = escape_cursor(raw[0][self.source.cursor_index])
        entity = version_dir(entity, version)
        if moment is None:
            return join_key(lay.dest.prefix, f"{entity}/date=__HIVE_DEFAULT_PARTITION__/{ident}.{ext}")
        unix = int(moment.replace(tzinfo=dt.UTC).timestamp())
        return join_key(lay.dest.prefix, f"{entity}/date={moment:%Y-%m-%d}/{ident}_{unix}.{ext}")

    def _serialize(self, group: pa.Table, raw: Sequence[tuple[Any, ...]], bad_rows: list[BadRow]
                   ) -> tuple[bytes | None, pa.Table, Sequence[tuple[Any, ...]]]:
        """The object body; a row the format cannot encode goes to ``bad_rows`` and the rest are written."""
        serializer = self.layout.serializer
        try:
            return serializer.serialize(group), group, raw
        except Exception:
            pass
        keep: list[int] = []
        for i in range(group.num_rows):
            try:
                serializer.serialize(group.slice(i, 1))
                keep.append(i)
            except Exception as e:
                bad_rows.append(BadRow(raw[i][self.source.cursor_index],
                                       f"{self.layout.fmt} cannot encode the row ({type(e).__name__}: {e})",
                                       repr(raw[i])))
        if not keep:
            return None, group, raw
        group = group.take(pa.array(keep, pa.int64()))
        raw = [raw[i] for i in keep]
        return serializer.serialize(group), group, raw
