"""The contract between sources, the resume journal and the engine: what one object to write is.

Sources (a directory walk, a failed-list, stdin, a table's batches) produce :class:`UploadItem`
s, and may interleave :class:`~s3pump.events.Discovered` events that announce what they found;
the journal attaches a :class:`ResumeRecord` to an item whose multipart upload it can continue;
the engine writes each item. A :class:`PartSource` hands the engine the parts of an object whose
bytes are not a plain file (a stream).

S3 allows 1 to 10,000 parts of 5 MiB to 5 GiB, the last one smaller (S3 API reference,
UploadPart; S3 User Guide, "Amazon S3 multipart upload limits").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .errors import S3PumpError
from .store.base import CompletedPart, ObjectAttributes
from .store.body import BufferSlice, PartBody

__all__ = ["PartSource", "ResumeRecord", "UploadItem"]

_DEFAULT_ATTRS = ObjectAttributes()


@dataclass(frozen=True, slots=True)
class ResumeRecord:
    """A multipart upload to continue (from the resume journal): its upload ID, the part
    size it was started with, and the parts an earlier run completed (part number -> part)."""

    upload_id: str
    part_size_bytes: int
    parts: dict[int, CompletedPart] = field(default_factory=dict)


class PartSource(Protocol):
    """Where a multipart upload's parts come from (a file, stdin, ...).

    The engine calls :meth:`next_part` from its scheduler thread; it must not block.
    It returns ``(part_number, body)``, ``None`` when no part is ready yet (the source
    then calls the ``wakeup`` it was given once one is), or raises ``StopIteration``
    when every part has been handed out. The engine keeps each part's body until the part
    is uploaded (for retries), then calls :meth:`release` with its number, so a source that
    holds part buffers (a stream) can reuse them. :meth:`finish` is called before
    CompleteMultipartUpload and raises a SourceError if the source is not whole (a file that
    changed, a stream shorter than expected). ``counts_reads`` is True for a source whose
    parts are read by the source itself (a stream): the engine then reports each part handed
    out as a :class:`~s3pump.events.SourceRead`. A source may also offer ``full_object_checksum``
    (``(algorithm, base64)`` of the whole object, read after :meth:`finish`): the engine then sends it
    with CompleteMultipartUpload for the server to check.
    """

    part_size_bytes: int
    counts_reads: bool

    def bind(self, wakeup: Callable[[], None]) -> None: ...

    def next_part(self) -> tuple[int, PartBody] | None: ...

    def release(self, part_number: int) -> None: ...

    def finish(self) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class UploadItem:
    """One object to write. Exactly one of ``path``, ``body``, ``parts`` or ``error`` is set.

    * ``path``: a regular file of ``size_bytes`` (single PUT, or multipart above the threshold);
    * ``body``: bytes in memory, or a stream's part buffer (single PUT);
    * ``parts``: a :class:`PartSource` (always multipart, e.g. stdin);
    * ``error``: the source failed while planning (unreadable, bad key): reported as failed.

    ``resume`` (a file's multipart upload from the resume journal) makes the engine
    continue that upload: ListParts verifies the journaled parts, and only the
    missing part numbers are read and sent, with the journaled part size.
    """

    key: str
    size_bytes: int
    source: str
    path: str | None = None
    body: bytes | BufferSlice | None = None
    parts: PartSource | None = None
    attrs: ObjectAttributes = _DEFAULT_ATTRS
    mtime_ns: int = 0
    error: S3PumpError | None = None
    resume: ResumeRecord | None = None
