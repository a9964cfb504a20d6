"""``s3pump stream``: a stream (stdin, a FIFO, any readable) to one object, uploaded while it
is still being read, in bounded memory, and never stored partially (the limits, the single PUT,
the digest metadata and the report in ``stream_object.py``).

Read the first part(s); a stream that fits in one part is one PutObject (an empty stream is a
0-byte object). Otherwise the engine runs one multipart upload whose parts come from
:class:`~s3pump.sources.stdin.StreamPartSource` as they are read. Every way out but success
(a read error, a byte count other than ``--expected-size``, parts failing past the retry
budget, Ctrl-C, SIGTERM) aborts the multipart upload, so no object and no parts remain.

Integrity, checked by the server: every part (or the single PUT) carries its checksum
(``--checksum-algorithm``, CRC32C by default), and a multipart stream is a FULL_OBJECT upload
(CRC32C, CRC32 or CRC64NVME): the reader computes the whole stream's CRC as it reads it and sends it
with CompleteMultipartUpload, and a server that checks it refuses a mismatch, so no object is
stored (see docs/stream.md for which servers check). That CRC stays on the object and is what
``verify`` and ``sync --checksum`` compare a local file with. With ``md5=True`` (``--md5``) the MD5
of the whole stream is computed too (1.8 CPU-s/GiB, the largest cost of a stream, so it is opt-in)
and stored as the object's ``md5`` user metadata (hex), and with ``sha256=True`` the SHA-256 as
``sha256``; without a full-object CRC (``--checksum-algorithm SHA1|SHA256|none``) the MD5 is always
computed and stored, so an object never lacks a whole-stream digest. A single PUT carries them; a
multipart object gets them afterwards by a metadata-replacing copy onto itself
(:func:`~s3pump.engine.copy.replace_metadata`), since S3 fixes metadata at CreateMultipartUpload,
before the stream has been read (no copy when there is no digest to store). The ETag and version
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

import contextlib
import time
from collections.abc import Iterable
from dataclasses import replace

from ..config import TransferConfig
from ..errors import S3PumpError, SourceError, UsageError
from ..events import Event, FileDone, FileFailed, Subscriber
from ..intents import IntentLog, sweep_dead_runs
from ..items import UploadItem
from ..reports import StreamReport
from ..run import Run
from ..session import state_dir
from ..sources.content_types import content_type_for
from ..sources.stdin import PartSchedule, Readable, StreamPartSource, share_malloc_arenas
from ..store.base import ObjectAttributes, Store
from ..store.checksums import FULL_OBJECT_ALGORITHMS
from ..stream_object import (
    MD5_METADATA,
    SHA256_METADATA,
    STREAM_DEFAULT_CONCURRENCY,
    digest_metadata,
    parse_tolerance,
    part_runs,
    single_put_item,
    store_digests,
    stream_limits,
)
from ..urls import parse_s3_url, sanitize_key

__all__ = [
    "MD5_METADATA",
    "SHA256_METADATA",
    "STREAM_DEFAULT_CONCURRENCY",
    "parse_tolerance",
    "stream",
    "stream_limits",
]


class _Outcome:
    """Subscriber: keeps the object's final event."""

    def __init__(self) -> None:
        self.done: FileDone | None = None
        self.failed: FileFailed | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDone):
            self.done = event
        elif isinstance(event, FileFailed):
            self.failed = event


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
    handle_signals: bool = False,
    sha256: bool = False,
    md5: bool = False,
) -> StreamReport:
    """Upload everything ``readable`` yields to ``destination`` (``s3://bucket/key``) as one object.

    ``readable`` is a binary stream (``sys.stdin.buffer``, ``open(path, "rb")``): its ``read(n)``
    is called from a reader thread. Parts are ``config.part_size_bytes`` (growing with the part
    number when the size is unknown, see :class:`~s3pump.sources.partschedule.PartSchedule`; sized to
    fit ``expected_size_bytes`` in 10,000 parts when given). ``spool_dir`` spools parts to
    temporary files there instead of memory. ``schedule`` overrides the part sizes (tests).
    Progress: each part read is a :class:`~s3pump.events.SourceRead` event. ``handle_signals``:
    SIGINT/SIGTERM cancel (the CLI's setting; by default no handler is installed). ``sha256``:
    compute the SHA-256 of the whole stream too and store it as ``sha256`` metadata (about 0.6
    CPU-s/GiB more). ``md5``: compute the MD5 of the whole stream and store it as ``md5`` metadata
    (about 1.8 CPU-s/GiB more); it is computed whatever ``md5`` says when the checksum algorithm has
    no full-object form (SHA1, SHA256, none).

    Returns:
        StreamReport: bytes, parts and part sizes, MD5 and SHA-256 (None when not computed), the
        full-object checksum the server checked (``checksum_algorithm``, ``checksum``: base64; None
        for SHA1/SHA256/none), final ETag and version ID.

    Raises:
        UsageError: bad destination (no key), config, or expected size (exit 2).
        SourceTruncatedError: the stream ended with a byte count other than expected (± tolerance);
            nothing was stored.
        SourceUnreadableError: reading the stream (or writing the spool) failed; nothing was stored.
        StoreError: parts failed past the retry budget, or the server refused the full-object
            checksum (BadDigest; nothing was stored), or storing the digest metadata failed (the
            object is complete; the message says so).
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
    attrs = ObjectAttributes.of(config)
    if not attrs.content_type:  # --content-type, else from the key's name (as upload does for a file's)
        attrs = replace(attrs, content_type=content_type_for(key))
    algorithm = config.checksum_algorithm.upper()
    full = algorithm if algorithm in FULL_OBJECT_ALGORITHMS else None
    source = StreamPartSource(
        readable, schedule, buffers=buffers, name=name, spool_dir=spool_dir,
        expected_size_bytes=expected_size_bytes, size_tolerance_bytes=size_tolerance_bytes,
        sha256=sha256, full_object_algorithm=full, md5=md5 or full is None,
    )
    started = time.monotonic()
    outcome = _Outcome()
    if store is None:
        share_malloc_arenas()  # before awscrt's threads start (see its docstring)
    try:
        with Run("stream", engine_config, dest.bucket, store=store, embedded=embedded,
                 subscribers=[outcome, *subscribers], handle_signals=handle_signals) as run:
            intents = _intent_log(run, destination)
            try:
                source.start()
                multipart = source.wait_first()
                if source.error is not None:
                    raise source.error
                if not multipart:
                    source.check_size()
                    item = single_put_item(source, key, name, attrs)
                else:
                    item = UploadItem(key=key, source=name, parts=source,
                                      size_bytes=expected_size_bytes if expected_size_bytes is not None else -1,
                                      attrs=replace(attrs, checksum_type="FULL_OBJECT") if full else attrs)
                run.transfer([item])
            finally:
                intents.finish(run.store)
            if outcome.failed is not None or outcome.done is None:
                raise outcome.failed.error if outcome.failed is not None else SourceError(f"{name}: not stored")
            done = outcome.done
            etag, version_id = done.etag, done.version_id
            if multipart and digest_metadata(source):
                etag, version_id = store_digests(run, key, attrs, source, done)
    finally:
        source.close()
    sizes = source.part_sizes
    return StreamReport(
        bucket=dest.bucket, key=key, bytes=source.bytes_read, parts=len(sizes) if multipart else 0,
        part_sizes=part_runs(sizes, schedule) if multipart else [(source.bytes_read, 1)],
        md5=source.md5_hex, sha256=source.sha256_hex, etag=etag, version_id=version_id,
        elapsed_s=time.monotonic() - started, retries=run.stats.retries, spooled=spool_dir is not None,
        peak_parts_held=source.peak_parts_held, concurrency=config.concurrency,
        expected_size_bytes=expected_size_bytes, checksum_algorithm=full,
        checksum=checksum[1] if (checksum := source.full_object_checksum) else None,
    )


def _intent_log(run: Run, destination: str) -> IntentLog:
    """Abort what killed runs left open in the bucket (a killed stream's upload of this key, say; never a
    live run's), then record this stream's multipart intent and upload, so a kill leaves none that the
    next run or ``cleanup`` cannot abort (:mod:`s3pump.intents`)."""
    directory = state_dir()
    with contextlib.suppress(S3PumpError, OSError):
        sweep_dead_runs(directory / "journals", run.store, run.config.endpoint_url, run.bucket,
                        policy=run.policy)
    intents = IntentLog(directory, "stream", [], destination, run.config.endpoint_url, run.bucket)
    run.subscribe(run.guard(intents, lambda: intents.path, "resume journal"))
    return intents
