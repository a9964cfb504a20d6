"""``export --cluster``'s ranges and what a worker does with one (``jobs/export_cluster.py`` is the coordinator).

A range is consecutive recorded cuts of one table; the task :func:`export_range` exports them on a
worker's :class:`~s3pump.cluster.worker.WorkerRuntime` (one store, one set of limits per process)
through an :class:`~.job.ExportJob` that writes no state: its dead-letter entries come back in its
result, for the coordinator to write. The objects are named as a single-process export names them,
for the schema version the coordinator chose. Before any range, :func:`check_source` is run on
every worker. No credentials travel: :func:`worker_db` refuses a database URL holding a password.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..cluster.results import ShardResult
from ..cluster.worker import WorkerRuntime
from ..errors import S3PumpError, UsageError
from ..events import BatchExported, ConcurrencyChanged, Event, Tick
from ..run import Run
from ..sources.readers import open_table
from ..sources.table import decode_cursor, is_password_parameter, redact_url
from ..urls import parse_s3_url
from .dlq import DlqEntry
from .job import ExportJob
from .partition import PartitionSpec

__all__ = ["COUNTERS", "DEFAULT_RANGE_ROWS", "ExportRange", "ExportRuntime", "RangeJob", "RangeResult", "check_source",
           "describe", "export_range", "group_cuts", "worker_db"]


#: Rows per range (one Dask task), in whole cuts: a few seconds of one worker's time.
DEFAULT_RANGE_ROWS = 100_000


@dataclass(frozen=True, slots=True)
class RangeJob:
    """What every range task of one export needs to read and write its rows (no credentials).

    ``db`` is an absolute SQLite path or a URL without a password; ``specs`` hold declared column
    names; ``destination`` is ``s3://bucket/prefix``.
    """

    db: str
    table: str
    cursor_column: str
    destination: str
    specs: tuple[PartitionSpec, ...]
    format: str
    compression: str | None
    one_object_per_row: bool
    batch_rows: int
    lock_timeout_s: float | None
    #: the schema version the objects are named for (``prefix/T/_v<N>/`` above 1), the coordinator's
    schema_version: int = 1
    #: ``--dedup``: objects whose rows are all unchanged since the last run are not written
    dedup: bool = False


@dataclass(frozen=True, slots=True)
class ExportRange:
    """Range ``index`` (in cursor order, from 0): consecutive recorded cuts ``[after, first, last]``
    (JSON-encoded cursor values) that one task exports."""

    index: int
    job: RangeJob
    cuts: tuple[list[Any], ...]


@dataclass(frozen=True, slots=True)
class RangeResult:
    """A finished range: its events and rates (``shard``: files are objects), the worker's export
    counters (``ExportCounters`` fields, as ints) and the dead-letter entries ``(entry, first, last)``
    for the coordinator to write."""

    shard: ShardResult
    counters: dict[str, int]
    dlq: tuple[tuple[DlqEntry, Any, Any], ...]
    #: ``--dedup``: each row read, ``repr(cursor) -> (row hash, key holding it)``, as the range left it
    hashes: dict[str, tuple[bytes, str]] | None = None
    #: ``--dedup``: the keys the range wrote or found unchanged (not superseded)
    seen_keys: tuple[str, ...] = ()


class ExportRuntime(WorkerRuntime):
    """An export's :class:`~s3pump.cluster.worker.WorkerRuntime`, with ``--dedup``'s row hashes of the
    last run (``repr(cursor) -> (hash, key)``; sent once per worker with the plugin, not per range)."""

    def __init__(self, name: str, config: Any, bucket: str, workers: int,
                 hashes: dict[str, tuple[bytes, str]] | None = None) -> None:
        super().__init__(name, "export", config, bucket, workers)
        self.hashes = hashes


COUNTERS = ("rows_read", "rows_exported", "rows_failed", "rows_unchanged", "objects_written", "objects_failed",
             "objects_skipped", "bytes_written", "batches")


def worker_db(db: str) -> str:
    """``db`` as every worker opens it: a SQLite path made absolute (workers start elsewhere).

    Raises:
        UsageError: a database URL that holds a password (it would travel in every task).
    """
    if db.startswith("sqlite:///"):
        return "sqlite:///" + os.path.abspath(db[len("sqlite:///"):])
    if "://" in db:
        if _holds_password(db):
            raise UsageError(f"--cluster: the database URL {redact_url(db)} holds a password, which would be sent to "
                             "every worker; leave it out of the URL and give it in the workers' environment "
                             "(e.g. PGPASSWORD, ~/.pgpass, a MySQL option file)")
        return db
    return os.path.abspath(db)


def _holds_password(url: str) -> bool:
    """Whether database ``url`` carries a password: in its user part (``u:pw@``) or as a query
    parameter (``?password=``, ``?passwd=``, ``?pwd=``...), as SQLAlchemy parses it."""
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # no driver to open it anyway; the plain reading of the user part
        return ":" in url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    try:
        parsed = make_url(url)
    except Exception:
        return False
    return parsed.password is not None or any(is_password_parameter(k) for k in parsed.query)


def describe(error: BaseException | None) -> str:
    """``Class: message`` of a range's error, for the line that names the range."""
    return f"{type(error).__name__}: {error}"


def group_cuts(cuts: Sequence[list[Any]], batch_rows: int, range_rows: int) -> Iterator[tuple[list[Any], ...]]:
    """``cuts`` in order, in groups of ``max(1, range_rows // batch_rows)`` (a cut holds about
    ``batch_rows`` rows)."""
    per = max(1, range_rows // max(1, batch_rows))
    for i in range(0, len(cuts), per):
        yield tuple(cuts[i:i + per])


# ---------------------------------------------------------------------- the worker side
def check_source(job: RangeJob, last: Any, dask_worker: Any = None) -> str | None:
    """Open the table as a range task will; None if it reads, else why not (one line).

    ``last``: the JSON-encoded last cursor value of the plan; the worker must see rows up to it
    (a stale copy of the database at the same path would export other rows under the same keys).
    """
    try:
        source = open_table(job.db, job.table, job.cursor_column, lock_timeout_s=job.lock_timeout_s)
    except S3PumpError as e:
        return str(e)
    try:
        if last is not None:
            seen = source.max_cursor()
            want = decode_cursor(last)
            try:
                short = seen is None or seen < want
            except TypeError:
                short = True
            if short:
                return (f"{source.where}: table {source.table} ends at {source.cursor.name} {seen!r}, before the "
                        f"{want!r} the coordinator planned; it is another copy of the database")
        return None
    except S3PumpError as e:
        return str(e)
    finally:
        source.close()


def export_range(plugin: str, rng: ExportRange) -> RangeResult:
    """The task: export ``rng``'s cuts on this worker's :class:`~s3pump.cluster.worker.WorkerRuntime`."""
    from distributed import get_worker

    worker = get_worker()
    runtime = worker.plugins[plugin]
    assert isinstance(runtime, WorkerRuntime)
    key = str(worker.get_current_task())
    events: list[Event] = []

    def keep(event: Event) -> None:
        if not isinstance(event, Tick | ConcurrencyChanged | BatchExported):  # gauges of this process only
            events.append(event)

    job = rng.job
    with runtime.turn(key) as store:
        started = time.monotonic()
        source = open_table(job.db, job.table, job.cursor_column, lock_timeout_s=job.lock_timeout_s)
        try:
            with Run("export", runtime.config, runtime.bucket, store=store, subscribers=[keep],
                     failed_list=os.devnull, check_bucket=False, limits=runtime.limits) as run, \
                    runtime.cancelled_with(key, run):
                exporter = ExportJob(source, parse_s3_url(job.destination), run, list(job.specs), job.format,
                                     job.compression, job.one_object_per_row, job.dedup, None, job.batch_rows, None,
                                     threading.Event(), hold_dlq=True, schema_version=job.schema_version)
                if job.dedup:  # the last run's hashes: a group whose rows are all unchanged is not written
                    exporter.ledger.load_hashes(dict(getattr(runtime, "hashes", None) or {}))
                try:
                    exporter.export_cuts(rng.cuts)
                finally:
                    exporter.close()
        finally:
            source.close()
        busy = time.monotonic() - started
    c = exporter.counters
    shard = ShardResult(rng.index, runtime.address, tuple(events), busy, c.objects_written, c.bytes_written)
    counts = {k: int(getattr(c, k)) for k in COUNTERS}
    if not job.dedup:
        return RangeResult(shard, counts, tuple(exporter.held_dlq or ()))
    seen = exporter.writer.seen_rows
    hashes = {cur: value for cur, value in exporter.ledger.hashes.items() if cur in seen}
    return RangeResult(shard, counts, tuple(exporter.held_dlq or ()), hashes, tuple(sorted(exporter.ledger.seen_keys)))
