"""The reports of the jobs: what :func:`s3pump.upload`, ``sync``, ``stream``, ``export_table``,
``cleanup`` and ``verify`` return, and their one ``--json`` summary form (:meth:`Report.to_json`).

Sizes are in bytes, times in seconds, rates per second. The reports are built by the jobs (an
upload's from :class:`~s3pump.runstats.RunStats`) and shown by :mod:`s3pump.ui`, which imports
them from here and never from the jobs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import Field, asdict, dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .runstats import RunStats

__all__ = [
    "CleanupReport", "ExportReport", "FailedFile", "LsEntry", "Report", "StreamReport", "SyncReport", "UploadReport",
    "VerifyReport",
]


def _plain(value: Any) -> Any:
    """A field's value for JSON: dataclasses (e.g. :class:`FailedFile`) as dicts, lists item by item."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Report:
    """Base of the reports (dataclasses): :meth:`to_json`, the ``--json`` summary line."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def _json_values(self) -> dict[str, Any]:
        """Fields shown otherwise in :meth:`to_json` (kept in place) and derived values (added after
        the fields, in this order)."""
        return {}

    def to_json(self) -> dict[str, Any]:
        """Every field (in order, as :func:`dataclasses.asdict` gives it, or as :meth:`_json_values`
        replaces it), the derived values, then ``"event": "summary"``."""
        extra = self._json_values()
        d = {f.name: extra.pop(f.name) if f.name in extra else _plain(getattr(self, f.name)) for f in fields(self)}
        d.update(extra)
        d["event"] = "summary"
        return d


@dataclass(frozen=True, slots=True)
class FailedFile:
    """A source that was not uploaded, and why."""

    source: str
    key: str
    error: str
    error_type: str


@dataclass(frozen=True)
class UploadReport(Report):
    """Outcome of :func:`s3pump.upload`. Sizes in bytes, times in seconds, rate in bytes/s."""

    files_done: int
    files_failed: int
    files_skipped: int
    bytes_done: int
    elapsed_s: float
    retries: int
    latency_p50_s: float
    latency_p99_s: float
    failed: list[FailedFile] = field(default_factory=list)
    failed_list_path: str | None = None
    dry_run: bool = False
    bytes_skipped: int = 0
    #: ``--cluster`` runs: workers, shards planned/done/failed, and per-worker rates (``per_worker``)
    cluster: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.files_failed == 0

    @property
    def rate_bps(self) -> float:
        return self.bytes_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def from_stats(cls, stats: RunStats, *, failed_list_path: str | None, dry_run: bool = False) -> UploadReport:
        return cls(
            files_done=stats.files_done, files_failed=stats.files_failed, files_skipped=stats.files_skipped,
            bytes_done=stats.bytes_done, elapsed_s=stats.elapsed_s, retries=stats.retries,
            latency_p50_s=stats.latency.quantile(0.5), latency_p99_s=stats.latency.quantile(0.99),
            failed=list(stats.failed), failed_list_path=failed_list_path, dry_run=dry_run,
            bytes_skipped=stats.bytes_skipped,
        )

    def _json_values(self) -> dict[str, Any]:
        return {"rate_bps": self.rate_bps}


@dataclass(frozen=True)
class SyncReport(UploadReport):
    """Outcome of :func:`s3pump.sync`: the upload figures of :class:`UploadReport`
    (``files_done`` = objects uploaded, ``files_skipped`` = unchanged files) and the plan.

    ``planned_uploads``: files found new or changed (uploaded, failed, or listed by
    --dry-run); ``fallback_uploads``: those uploaded because their contents could not be
    compared exactly (see the ``planned`` events for why); ``objects_deleted`` /
    ``deletes_failed`` / ``deletes_withheld`` (under a local directory that could not be
    read); ``planned_delete_bytes``: the size of the objects the plan deletes;
    ``remote_only_kept``: objects with no local file, without --delete;
    ``files_hashed`` / ``bytes_hashed`` / ``hash_cache_hits``: the hashing work.
    """

    mode: str = "default"
    local_files: int = 0
    remote_objects: int = 0
    planned_uploads: int = 0
    fallback_uploads: int = 0
    planned_deletes: int = 0
    planned_delete_bytes: int = 0
    objects_deleted: int = 0
    deletes_failed: int = 0
    deletes_withheld: int = 0
    remote_only_kept: int = 0
    files_hashed: int = 0
    bytes_hashed: int = 0
    hash_cache_hits: int = 0
    sort_runs_spilled: int = 0

    @property
    def ok(self) -> bool:
        return self.files_failed == 0 and self.deletes_failed == 0


@dataclass(frozen=True)
class StreamReport(Report):
    """Outcome of :func:`s3pump.stream`. Sizes in bytes, times in seconds, rate in bytes/s.

    ``part_sizes`` lists ``(part size, count)`` runs in part-number order (one run for a
    fixed part size; more as an unknown-size stream grows its parts). ``parts`` is 0 for a
    single PUT. ``peak_parts_held`` is the most parts s3pump held at once (memory or spool).
    ``md5`` / ``sha256``: hex digests of the whole stream, None when not computed (``--md5``,
    ``--sha256``); ``checksum``: the full-object CRC (base64), None without one.
    """

    bucket: str
    key: str
    bytes: int
    parts: int
    part_sizes: list[tuple[int, int]]
    md5: str | None
    sha256: str | None
    etag: str
    version_id: str | None
    elapsed_s: float
    retries: int
    spooled: bool
    peak_parts_held: int
    concurrency: int
    expected_size_bytes: int | None = None
    checksum_algorithm: str | None = None
    checksum: str | None = None

    @property
    def rate_bps(self) -> float:
        return self.bytes / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def _json_values(self) -> dict[str, Any]:
        return {"part_sizes": [{"size_bytes": s, "count": c} for s, c in self.part_sizes], "rate_bps": self.rate_bps}


@dataclass(frozen=True)
class ExportReport(Report):
    """Outcome of :func:`s3pump.export_table`. Bytes in bytes, times in seconds, rates per second.

    ``rows_failed`` rows and ``objects_failed`` objects went to the dead-letter queue
    (``dlq_entries`` lists where); ``checkpoint`` is the JSON-encoded cursor value saved.
    ``stopped`` is True when a stop request (SIGINT/SIGTERM) ended the run after the
    in-flight batches.
    """

    table: str
    destination: str
    format: str
    rows_read: int
    rows_exported: int
    rows_failed: int
    rows_unchanged: int
    objects_written: int
    objects_failed: int
    objects_skipped: int
    bytes_written: int
    batches: int
    elapsed_s: float
    retries: int
    checkpoint: Any
    dlq: str
    dlq_entries: list[str] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)
    stopped: bool = False
    replayed_entries: int = 0
    dry_run: bool = False
    would_write: list[dict[str, Any]] = field(default_factory=list)  # --dry-run: key, source, rows, bytes
    deleted: list[str] = field(default_factory=list)  # superseded objects deleted (--from-start, --dedup)
    would_delete: list[str] = field(default_factory=list)  # --dry-run: what ``deleted`` would have been
    #: ``--cluster``: workers, ranges ("shards") planned/done/failed, per-worker objects, bytes and busy seconds
    cluster: dict[str, Any] | None = None
    #: ``--table-format iceberg``: ``table`` (namespace.name), ``location``, ``catalog`` (its URI, no password),
    #: ``snapshot_id`` (the current snapshot after the run)
    iceberg: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.rows_failed == 0 and self.objects_failed == 0

    @property
    def rows_per_s(self) -> float:
        return self.rows_exported / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def _json_values(self) -> dict[str, Any]:
        return {"rows_per_s": round(self.rows_per_s, 1), "ok": self.ok}


@dataclass(frozen=True)
class CleanupReport(Report):
    """What cleanup did: ``aborted`` and ``kept`` (too recent) as ``s3://bucket/key`` + upload ID,
    and ``failed`` (abort refused) with the error."""

    aborted: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    dry_run: bool = False
    #: ``--iceberg``: the files no snapshot references, as ``s3://bucket/key``: deleted (or, dry run, to
    #: delete), ``iceberg_kept`` younger than ``--older-than``; ``iceberg_failed``: (URL, error), a file
    #: not deleted or a table left alone
    iceberg_deleted: list[str] = field(default_factory=list)
    iceberg_kept: list[str] = field(default_factory=list)
    iceberg_failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.iceberg_failed

    def _json_values(self) -> dict[str, Any]:
        return {"ok": self.ok}


@dataclass(slots=True)
class VerifyReport(Report):
    """What verify found. ``missing``/``different``/``unverified``: ``(source path, key, reason)``;
    ``extra``: keys. ``ok`` only when every file matched and nothing is extra. The JSON summary
    counts each list; :meth:`events` lists their entries."""

    destination: str
    matched: int = 0
    missing: list[tuple[str, str, str]] = field(default_factory=list)
    different: list[tuple[str, str, str]] = field(default_factory=list)
    unverified: list[tuple[str, str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.different or self.unverified or self.extra)

    def events(self, bucket: str) -> Iterable[dict[str, Any]]:
        """One JSON event per problem, in key order (``--json``)."""
        for kind, rows in (("missing", self.missing), ("different", self.different),
                           ("unverified", self.unverified)):
            for source, key, reason in rows:
                yield {"event": kind, "source": source, "key": key, "url": f"s3://{bucket}/{key}", "reason": reason}
        for key in self.extra:
            yield {"event": "extra", "key": key, "url": f"s3://{bucket}/{key}"}

    def _json_values(self) -> dict[str, Any]:
        return {"missing": len(self.missing), "different": len(self.different),
                "unverified": len(self.unverified), "extra": len(self.extra), "ok": self.ok}


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
