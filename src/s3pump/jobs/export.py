"""``s3pump export``: a SQL table → partitioned, idempotent objects under ``s3://bucket/prefix``.

Read top to bottom:

1. Open the table (``sources.table``) and the store (HeadBucket, or ``--embedded``).
2. Load the checkpoint (``prefix/_s3pump/state/T.json``); refuse a cursor column holding
   NULLs (no ``C > after`` batch reaches them).
3. Export the batch cuts the checkpoint already holds, each as the same range
   (``after < C <= last``) under the same keys: without ``--dedup`` the cuts a killed run
   left unfinished, with ``--dedup`` every cut so far. Then cut new batches after the last
   one: read up to ``--batch-rows`` rows ordered by the cursor, and record the cut
   ``[after, first, last]`` in the checkpoint *before* any of its objects is written.
4. Convert to Arrow (bad rows → dead-letter queue); split by partition; serialize each group
   to one object whose key is a pure function of table, partition and the cut
   (``part-<first>-<last>``). A batch that would grow later (a partial batch, rows appended
   by a writer) keeps its recorded cut; new rows go to the next cut. So a rerun overwrites
   and never stores a row under a second key.
5. Hand the objects to the engine. When every object of a batch (and of all batches before
   it) is uploaded or recorded in the dead-letter queue, advance the checkpoint past it.
6. ``--follow``: poll for new rows every ``--poll-interval``; a stop request (SIGINT/SIGTERM
   in the CLI) finishes the in-flight batches, saves the checkpoint and returns. Another
   writer holding the SQLite lock is waited for with backoff, for as long as it takes.
7. Objects that a complete run superseded are deleted: with ``--from-start`` every data
   object under ``prefix/T/`` this run did not write; with ``--dedup`` the objects whose rows
   all moved elsewhere or were deleted.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..config import TransferConfig
from ..errors import S3PumpError, UsageError
from ..events import BatchExported, Event, FileDone, FileFailed, FileSkipped, RowsFound, Subscriber
from ..export.dlq import DeadLetterQueue, DlqEntry
from ..export.formats import FORMATS, Serializer, make_serializer
from ..export.partition import (
    PartitionSpec,
    check_time_column,
    escape_cursor,
    escape_name,
    escape_value,
    object_key,
    parse_partition,
    split,
    timestamps_of,
)
from ..export.protogen import proto_schema
from ..export.report import ExportCounters, ExportReport
from ..export.rows import to_array_from_arrow, to_arrow
from ..export.schema_check import check_schema, schema_columns, version_dir, version_proto_name
from ..export.state import Checkpoint, StateStore, put_object_now
from ..export.time_text import drop_untimed
from ..items import UploadItem
from ..lifecycle import LifecycleRule, RuleOptions
from ..lifecycle_update import apply_rule
from ..run import Run
from ..sources.table import BadRow, RowBatch, TableSource, decode_cursor, encode_cursor, find_column, open_table
from ..store.base import ObjectAttributes, Store
from ..urls import S3Url, join_key, parse_s3_url, sanitize_key

__all__ = ["export_table"]


def export_table(
    db: str,
    table: str,
    destination: str,
    config: TransferConfig | None = None,
    *,
    cursor_column: str | None = None,
    batch_rows: int = 100_000,
    partition_by: Sequence[str | PartitionSpec] = (),
    format: str = "parquet",
    compression: str | None = None,
    one_object_per_row: bool = False,
    dedup: bool = False,
    dlq: str | None = None,
    replay_dlq: bool = False,
    follow: bool = False,
    poll_interval_s: float = 30.0,
    state_file: str | Path | None = None,
    from_start: bool = False,
    embedded: bool = False,
    subscribers: Iterable[Subscriber] = (),
    stop: threading.Event | None = None,
    store: Store | None = None,
    handle_signals: bool = False,
    dry_run: bool = False,
    lock_timeout_s: float | None = 300.0,
    lifecycle: RuleOptions | None = None,
    cluster: Any = None,
    cluster_options: dict[str, Any] | None = None,
    schema_evolution: bool = False,
) -> ExportReport:
    """Export ``table`` of ``db`` (a SQLite path or SQLAlchemy URL) to ``destination`` (``s3://bucket/prefix``).

    Objects go to ``prefix/<table>/<partitions>/part-<first>-<last>.<ext>`` (``--one-object-per-row``:
    ``prefix/<entity>/date=YYYY-MM-DD/<id>_<unix>.<ext>``); each carries metadata
    ``s3pump-rows``, ``s3pump-cursor-first``/``-last``, ``s3pump-schema-hash`` and ``s3pump-format``.

    Args:
        cursor_column: orders and resumes the export; default the integer primary key. It must be
            increasing for new rows (an ID or an insertion timestamp).
        batch_rows: rows per batch (and at most per object).
        partition_by: ``time:COLUMN:hour|day|month`` and/or ``column:COL`` specs, nested in order.
        format: ``parquet`` (zstd), ``jsonl`` (gzip|zstd|none) or ``protobuf``.
        dedup: keep a content hash per row; groups whose rows are all unchanged are not written.
            Scans the whole table each run.
        dlq: dead-letter queue: a directory or ``s3://`` prefix (default ``<destination>/_dlq/``).
        replay_dlq: export the ranges recorded in the dead-letter queue again, instead of new rows.
        follow: keep polling for new rows every ``poll_interval_s`` until ``stop`` is set.
        from_start: ignore the checkpoint and export every row; when the run completes, delete the
            data objects under ``prefix/<table>/`` it did not write (an earlier run's other batching).
        stop: set it (e.g. from another thread) to finish the in-flight batches and return.
        handle_signals: the first SIGINT/SIGTERM sets ``stop``, a second one cancels at once (the
            CLI's setting; by default no signal handler is installed).
        dry_run: read and plan, write nothing (no objects, checkpoint, dead-letter entries or
            schema); ``report.would_write`` lists the objects (key, rows, bytes) it would write.
        lock_timeout_s: how long to wait for another writer's SQLite lock (capped exponential
            backoff) before failing; with ``follow`` it waits until ``stop`` is set.
        lifecycle: a lifecycle rule for the table's objects (``prefix/<table>/``), installed before
            the export with ``lifecycle_update.apply_rule`` (the bucket's other rules kept; nothing
            written when the rule is already there, so reruns are idempotent).
        cluster: export on Dask distributed workers (``local:N``, ``tcp://host:8786`` or a
            ``distributed.Client``; the ``dask`` extra): the batch cuts are planned here and recorded,
            ranges of them exported by the workers, the checkpoint kept here (``jobs.export_cluster``,
            docs/cluster.md). The objects are those of a single-process export. Not with ``follow``,
            ``dedup`` or ``replay_dlq``; ignored with ``dry_run``. ``cluster_options``: ``range_rows``
            (rows per task, default 100,000) and ``worker_bwlimit_bps``.
        schema_evolution: when the table's schema differs from the one recorded in the checkpoint, write
            the new objects under the next schema version (``prefix/T/_v<N>/``) instead of stopping
            (``export/schema_check.py``).

    Progress: objects are ``FileDone`` events, each stored and checkpointed batch a ``BatchExported``.

    Returns:
        ExportReport. Rows or objects that failed are in the dead-letter queue (``report.ok`` False).

    Raises:
        UsageError: bad flags, an unknown table/column, a time partition on a column that holds no
            times, a schema that changed since the last run (without ``schema_evolution``), a cursor
            column holding NULLs, or a checkpoint written with other flags (exit 2);
            ``cluster`` without ``s3pump[dask]``, or a cluster worker that cannot read the table
            (``WorkerMismatchError``).
        SourceNotFoundError, SourceUnreadableError: the database cannot be read.
        NoSuchBucketError, CredentialsError: the HeadBucket check failed (exit 2).
        StoreError: the checkpoint or a dead-letter entry could not be written (nothing is skipped).
    """
    config = config or TransferConfig.from_env()
    dest = parse_s3_url(destination)
    if batch_rows < 1:
        raise UsageError(f"--batch-rows must be >= 1, got {batch_rows}")
    if format not in FORMATS:
        raise UsageError(f"--format {format!r}: use one of {', '.join(FORMATS)}")
    if poll_interval_s <= 0:
        raise UsageError("--poll-interval must be > 0")
    specs = [s if isinstance(s, PartitionSpec) else parse_partition(s) for s in partition_by]
    if lifecycle is not None:
        lifecycle.rule(dest.prefix)  # refuse a bad rule before anything is read or sent
    stop = stop or threading.Event()
    if cluster is not None and not dry_run:
        _check_cluster_flags(follow=follow, dedup=dedup, replay_dlq=replay_dlq, store=store)

    source = open_table(db, table, cursor_column, lock_timeout_s=None if follow else lock_timeout_s, stop=stop)
    try:
        for i, s in enumerate(specs):
            col = find_column(source.columns, s.column)
            if col is None:
                raise UsageError(f"--partition-by {s}: table {source.table} has no column {s.column!r}")
            specs[i] = s = dataclasses.replace(s, column=col.name)  # the declared name, for keys and state
            check_time_column(s, col.declared_type, col.arrow_type)
        source.check_cursor_not_null()
        if one_object_per_row and not any(s.kind == "time" for s in specs):
            raise UsageError("--one-object-per-row needs --partition-by time:COLUMN:day (its date=…/…_<unix> "
                             "layout comes from the row's timestamp)")
        rule = _lifecycle_rule(lifecycle, dest, source.table, specs, one_object_per_row) if lifecycle else None
        with Run("export", config, dest.bucket, store=store, embedded=embedded, subscribers=subscribers,
                 handle_signals=handle_signals, graceful_stop=stop) as run:
            if rule is not None:
                apply_rule(run.store, dest.bucket, rule.prefix, rule,
                           rule_id=lifecycle.rule_id if lifecycle else None)
            job = _ExportJob(source, dest, run, specs, format, compression, one_object_per_row,
                             dedup, dlq, batch_rows, state_file, stop, dry_run, schema_evolution=schema_evolution)
            if cluster is not None and not dry_run:
                from .export_cluster import export_on_cluster

                return export_on_cluster(job, db, cluster, from_start=from_start,
                                         lock_timeout_s=lock_timeout_s, **(cluster_options or {}))
            return job.run(replay=replay_dlq, follow=follow and not dry_run, poll_interval_s=poll_interval_s,
                           from_start=from_start)
    finally:
        source.close()


def _check_cluster_flags(*, follow: bool, dedup: bool, replay_dlq: bool, store: Store | None) -> None:
    """Refuse what ``--cluster`` does not do, before anything is read (exit 2)."""
    for flag, given in (("--follow", follow), ("--dedup", dedup), ("--replay-dlq", replay_dlq)):
        if given:
            raise UsageError(f"--cluster with {flag}: a cluster export runs once over the rows there are, "
                             f"without {flag}; run {flag} without --cluster")
    if store is not None:
        raise UsageError("--cluster: the workers open their own store; a store object cannot be shared")
    from ..cluster.connect import require_distributed

    require_distributed()


def _lifecycle_rule(options: RuleOptions, dest: S3Url, table: str, specs: Sequence[PartitionSpec],
                    one_object_per_row: bool) -> LifecycleRule:
    """The rule for the table's data objects: prefix ``<prefix>/<table>/``, never the checkpoint under
    ``_s3pump/`` (an expired checkpoint would export everything again)."""
    if one_object_per_row and any(s.kind == "column" for s in specs):
        raise UsageError("--lifecycle with --one-object-per-row --partition-by column:…: the objects share no "
                         "prefix but the destination's, which holds the checkpoint; set the rule per entity "
                         "with `s3pump lifecycle s3://bucket/prefix/ENTITY/`")
    return options.rule(join_key(dest.prefix, escape_name(table) + "/"))


def schema_hash(schema: pa.Schema) -> str:
    """First 16 hex digits of SHA-256 over the columns' names, types and nullability."""
    desc = json.dumps([[f.name, str(f.type), f.nullable] for f in schema])
    return hashlib.sha256(desc.encode()).hexdigest()[:16]


def row_hash(row: tuple[Any, ...]) -> bytes:
    """128-bit BLAKE2b of a row's values (their repr: type-exact and stable across runs)."""
    return hashlib.blake2b(repr(row).encode("utf-8", "backslashreplace"), digest_size=16).digest()


#: Threads that write a batch's objects (``_ExportJob._write_ahead``): the machine's cores.
WRITER_THREADS = 2


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


#: ``to_arrow``'s answer for one batch: the table, each table row's index in the batch, the bad rows.
_Converted = tuple[pa.Table, list[int], list[BadRow]]


@dataclass(slots=True)
class _Batch:
    """A batch between planning and its checkpoint: objects still outstanding and failures seen.

    ``first``/``last`` are the cursor values of its cut (they name its objects); ``cut`` is the
    JSON-encoded ``[after, first, last]`` kept in the checkpoint (None when replaying the DLQ).
    """

    seq: int
    first: Any
    last: Any
    cut: list[Any] | None = None
    outstanding: set[str] = field(default_factory=set)
    failures: list[dict[str, str]] = field(default_factory=list)
    planned: bool = False


class _ExportJob:
    def __init__(self, source: TableSource, dest: S3Url, run: Run,
                 specs: list[PartitionSpec], fmt: str, compression: str | None, one_per_row: bool,
                 dedup: bool, dlq: str | None, batch_rows: int, state_file: str | Path | None,
                 stop: threading.Event, dry_run: bool = False, *, schema_evolution: bool = False) -> None:
        config, store, counters = run.config, run.store, ExportCounters()
        self.run_ = run
        self.source, self.dest, self.config, self.store = source, dest, config, store
        self.table = source.table
        self.specs, self.fmt, self.one_per_row, self.dedup = specs, fmt, one_per_row, dedup
        self.compression = compression
        self.batch_rows, self.counters, self.stop = batch_rows, counters, stop
        self.schema = source.schema
        self.schema_hash = schema_hash(self.schema)
        self.proto = proto_schema(self.table, self.schema, schema_hash=self.schema_hash) if fmt == "protobuf" else None
        self.serializer: Serializer = make_serializer(fmt, compression, proto=self.proto,
                                                      delimited=not one_per_row)
        base = ObjectAttributes.of(config)
        self.attrs = dataclasses.replace(base, content_type=config.content_type or self.serializer.content_type)
        self.state = StateStore(store, dest.bucket, dest.prefix, self.table, config, state_file)
        self.dlq = DeadLetterQueue(dlq or f"s3://{dest.bucket}/{join_key(dest.prefix, '_dlq/')}", store, config)
        self.stats = run.stats
        self.bus = run.bus
        run.subscribe(self._on_event)
        self.dlq_entries: list[str] = []
        self.dlq_held: list[tuple[DlqEntry, Any, Any]] | None = None  # a cluster worker's, for the coordinator
        self.dry_run = dry_run
        self.schema_evolution = schema_evolution
        self.read_ahead = source.reads_in_any_thread  # the next batch is read while this one is written
        self.would_write: list[dict[str, Any]] = []
        self.would_delete: list[str] = []
        self.deleted: list[str] = []
        self.hashes: dict[str, tuple[bytes, str]] = {}  # dedup: repr(cursor) -> (row hash, key holding it)
        self._stored_rows: dict[str, int] = {}  # dedup: key -> rows it holds, as loaded
        self._seen_keys: set[str] = set()  # keys this run wrote or found unchanged
        self._seen_rows: set[str] = set()  # dedup: repr(cursor) of every row read this run
        self._whole_table = False  # the last cycle read every row to the end (not stopped)
        self._pending: dict[int, _Batch] = {}  # in seq order (dicts keep insertion order)
        self._key_batch: dict[str, _Batch] = {}
        self._key_rows: dict[str, int] = {}
        self._key_hashes: dict[str, dict[str, bytes]] = {}
        self._seq = 0
        self._writers: cf.ThreadPoolExecutor | None = None  # see _write_ahead
        self._advance_checkpoint = True
        self._rows_reported = 0
        self.checkpoint = Checkpoint(self.table, source.cursor.name, None, fmt, [str(s) for s in specs],
                                     self.schema_hash, dedup=dedup)

    # ------------------------------------------------------------------ the run
    def run(self, *, replay: bool, follow: bool, poll_interval_s: float, from_start: bool) -> ExportReport:
        self.begin(from_start)
        replayed = 0
        if replay:
            replayed = self._replay()
        else:
            if not follow:  # a total to go by (following, the rows keep coming: none)
                self.say_rows_total()
            old_keys = set(self._stored_rows)
            while True:
                self.source.check_cursor_not_null()  # a NULL added while following stops the run here
                self._cycle(self._items())
                if self.dedup and not self.dry_run:
                    self.state.save_hashes(self.hashes)
                if not follow or self.stop.is_set():
                    break
                self.stop.wait(poll_interval_s)
                if self.stop.is_set():
                    break
            if self._complete():
                self._delete_superseded(old_keys)
        return self._report(replayed)

    def say_rows_total(self) -> None:
        """Count the rows this run reads (past the checkpoint's cursor; every row with ``--dedup``) and say
        it (``RowsFound``), for the progress view's total and ETA."""
        rows = self.source.count_after(None if self.dedup else decode_cursor(self.checkpoint.cursor))
        if rows is not None:
            self.bus.emit(RowsFound(rows))

    def begin(self, from_start: bool) -> None:
        """Load the checkpoint (or, ``from_start``, list what it supersedes); check the table's schema
        against the recorded one (``export/schema_check.py``); write the protobuf schema of its version."""
        saved = self.state.load()
        if saved is not None and not from_start:
            self._check_compatible(saved)
            self.checkpoint = saved
            self.checkpoint.schema_hash = self.schema_hash
        elif saved is not None and not self.one_per_row:  # (lab-layout keys are not under prefix/T/)
            # what an earlier export stored; saved with the first cut, so a rerun after a kill sweeps too
            base = join_key(self.dest.prefix, escape_name(self.table) + "/")
            self.checkpoint.superseded = sorted(o.key for o in self.store.list_objects(self.dest.bucket, base))
        self.checkpoint.dedup = self.dedup
        cp = self.checkpoint
        version = cp.schema_version
        cp.schema_version = check_schema(
            cp.schemas, cp.schema_version, schema_columns(self.schema, [c.declared_type for c in self.source.columns]),
            evolution=self.schema_evolution, table=self.table, where=f"s3://{self.dest.bucket}/{self.state.checkpoint_key}")
        if cp.schema_version != version and not self.dedup:  # the unfinished cuts are exported in the new one
            self._drop_older_versions([(decode_cursor(c[1]), decode_cursor(c[2])) for c in cp.batches])
        if self.proto is not None and not self.dry_run:  # the schema next to the data, so `protoc --decode` works
            put_object_now(self.store, self.dest.bucket,
                           join_key(self.dest.prefix,
                                    f"_schema/{version_proto_name(escape_name(self.table), cp.schema_version)}"),
                           self.proto.proto_text.encode(), self.config,
                           ObjectAttributes(content_type="text/plain; charset=utf-8"))
        self.counters.checkpoint = self.checkpoint.cursor
        if self.dedup:
            self.hashes = self.state.load_hashes() if not from_start else {}
            for _h, key in self.hashes.values():
                self._stored_rows[key] = self._stored_rows.get(key, 0) + 1

    def _drop_older_versions(self, ranges: list[tuple[Any, Any]]) -> None:
        """Delete the objects of batches ``(first, last)`` stored in an older schema version than this
        run's (a killed run's unfinished cuts, dead-letter entries replayed): this run exports their
        rows again in its version, and a row is stored in one version only."""
        version = self.checkpoint.schema_version
        if version <= 1 or not ranges or self.one_per_row or self.dry_run:
            return
        names = tuple(f"part-{escape_cursor(first)}-{escape_cursor(last)}." for first, last in ranges)
        base = join_key(self.dest.prefix, escape_name(self.table) + "/")
        keys = [o.key for o in self.store.list_objects(self.dest.bucket, base)
                if not o.key[len(base):].startswith(f"_v{version}/") and o.key.rsplit("/", 1)[-1].startswith(names)]
        for i in range(0, len(keys), 1000):
            self.store.delete_objects(self.dest.bucket, keys[i:i + 1000])

    def export_cuts(self, cuts: Iterable[list[Any]]) -> None:
        """Export recorded cuts (an ``export --cluster`` range on a worker), each as the same range to
        the same keys, and wait for their objects. The checkpoint is the coordinator's."""
        self._advance_checkpoint = False

        def items() -> Iterator[UploadItem]:
            for cut in cuts:
                after, first, last = (decode_cursor(v) for v in cut)
                yield from self._plan(self.source.read_cut(after, last), first, last, cut)

        self._cycle(items())

    def _put_dlq(self, entry: DlqEntry, first: Any, last: Any) -> None:
        """Record a dead-letter entry; a cluster worker (``dlq_held`` not None) hands it to the coordinator."""
        if self.dlq_held is not None:
            self.dlq_held.append((entry, first, last))
        else:
            self.dlq_entries.append(self.dlq.put(entry, first, last))

    def _complete(self) -> bool:
        """This run read the whole table and every object of it is stored (nothing failed or stopped)."""
        return (self._whole_table and not self.stop.is_set() and not self._pending
                and self.counters.objects_failed == 0 and self.counters.rows_failed == 0)

    def _delete_superseded(self, old_keys: set[str]) -> None:
        """Delete the objects a complete run superseded; then only this run's objects hold the table's rows.

        ``--dedup``: keys that held rows last time and got none now (rows moved or deleted), and
        rows no longer in the table leave the hash table. ``--from-start``: the data objects that were
        under ``prefix/<table>/`` when it began and that it (or the run it resumed) did not rewrite.
        """
        stale: set[str] = set()
        if self.dedup:
            stale |= {k for k in old_keys if k and k not in self._seen_keys}
            if not self.dry_run:
                self.hashes = {c: v for c, v in self.hashes.items() if c in self._seen_rows}
                self.state.save_hashes(self.hashes)
        if self.checkpoint.superseded is not None:
            stale |= {k for k in self.checkpoint.superseded if k not in self._seen_keys}
        keys = sorted(stale)
        if self.dry_run:
            self.would_delete = keys
            return
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            self.store.delete_objects(self.dest.bucket, keys[i:i + 1000])
        self.deleted = keys
        if self.checkpoint.superseded is not None:
            self.checkpoint.superseded = None
            self.state.save(self.checkpoint)

    def _check_compatible(self, saved: Checkpoint) -> None:
        where = f"s3://{self.dest.bucket}/{self.state.checkpoint_key}"
        mine = (self.source.cursor.name, self.fmt, [str(s) for s in self.specs])
        theirs = (saved.cursor_column, saved.format, saved.partition_by)
        if saved.table != self.table or mine != theirs:
            raise UsageError(
                f"{where}: this prefix was exported with --cursor-column {saved.cursor_column} --format "
                f"{saved.format} --partition-by {' '.join(saved.partition_by) or '(none)'}; use the same flags, "
                "another prefix, or --from-start")
        if saved.dedup is not None and saved.dedup != self.dedup:
            # the batches of the two modes differ: mixing them would store rows under two keys
            raise UsageError(f"{where}: this prefix was exported {'with' if saved.dedup else 'without'} --dedup; "
                             "use the same flags, another prefix, or --from-start")

    def _cycle(self, items: Iterator[UploadItem]) -> None:
        try:
            if self.dry_run:
                for item in items:
                    self.would_write.append({"key": item.key, "source": item.source, "bytes": item.size_bytes,
                                             "rows": self._key_rows.get(item.key, 0)})
                    self._settle(item.key)
            else:
                self.run_.transfer(items)
        finally:
            if self._writers is not None:
                self._writers.shutdown(wait=True, cancel_futures=True)
                self._writers = None
        self._advance()  # a batch with nothing to upload settles here

    def _items(self) -> Iterator[UploadItem]:
        """Objects of the recorded cuts, then of new batches, until caught up or asked to stop."""
        self._whole_table = False
        after = None if self.dedup else decode_cursor(self.checkpoint.cursor)
        for cut in list(self.checkpoint.batches):  # unfinished cuts (every cut with --dedup)
            if self.stop.is_set():
                return
            cut_after, first, last = (decode_cursor(v) for v in cut)
            if cut in self.checkpoint.done:  # stored by a cluster worker: settles in order, not read
                yield from self._plan(None, first, last, cut)
            else:
                yield from self._plan(self.source.read_cut(cut_after, last), first, last, cut)
            after = last
        # The next batch is read and converted to Arrow in a thread while this one is serialized and
        # sent: building its row tuples holds the GIL, but Arrow's compute, Parquet, gzip and the
        # upload release it (docs/benchmarks.md). Its cut is recorded only when it is taken, so a
        # checkpoint never names a batch before it is planned.
        reader: cf.ThreadPoolExecutor | None = None
        ahead: cf.Future[tuple[RowBatch | None, _Converted | None]] | None = None
        try:
            while not self.stop.is_set():
                batch, converted = ahead.result() if ahead is not None else self._read(after)
                ahead = None
                if batch is None:
                    self._whole_table = not self.stop.is_set()
                    return
                if batch.first is None or batch.last is None:  # a NULL arrived since the check: never loop
                    self.source.check_cursor_not_null()
                cut = [encode_cursor(after), encode_cursor(batch.first), encode_cursor(batch.last)]
                self._record_cut(cut)
                if batch.count >= self.batch_rows and self.read_ahead:
                    reader = reader or cf.ThreadPoolExecutor(1, thread_name_prefix="s3pump-export-read")
                    ahead = reader.submit(self._read, batch.last)
                yield from self._plan(batch, batch.first, batch.last, cut, converted)
                after = batch.last
                if batch.count < self.batch_rows:
                    self._whole_table = not self.stop.is_set()
                    return
        finally:
            if reader is not None:  # the source is closed after this: let a read in flight finish first
                reader.shutdown(wait=True, cancel_futures=True)

    def _read(self, after: Any) -> tuple[RowBatch | None, _Converted | None]:
        """The batch after ``after`` and its Arrow table (in the read-ahead thread, but the first):
        straight into Arrow where the source can, else rows and ``to_arrow``."""
        got = self.source.read_arrow_after(after, self.batch_rows, to_array_from_arrow)
        if got is not None:
            batch, table = got
            return batch, ((table, list(range(table.num_rows)), []) if table is not None else None)
        batch = self.source.read_after(after, self.batch_rows)
        return batch, (to_arrow(batch.rows, self.schema, self.source.cursor_index) if batch is not None else None)

    def _record_cut(self, cut: list[Any]) -> None:
        """Fix a new batch's range and names in the checkpoint before any of its objects is written."""
        self.checkpoint.batches.append(cut)
        if not self.dry_run:
            self.state.save(self.checkpoint)

    # ------------------------------------------------------------------ one batch
    def _plan(self, batch: RowBatch | None, first: Any, last: Any, cut: list[Any] | None = None,
              converted: _Converted | None = None) -> list[UploadItem]:
        """Convert, partition and serialize one batch (named ``first``..``last``, its cut); record bad
        rows in the dead-letter queue. ``batch`` None: the cut's rows are gone; it settles at once.
        ``converted``: ``to_arrow`` of the batch, done already (read ahead)."""
        c = self.counters
        self._seq += 1
        rec = _Batch(self._seq, first, last, cut)
        self._pending[rec.seq] = rec
        if batch is None:
            rec.planned = True
            self._advance()
            return []
        c.rows_read += batch.count
        c.batches += 1
        if self.dedup:
            ci = self.source.cursor_index
            self._seen_rows.update(repr(r[ci]) for r in batch.rows)
        if converted is None and batch.table is not None:  # read straight into Arrow (sources/postgres.py)
            converted = (batch.table, list(range(batch.table.num_rows)), [])
        table, positions, bad = converted or to_arrow(batch.rows, self.schema, self.source.cursor_index)
        # a text that is no time has no time partition: its row is a bad row (export/time_text.py)
        table, positions, untimed = drop_untimed(table, positions, self.specs, batch.rows, self.source.cursor_index)
        bad_rows = list(batch.bad) + bad + untimed
        items: list[UploadItem] = []
        groups = split(table, self.specs)
        bodies = self._write_ahead(groups)
        for n, (path, idx, group) in enumerate(groups):
            body = bodies[n].result() if bodies else None
            raw = _LazyRows(batch.rows, positions, idx)
            if self.one_per_row:
                for i in range(group.num_rows):
                    item = self._item(group.slice(i, 1), raw[i:i + 1], rec, path, bad_rows, single=True)
                    if item is not None:
                        items.append(item)
            else:
                item = self._item(group, raw, rec, path, bad_rows, single=False, body=body)
                if item is not None:
                    items.append(item)
        if bad_rows:
            c.rows_failed += len(bad_rows)
            entry = DlqEntry("rows", self.table, self.source.cursor.name, encode_cursor(first),
                             encode_cursor(last), f"{len(bad_rows)} rows could not be exported",
                             rows=[{"cursor": encode_cursor(b.cursor), "error": b.error, "values": b.values}
                                   for b in bad_rows])
            if not self.dry_run:
                self._put_dlq(entry, first, last)
        rec.planned = True
        if not items:
            self._advance()
        return items

    def _write_ahead(self, groups: list[tuple[str, pa.Array, pa.Table]]) -> list[cf.Future[bytes | None]]:
        """Serialize a batch's groups on :data:`WRITER_THREADS` threads, in order (none for a
        single group, one object per row, or ``--dedup``, which may skip a group unwritten).

        Arrow's Parquet writer and the compressors release the GIL, so the objects of a batch are
        written on both cores while this thread builds the items (docs/benchmarks.md). A group
        whose body raised gets None and is serialized again, row by row, in ``_item``.
        """
        if len(groups) < 2 or self.one_per_row or self.dedup:
            return []
        if self._writers is None:
            self._writers = cf.ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="s3pump-export-write")

        def write(group: pa.Table) -> bytes | None:
            try:
                return self.serializer.serialize(group)
            except Exception:
                return None

        return [self._writers.submit(write, group) for _path, _idx, group in groups]

    def _item(self, group: pa.Table, raw: Sequence[tuple[Any, ...]], rec: _Batch, path: str,
              bad_rows: list[BadRow], *, single: bool, body: bytes | None = None) -> UploadItem | None:
        """The upload of one group (``body``: its serialization, if already done), or None."""
        ci = self.source.cursor_index
        hashes: dict[str, bytes] = {}
        if self.dedup:
            hashes = {repr(r[ci]): row_hash(r) for r in raw}
            key = self._key(group, raw, rec, path, single)
            # unchanged: the object holds exactly these rows, each as it is now
            if (self._stored_rows.get(key) == len(hashes)
                    and all(self.hashes.get(k) == (h, key) for k, h in hashes.items())):
                self._seen_keys.add(key)
                self.counters.objects_skipped += 1
                self.counters.rows_unchanged += group.num_rows
                self.bus.emit(FileSkipped(self._source_text(rec), key, 0, "unchanged"))
                return None
        if body is None:
            body, group, raw = self._serialize(group, raw, bad_rows)
        if body is None:
            return None
        key = self._key(group, raw, rec, path, single)
        first, last = (raw[0][ci], raw[-1][ci]) if single else (rec.first, rec.last)
        attrs = self.attrs.with_metadata({
            "s3pump-table": escape_value(self.table), "s3pump-format": self.fmt,
            "s3pump-rows": str(group.num_rows), "s3pump-cursor-column": escape_value(self.source.cursor.name),
            "s3pump-cursor-first": escape_cursor(first), "s3pump-cursor-last": escape_cursor(last),
            "s3pump-schema-hash": self.schema_hash, "s3pump-schema-version": str(self.checkpoint.schema_version),
        })
        error: S3PumpError | None = None
        try:
            sanitize_key(key)
        except S3PumpError as e:
            error = e
        rec.outstanding.add(key)
        self._seen_keys.add(key)
        self._key_batch[key] = rec
        self._key_rows[key] = group.num_rows
        if self.dedup:
            self._key_hashes[key] = {repr(r[ci]): hashes[repr(r[ci])] for r in raw}
        return UploadItem(key=key, size_bytes=len(body), source=self._source_text(rec), body=body,
                          attrs=attrs, error=error)

    def _source_text(self, rec: _Batch) -> str:
        return f"{self.table} rows {self.source.cursor.name} {rec.first}..{rec.last}"

    def _key(self, group: pa.Table, raw: Sequence[tuple[Any, ...]], rec: _Batch, path: str, single: bool) -> str:
        ext = self.serializer.extension
        if not single:
            return object_key(self.dest.prefix, self.table, self._versioned(path), rec.first, rec.last, ext)
        # the lab layout: <entity>/date=YYYY-MM-DD/<id>_<unix>.<ext>, all from the row itself
        time_spec = next(s for s in self.specs if s.kind == "time")
        col_spec = next((s for s in self.specs if s.kind == "column"), None)
        moment = timestamps_of(group[time_spec.column], time_spec.epoch).cast(pa.timestamp("us"))[0].as_py()
        entity = escape_name(self.table)
        if col_spec is not None:
            v = group[col_spec.column][0].as_py()
            entity = escape_value("" if v is None else str(v))
        ident = escape_cursor(raw[0][self.source.cursor_index])
        entity = version_dir(entity, self.checkpoint.schema_version)
        if moment is None:
            return join_key(self.dest.prefix, f"{entity}/date=__HIVE_DEFAULT_PARTITION__/{ident}.{ext}")
        unix = int(moment.replace(tzinfo=dt.UTC).timestamp())
        return join_key(self.dest.prefix, f"{entity}/date={moment:%Y-%m-%d}/{ident}_{unix}.{ext}")

    def _versioned(self, path: str) -> str:
        """A partition path under the table's directory of this run's schema version (``_v2/…``)."""
        version = self.checkpoint.schema_version
        if version <= 1:
            return path
        return f"_v{version}/{path}" if path else f"_v{version}"

    def _serialize(self, group: pa.Table, raw: Sequence[tuple[Any, ...]], bad_rows: list[BadRow]
                   ) -> tuple[bytes | None, pa.Table, Sequence[tuple[Any, ...]]]:
        """The object body; a row the format cannot encode goes to ``bad_rows`` and the rest are written."""
        try:
            return self.serializer.serialize(group), group, raw
        except Exception:
            pass
        keep: list[int] = []
        for i in range(group.num_rows):
            try:
                self.serializer.serialize(group.slice(i, 1))
                keep.append(i)
            except Exception as e:
                bad_rows.append(BadRow(raw[i][self.source.cursor_index],
                                       f"{self.fmt} cannot encode the row ({type(e).__name__}: {e})", repr(raw[i])))
        if not keep:
            return None, group, raw
        group = group.take(pa.array(keep, pa.int64()))
        raw = [raw[i] for i in keep]
        return self.serializer.serialize(group), group, raw

    # ------------------------------------------------------------------ completions → checkpoint
    def _on_event(self, event: Event) -> None:
        if isinstance(event, FileDone):
            rec = self._key_batch.pop(event.key, None)
            if rec is None:
                return
            rows = self._key_rows.pop(event.key, 0)
            if self.checkpoint.superseded and event.key in self.checkpoint.superseded:
                self.checkpoint.superseded.remove(event.key)  # rewritten by this export: keep it
            self.counters.rows_exported += rows
            self.counters.objects_written += 1
            self.counters.bytes_written += event.size_bytes
            self.checkpoint.rows_exported += rows
            self.checkpoint.objects_written += 1
            if event.version_id:  # what a consumer pins: the version this export wrote
                self.checkpoint.versions[event.key] = event.version_id
            if self.dedup:
                moved = self._key_hashes.pop(event.key, {})
                for c in moved:  # a row that moved here from another object leaves that one
                    old = self.hashes.get(c)
                    if old is not None and old[1] != event.key and old[1] in self._stored_rows:
                        self._stored_rows[old[1]] -= 1
                self.hashes.update({c: (h, event.key) for c, h in moved.items()})
                self._stored_rows[event.key] = len(moved)
            rec.outstanding.discard(event.key)
            self._advance()
        elif isinstance(event, FileFailed):
            rec = self._key_batch.pop(event.key, None)
            if rec is None:
                return
            self._key_rows.pop(event.key, None)
            self._key_hashes.pop(event.key, None)
            self.counters.objects_failed += 1
            rec.failures.append({"key": event.key, "error": str(event.error)})
            rec.outstanding.discard(event.key)
            self._advance()

    def _settle(self, key: str) -> None:
        """--dry-run: count a planned object as settled, without writing it."""
        rec = self._key_batch.pop(key, None)
        self._key_rows.pop(key, None)
        self._key_hashes.pop(key, None)
        if rec is not None:
            rec.outstanding.discard(key)

    def _advance(self) -> None:
        """Settle finished batches in order: failures to the dead-letter queue, then one checkpoint write."""
        moved = False
        while self._pending:
            seq = next(iter(self._pending))
            rec = self._pending[seq]
            if not rec.planned or rec.outstanding:
                break
            if rec.failures and not self.dry_run:
                entry = DlqEntry("upload", self.table, self.source.cursor.name, encode_cursor(rec.first),
                                 encode_cursor(rec.last), f"{len(rec.failures)} objects failed to upload",
                                 keys=rec.failures)
                self._put_dlq(entry, rec.first, rec.last)
            del self._pending[seq]
            if self._advance_checkpoint:
                self.checkpoint.cursor = encode_cursor(rec.last)
                if not self.dedup and rec.cut is not None and rec.cut in self.checkpoint.batches:
                    self.checkpoint.batches.remove(rec.cut)
                if rec.cut is not None and rec.cut in self.checkpoint.done:
                    self.checkpoint.done.remove(rec.cut)
                moved = True
        if moved and not self.dry_run:
            self.state.save(self.checkpoint)
            self.counters.checkpoint = self.checkpoint.cursor
            self.bus.emit(BatchExported(self.counters.rows_exported - self._rows_reported, self.checkpoint.cursor))
            self._rows_reported = self.counters.rows_exported

    # ------------------------------------------------------------------ --replay-dlq
    def _replay(self) -> int:
        """Export each dead-letter entry's range again; drop the entries whose failures are gone."""
        self._advance_checkpoint = False
        replayed = 0
        entries = list(self.dlq.entries(self.table))
        self._drop_older_versions([(decode_cursor(e.first), decode_cursor(e.last)) for _h, e in entries])
        for handle, entry in entries:
            if self.stop.is_set():
                break
            first, last = decode_cursor(entry.first), decode_cursor(entry.last)
            batch = self.source.read_range(first, last)
            if self.stop.is_set():  # stopped while waiting for a lock: the entry stays
                break
            rows_failed, objects_failed = self.counters.rows_failed, self.counters.objects_failed
            if batch is not None:
                self._cycle(iter(self._plan(batch, first, last)))
            still = (self.counters.rows_failed > rows_failed if entry.kind == "rows"
                     else self.counters.objects_failed > objects_failed)
            if not still:
                self.dlq.remove(handle)
                replayed += 1
        return replayed

    def _report(self, replayed: int) -> ExportReport:
        c = self.counters
        return ExportReport(
            table=self.table, destination=str(self.dest), format=self.fmt, rows_read=c.rows_read,
            rows_exported=c.rows_exported, rows_failed=c.rows_failed, rows_unchanged=c.rows_unchanged,
            objects_written=c.objects_written, objects_failed=c.objects_failed,
            objects_skipped=c.objects_skipped, bytes_written=c.bytes_written, batches=c.batches,
            elapsed_s=c.elapsed_s, retries=self.stats.retries, checkpoint=self.checkpoint.cursor,
            dlq=self.dlq.location, dlq_entries=list(dict.fromkeys(self.dlq_entries)),
            failed=list(self.stats.failed), stopped=self.stop.is_set(), replayed_entries=replayed,
            dry_run=self.dry_run, would_write=list(self.would_write), deleted=list(self.deleted),
            would_delete=list(self.would_delete),
        )

