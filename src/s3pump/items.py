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
from .fileid import FileIdentity
from .store.base import CompletedPart, ObjectAttributes, PutResult
from .store.body import BufferSlice, PartBody

__all__ = ["PartSource", "PutCheck", "ResumeRecord", "UploadItem"]

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
    out as a :class:`~s3pump.events.SourceRead`. ``full_object_checksum`` is ``(algorithm, base64)``
    of the whole object, read after :meth:`finish`, or None: when given, the engine sends it with
    CompleteMultipartUpload for the server to check. Every member is required (the engine calls
    them without looking first).
    """

    part_size_bytes: int
    counts_reads: bool

    @property
    def full_object_checksum(self) -> tuple[str, str] | None: ...

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
    continue that upload: ListParts and a re-read of the file verify the journaled parts,
    and only the missing (or no longer matching) part numbers are read and sent, with the
    journaled part size.

    ``identity`` is the file's :class:`~s3pump.fileid.FileIdentity` when it was planned: after
    a single PUT, and before CompleteMultipartUpload, the file must still have it, else the
    object is removed (or the upload aborted) and the file fails. Without it, size and mtime
    are compared. ``md5`` (sync) is the hex MD5 the planner hashed. ``check_put`` (the planner's,
    e.g. sync's comparison of the ETag with that MD5) is asked after a single PUT whose file still
    has its identity: False means other bytes were sent, and the file fails the same way.
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
    identity: FileIdentity | None = None
    md5: str | None = None
    check_put: PutCheck | None = None


class PutCheck(Protocol):
    """A planner's check of a single PUT, set on :attr:`UploadItem.check_put`: called by the engine
    (on its scheduler thread: it must be quick, or rare) with the item and the PUT's answer once the
    file is known to be the version planned. True when the object holds the bytes planned; False
    fails the file as changed (the object is deleted). Picklable: items travel to cluster workers.
    """

    def __call__(self, item: UploadItem, result: PutResult) -> bool: ...
