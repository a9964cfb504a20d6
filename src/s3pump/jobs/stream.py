"""``s3pump stream``: a stream (stdin, a FIFO, any readable) to one object, uploaded while it
is still being read, in bounded memory, and never stored partially.

Read the first part(s); a stream that fits in one part is one PutObject (an empty stream is a
0-byte object). Otherwise the engine runs one multipart upload whose parts come from
:class:`~s3pump.sources.stdin.StreamPartSource` as they are read. Every way out but success
(a read error, a byte count other than ``--expected-size``, parts failing past the retry
budget, Ctrl-C, SIGTERM) aborts the multipart upload, so no object and no parts remain.

The MD5 and SHA-256 of the whole stream are stored as the object's ``md5`` and ``sha256``
user metadata (hex). A single PUT carries them; a multipart object gets them afterwards by a
metadata-replacing copy onto itself (:meth:`~s3pump.store.base.Store.replace_metadata`), since S3
fixes metadata at CreateMultipartUpload, before the stream has been read. The ETag and version
ID reported are those of that final object.

Memory bound (``c`` = ``--concurrency``, default 16; ``P`` = the largest part size used)::

    RAM:        requests in flight R = c // 2, parts held by s3pump S = c - R (at least 2)
                parts in RAM = S (s3pump's) + R (awscrt's send copy of each part in flight) <= c
                peak RSS <= c * P + base
    --spool-dir R = c // 4 in flight, S = c - R spool files (disk <= S * P)
                parts in RAM = R (awscrt's copies) + a 1 MiB read buffer
                peak RSS <= (c // 4) * P + 1 MiB + base

``base`` is the process without any part: about 50 MiB for the CLI (interpreter, awscrt's
client; boto3 is not loaded unless the stream is over 5 GiB, and then only for the final metadata
copy, after the parts are freed). awscrt copies a part into
its own send buffer while the request runs (measured: 8 parts of 8 MiB in flight hold 64 MiB
there), which is why only half of the budget goes to requests. Measured at the defaults
(c = 16, P = 8 MiB): see docs/stream.md and docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..config import TransferConfig
from ..engine.scheduler import Engine, UploadItem
from ..errors import SourceError, StoreError, UsageError
from ..events import Event, EventBus, FileDone, FileFailed, MultipartCreated, PartDone, Subscriber
from ..report import RunStats
from ..session import open_store
from ..sources.stdin import PartSchedule, Readable, StreamPartSource, share_malloc_arenas
from ..store.base import ObjectAttributes, Store
from ..store.body import FileRange
from ..units import parse_size_bytes
from ..urls import parse_s3_url, sanitize_key
from .upload import attributes_of

__all__ = [
    "MD5_METADATA",
    "SHA256_METADATA",
    "STREAM_DEFAULT_CONCURRENCY",
    "StreamProgress",
    "StreamReport",
    "parse_tolerance",
    "stream",
    "stream_limits",
]

_log = logging.getLogger("s3pump.stream")

#: User metadata holding the hex MD5 / SHA-256 of the whole stream (``x-amz-meta-md5``, ...).
#: ``md5`` is the key sync reads to compare a multipart object with a local file.
MD5_METADATA = "md5"
SHA256_METADATA = "sha256"


#: ``--concurrency`` of ``s3pump stream`` when neither the flag nor ``S3PUMP_CONCURRENCY`` is given:
#: 16 part buffers (8 parts in flight), 128 MiB at 8 MiB parts.
STREAM_DEFAULT_CONCURRENCY = 16


def parse_tolerance(text: str, expected_size_bytes: int | None) -> int:
    """``--size-tolerance``: a size (``10MiB``) or a percentage of ``--expected-size`` (``1%``).

    Raises:
        UsageError: not a size or percentage, or a percentage without ``--expected-size``.
    """
    if expected_size_bytes is None:
        raise UsageError("--size-tolerance needs --expected-size")
    if text.strip().endswith("%"):
        try:
            percent = float(text.strip()[:-1])
        except ValueError:
            raise UsageError(f"--size-tolerance {text!r}: use e.g. 1% or 10MiB") from None
        if percent < 0:
            raise UsageError(f"--size-tolerance {text!r} must be >= 0")
        return int(expected_size_bytes * percent / 100)
    return parse_size_bytes(text, what="--size-tolerance")


def stream_limits(concurrency: int, *, spooled: bool = False) -> tuple[int, int]:
    """``(requests in flight, part buffers held by s3pump)`` for ``--concurrency``: together at
    most ``concurrency`` part-sized buffers (see the module docstring). Spooled, the held parts
    are files and only a quarter of the budget is in flight (awscrt's copies are the RAM).

    Raises:
        UsageError: ``concurrency`` < 2.
    """
    if concurrency < 2:
        raise UsageError(f"stream needs --concurrency >= 2 (one part reading, one sending), got {concurrency}")
    in_flight = max(1, concurrency // 4 if spooled else concurrency // 2)
    return in_flight, max(2, concurrency - in_flight)


@dataclass(frozen=True)
class StreamReport:
    """Outcome of :func:`stream`. Sizes in bytes, times in seconds, rate in bytes/s.

    ``part_sizes`` lists ``(part size, count)`` runs in part-number order (one run for a
    fixed part size; more as an unknown-size stream grows its parts). ``parts`` is 0 for a
    single PUT. ``peak_parts_held`` is the most parts s3pump held at once (memory or spool).
    """

    bucket: str
    key: str
    bytes: int
    parts: int
    part_sizes: list[tuple[int, int]]
    md5: str
    sha256: str
    etag: str
    version_id: str | None
    elapsed_s: float
    retries: int
    spooled: bool
    peak_parts_held: int
    concurrency: int
    expected_size_bytes: int | None = None

    @property
    def rate_bps(self) -> float:
        return self.bytes / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["part_sizes"] = [{"size_bytes": s, "count": c} for s, c in self.part_sizes]
        d["rate_bps"] = self.rate_bps
        d["event"] = "summary"
        return d


class _Outcome:
    """Subscriber: frees a part's buffer once it is uploaded; keeps the object's final event."""

    def __init__(self, key: str, source: StreamPartSource) -> None:
        self.key = key
        self.source = source
        self.done: FileDone | None = None
        self.failed: FileFailed | None = None
        self.upload_id: str | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, PartDone):
            if event.key == self.key:
                self.source.part_uploaded(event.part_number)
        elif isinstance(event, FileDone):
            self.done = event
        elif isinstance(event, FileFailed):
            self.failed = event
        elif isinstance(event, MultipartCreated):
            self.upload_id = event.upload_id


def stream(
    readable: Readable,
    destination: str,
    config: TransferConfig | None = None,
    *,
    expected_size_bytes: int | None = None,
    size_tolerance_bytes: int = 0,
    spool_dir: str | None = None,
    embedded: bool = False,
    subscribers: Iterable[Subscriber] = (),
    store: Store | None = None,
    schedule: PartSchedule | None = None,
    name: str = "stdin",
    on_source: Any = None,
) -> StreamReport:
    """Upload everything ``readable`` yields to ``destination`` (``s3://bucket/key``) as one object.

    ``readable`` is a binary stream (``sys.stdin.buffer``, ``open(path, "rb")``): its ``read(n)``
    is called from a reader thread. Parts are ``config.part_size_bytes`` (growing with the part
    number when the size is unknown, see :class:`~s3pump.sources.stdin.PartSchedule`; sized to
    fit ``expected_size_bytes`` in 10,000 parts when given). ``spool_dir`` spools parts to
    temporary files there instead of memory. ``schedule`` overrides the part sizes (tests).
    ``on_source`` is called with the :class:`StreamPartSource` once it runs (progress views).

    Returns:
        StreamReport: bytes, parts and part sizes, MD5/SHA-256, final ETag and version ID.

    Raises:
        UsageError: bad destination (no key), config, or expected size (exit 2).
        SourceTruncatedError: the stream ended with a byte count other than expected (± tolerance);
            nothing was stored.
        SourceUnreadableError: reading the stream (or writing the spool) failed; nothing was stored.
        StoreError: parts failed past the retry budget (nothing was stored), or storing the
            checksum metadata failed (the object is complete; the message says so).
        CancelledError: Ctrl-C / SIGTERM; the multipart upload was aborted (exit 130).
    """
    config = config or TransferConfig.from_env()
    dest = parse_s3_url(destination)
    if not dest.prefix or dest.prefix.endswith("/"):
        raise UsageError(f"{destination!r}: give the object's key, e.g. s3://{dest.bucket}/backups/db.sql.gz")
    key = sanitize_key(dest.prefix)
    if expected_size_bytes is not None and expected_size_bytes < 0:
        raise UsageError(f"--expected-size must be >= 0, got {expected_size_bytes}")
    if size_tolerance_bytes < 0:
        raise UsageError(f"--size-tolerance must be >= 0, got {size_tolerance_bytes}")
    in_flight, buffers = stream_limits(config.concurrency, spooled=spool_dir is not None)
    if schedule is None:
        schedule = (PartSchedule.growing(config.part_size_bytes) if expected_size_bytes is None
                    else PartSchedule.for_expected_size(expected_size_bytes + size_tolerance_bytes,
                                                        config.part_size_bytes))
    engine_config = config.replace(
        concurrency=in_flight, max_parts_in_flight=buffers, adaptive_concurrency=False,
        multipart_threshold_bytes=max(config.multipart_threshold_bytes, schedule.start_bytes),
    )
    attrs = attributes_of(config)
    source = StreamPartSource(
        readable, schedule, buffers=buffers, name=name, spool_dir=spool_dir,
        expected_size_bytes=expected_size_bytes, size_tolerance_bytes=size_tolerance_bytes,
    )
    started = time.monotonic()
    stats = RunStats()
    outcome = _Outcome(key, source)
    bus = EventBus(outcome, stats, *subscribers)
    own_store = store is None
    if store is None:
        share_malloc_arenas()  # before awscrt's threads start (see its docstring)
        store, engine_config = open_store(engine_config, dest.bucket, embedded=embedded)
    try:
        source.start()
        if on_source is not None:
            on_source(source)
        multipart = source.wait_first()
        if source.error is not None:
            raise source.error
        if not multipart:
            source.check_size()
            item = _single_put_item(source, key, name, attrs)
        else:
            item = UploadItem(key=key, size_bytes=expected_size_bytes if expected_size_bytes is not None else -1,
                              source=name, parts=source, attrs=attrs)
        Engine(store, dest.bucket, engine_config, bus).run([item])
        if outcome.failed is not None or outcome.done is None:
            error = outcome.failed.error if outcome.failed is not None else SourceError(f"{name}: not stored")
            raise error
        done = outcome.done
        etag, version_id = done.etag, done.version_id
        if multipart:
            etag, version_id = _store_digests(store, dest.bucket, key, attrs, source, done)
        sizes = source.part_sizes
        return StreamReport(
            bucket=dest.bucket, key=key, bytes=source.bytes_read, parts=len(sizes) if multipart else 0,
            part_sizes=_runs(sizes, schedule) if multipart else [(source.bytes_read, 1)],
            md5=source.md5_hex, sha256=source.sha256_hex, etag=etag, version_id=version_id,
            elapsed_s=time.monotonic() - started, retries=stats.retries, spooled=spool_dir is not None,
            peak_parts_held=source.peak_parts_held, concurrency=config.concurrency,
            expected_size_bytes=expected_size_bytes,
        )
    finally:
        source.close()
        if own_store:
            store.close()


def _digest_metadata(source: StreamPartSource) -> dict[str, str]:
    return {MD5_METADATA: source.md5_hex, SHA256_METADATA: source.sha256_hex}


def _single_put_item(source: StreamPartSource, key: str, name: str, attrs: ObjectAttributes) -> UploadItem:
    body = source.single_body()
    with_digests = attrs.with_metadata(_digest_metadata(source))
    if isinstance(body, FileRange):  # spooled: the store reads the spool file itself
        return UploadItem(key=key, size_bytes=body.length, source=name, path=body.path, attrs=with_digests)
    return UploadItem(key=key, size_bytes=len(body), source=name, body=body, attrs=with_digests)


def _store_digests(store: Store, bucket: str, key: str, attrs: ObjectAttributes, source: StreamPartSource,
                   done: FileDone) -> tuple[str, str | None]:
    """Put the MD5/SHA-256 metadata on the completed object; its final ETag and version ID."""
    try:
        result = store.replace_metadata(bucket, key, attrs.with_metadata(_digest_metadata(source)),
                                        size_bytes=done.size_bytes, etag=done.etag, version_id=done.version_id)
    except StoreError as e:
        raise type(e)(
            f"s3://{bucket}/{key}: stored complete ({done.size_bytes} bytes, sha256 {source.sha256_hex}), "
            f"but writing its md5/sha256 metadata failed: {e}", status=e.status, code=e.code,
        ) from None
    final = result.version_id or done.version_id
    if done.version_id and done.version_id != "null" and final != done.version_id:
        # a versioned bucket keeps the completed upload (no digests) as a noncurrent version beside the
        # copy: the same bytes twice. Delete that one version, so a stream leaves one version.
        try:
            store.delete_versions(bucket, [(key, done.version_id)])
        except StoreError as e:
            _log.warning("s3://%s/%s: could not delete the intermediate version %s (%s); it is the same "
                         "bytes without the md5/sha256 metadata", bucket, key, done.version_id, e)
    return result.etag or done.etag, final


def _runs(sizes: list[int], schedule: PartSchedule) -> list[tuple[int, int]]:
    """Part sizes as ``(size, count)`` runs; the last (short) part counts under its scheduled size."""
    runs: list[tuple[int, int]] = []
    for n, actual in enumerate(sizes, 1):
        size = schedule.part_size(n) if n == len(sizes) else actual
        if runs and runs[-1][0] == size:
            runs[-1] = (size, runs[-1][1] + 1)
        else:
            runs.append((size, 1))
    return runs


class StreamProgress:
    """Progress of a stream on stderr: bytes read and uploaded, rate; % and ETA with an expected size.

    An event subscriber (uploaded bytes from PartDone/FileDone) plus the source's ``bytes_read``,
    redrawn by rich about 8 times a second.
    """

    def __init__(self, expected_size_bytes: int | None, console: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        from ..output import stderr_console
        from ..units import format_bytes

        self._format = format_bytes
        self._source: StreamPartSource | None = None
        self._progress = Progress(
            TextColumn("[bold]stream"), BarColumn(), DownloadColumn(binary_units=True), TransferSpeedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[read]}"),
            console=console or stderr_console(), refresh_per_second=8,
        )
        self._task = self._progress.add_task("stream", total=expected_size_bytes, read="")
        self._uploaded = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="s3pump-stream-progress", daemon=True)

    def attach(self, source: StreamPartSource) -> None:
        self._source = source

    def __enter__(self) -> StreamProgress:
        self._progress.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)
        self._update()
        self._progress.stop()

    def __call__(self, event: Event) -> None:
        if isinstance(event, PartDone) or (isinstance(event, FileDone) and not event.parts):
            self._uploaded += event.size_bytes

    def _update(self) -> None:
        read = self._source.bytes_read if self._source is not None else 0
        self._progress.update(self._task, completed=self._uploaded, read=f"read {self._format(read)}")

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self._update()


def format_report_line(report: StreamReport) -> str:
    """The one-line summary printed on stderr."""
    from ..units import format_bytes

    how = f"{report.parts} parts" if report.parts else "a single PUT"
    return (f"streamed {format_bytes(report.bytes)} to s3://{report.bucket}/{report.key} in {report.elapsed_s:.1f} s "
            f"({report.rate_bps / 1e6:.1f} MB/s) as {how}; sha256 {report.sha256}; retries {report.retries}")
