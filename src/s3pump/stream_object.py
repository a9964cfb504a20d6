"""The one object a stream becomes: its memory limits, its single PUT, its digest metadata, its report.

``jobs/stream.py`` is the verb; this module holds what it computes around the engine's upload: the
``--concurrency`` budget split into requests in flight and part buffers (:func:`stream_limits`,
see ``jobs/stream.py`` for the memory bound), ``--size-tolerance`` (:func:`parse_tolerance`), the
single PUT of a stream that fits one part (:func:`single_put_item`), the MD5/SHA-256 metadata a
multipart object gets by a metadata-replacing copy (:func:`store_digests`; only with ``--md5`` or
``--sha256``: without them there is nothing to copy), and the report.
"""

from __future__ import annotations

import logging
import os

from .engine.copy import replace_metadata
from .errors import StoreError, UsageError
from .events import FileDone
from .fileid import FileIdentity
from .items import UploadItem
from .run import Run
from .sources.stdin import PartSchedule, StreamPartSource
from .store.base import ObjectAttributes
from .store.body import FileRange
from .units import parse_size_bytes

__all__ = [
    "MD5_METADATA",
    "SHA256_METADATA",
    "STREAM_DEFAULT_CONCURRENCY",
    "digest_metadata",
    "parse_tolerance",
    "part_runs",
    "single_put_item",
    "store_digests",
    "stream_limits",
]

_log = logging.getLogger("s3pump.stream")

#: User metadata holding the hex MD5 / SHA-256 of the whole stream (``x-amz-meta-md5``, ...), written
#: with ``--md5`` / ``--sha256``. ``md5`` is a key sync and verify read to compare a multipart object
#: with a local file (the full-object CRC is the other, and a stream's default).
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
    most ``concurrency`` part-sized buffers (the memory bound in ``jobs/stream.py``). Spooled, the held parts
    are files and only a quarter of the budget is in flight (awscrt's copies are the RAM).

    Raises:
        UsageError: ``concurrency`` < 2.
    """
    if concurrency < 2:
        raise UsageError(f"stream needs --concurrency >= 2 (one part reading, one sending), got {concurrency}")
    in_flight = max(1, concurrency // 4 if spooled else concurrency // 2)
    return in_flight, max(2, concurrency - in_flight)


def digest_metadata(source: StreamPartSource) -> dict[str, str]:
    """The user metadata of the whole stream's digests: ``md5`` and ``sha256``, each if computed
    (empty when neither was asked for)."""
    digests = {}
    if source.md5_hex is not None:
        digests[MD5_METADATA] = source.md5_hex
    if source.sha256_hex is not None:
        digests[SHA256_METADATA] = source.sha256_hex
    return digests


def single_put_item(source: StreamPartSource, key: str, name: str, attrs: ObjectAttributes) -> UploadItem:
    """The one PutObject of a stream that fits in its first part, its digests (if any) in its metadata."""
    body = source.single_body()
    with_digests = attrs.with_metadata(digest_metadata(source))
    if isinstance(body, FileRange):  # spooled: the store reads the spool file itself
        return UploadItem(key=key, size_bytes=body.length, source=name, path=body.path, attrs=with_digests,
                          identity=FileIdentity.of(os.fstat(body.fd)))
    return UploadItem(key=key, size_bytes=len(body), source=name, body=body, attrs=with_digests)


def store_digests(run: Run, key: str, attrs: ObjectAttributes, source: StreamPartSource,
                   done: FileDone) -> tuple[str, str | None]:
    """Put the MD5/SHA-256 metadata (:func:`digest_metadata`, not empty) on the completed object; its
    final ETag and version ID."""
    bucket = run.bucket
    assert run.uploads is not None
    try:
        result = replace_metadata(run.store, run.uploads, key, attrs.with_metadata(digest_metadata(source)),
                                  size_bytes=done.size_bytes, etag=done.etag, version_id=done.version_id)
    except StoreError as e:
        raise type(e)(
            f"s3://{bucket}/{key}: stored complete ({done.size_bytes} bytes, "
            + ", ".join(f"{k} {v}" for k, v in digest_metadata(source).items()) + "), "
            f"but writing its digest metadata failed: {e}", status=e.status, code=e.code,
        ) from None
    final = result.version_id or done.version_id
    if done.version_id and done.version_id != "null" and final != done.version_id:
        # a versioned bucket keeps the completed upload (no digests) as a noncurrent version beside the
        # copy: the same bytes twice. Delete that one version, so a stream leaves one version.
        try:
            run.store.delete_versions(bucket, [(key, done.version_id)])
        except StoreError as e:
            _log.warning("s3://%s/%s: could not delete the intermediate version %s (%s); it is the same "
                         "bytes without the digest metadata", bucket, key, done.version_id, e)
    return result.etag or done.etag, final


def part_runs(sizes: list[int], schedule: PartSchedule) -> list[tuple[int, int]]:
    """Part sizes as ``(size, count)`` runs; the last (short) part counts under its scheduled size."""
    runs: list[tuple[int, int]] = []
    for n, actual in enumerate(sizes, 1):
        size = schedule.part_size(n) if n == len(sizes) else actual
        if runs and runs[-1][0] == size:
            runs[-1] = (size, runs[-1][1] + 1)
        else:
            runs.append((size, 1))
    return runs
