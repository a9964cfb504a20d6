"""The sync plan: a merge-join of the local files and the remote objects, both sorted by key.

Both sides arrive as records sorted by the key's UTF-8 bytes (S3's listing order; see
:mod:`s3pump.plan.extsort` for how they are sorted in bounded memory). One pass over
the two streams pairs each key with its local file, its object, or both, and decides:

* local only: ``upload`` (new);
* remote only: ``delete`` with ``--delete``, else ``keep``;
* both: by mode,

  - ``default`` (as ``rclone sync``): ``upload`` when the sizes differ, else ``compare``: the
    object's recorded modification time (``x-amz-meta-mtime``, rclone's, which s3pump writes too)
    read by HeadObject decides (:func:`mtime_verdict`): equal to the file's, ``skip``; else
    ``upload``. An object without one falls back to the aws cli's rule below. A HeadObject per
    object of the same size is rclone's cost too; the hash cache saves it when it holds the file's
    MD5 and that equals the object's ETag (the same bytes);
  - ``server-modtime`` (as ``aws s3 sync``, rclone's ``--use-server-modtime``): ``upload`` when the
    sizes differ or the local mtime is later than the object's LastModified, else ``skip``;
  - ``size-only``: ``upload`` when the sizes differ, else ``skip``;
  - ``checksum``: ``upload`` when the sizes differ, else ``compare`` (the file is
    hashed and :func:`checksum_verdict` decides).

Records are named tuples (:class:`LocalRecord`, :class:`RemoteRecord`): as small as plain tuples
(no per-record dict), so a million of them stay small. The external sort holds and spills them as
plain tuples (``marshal`` takes no named tuple); the planner names them as they come out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple

from ..errors import StoreError
from ..etags import FileDigest, candidate_part_sizes, parse_etag
from ..store.base import ObjectInfo
from .crccheck import full_object_crc

__all__ = [
    "MODES",
    "Action",
    "LocalRecord",
    "RemoteRecord",
    "SyncMode",
    "Verdict",
    "checksum_part_sizes",
    "checksum_verdict",
    "decide",
    "local_is_newer",
    "merge_join",
    "mtime_verdict",
    "plan",
    "recorded_mtime_ns",
    "valid_md5",
]

SyncMode = Literal["default", "server-modtime", "size-only", "checksum"]
MODES: tuple[SyncMode, ...] = ("default", "server-modtime", "size-only", "checksum")
ActionKind = Literal["upload", "compare", "skip", "delete", "keep"]


class LocalRecord(NamedTuple):
    """A local file: its key's UTF-8 bytes (the sort key), size and modification time; its ctime and inode as the
    walk's ``stat`` saw them (-1: not known), which the hash cache's answer is keyed by."""

    key_utf8: bytes
    size_bytes: int
    mtime_ns: int
    ctime_ns: int = -1
    inode: int = -1


class RemoteRecord(NamedTuple):
    """An object of the listing: its key's UTF-8 bytes (the sort key), size, ETag (as listed,
    quotes and all) and LastModified in Unix seconds."""

    key_utf8: bytes
    size_bytes: int
    etag: str
    last_modified_s: float


@dataclass(slots=True)
class Action:
    """What to do with one key. ``reason`` is for the event log (why upload, why skip)."""

    kind: ActionKind
    key: str
    local: LocalRecord | None
    remote: RemoteRecord | None
    reason: str


def merge_join(
    local: Iterable[LocalRecord], remote: Iterable[RemoteRecord]
) -> Iterator[tuple[LocalRecord | None, RemoteRecord | None]]:
    """Pair two key-sorted streams: ``(local, remote)``, either side None when missing.

    Raises:
        ValueError: a stream is not strictly ascending (a bug upstream: it was not sorted).
    """
    li, ri = iter(local), iter(remote)
    lrec, rrec = next(li, None), next(ri, None)
    last_l = last_r = None
    while lrec is not None or rrec is not None:
        if lrec is not None and (rrec is None or lrec.key_utf8 < rrec.key_utf8):
            pair_l, pair_r = lrec, None
        elif rrec is not None and (lrec is None or rrec.key_utf8 < lrec.key_utf8):
            pair_l, pair_r = None, rrec
        else:
            pair_l, pair_r = lrec, rrec
        if pair_l is not None:
            if last_l is not None and pair_l.key_utf8 <= last_l:
                raise ValueError(f"local stream not sorted at {pair_l.key_utf8!r}")
            last_l = pair_l.key_utf8
            lrec = next(li, None)
        if pair_r is not None:
            if last_r is not None and pair_r.key_utf8 <= last_r:
                raise ValueError(f"remote stream not sorted at {pair_r.key_utf8!r}")
            last_r = pair_r.key_utf8
            rrec = next(ri, None)
        yield pair_l, pair_r


def local_is_newer(mtime_ns: int, last_modified_s: float) -> bool:
    """awscli's rule: upload when the file's mtime is later than the object's LastModified.

    awscli compares ``datetime.fromtimestamp(st_mtime)`` (microseconds) with LastModified
    (whole seconds on S3), so this compares in microseconds too.
    """
    return (mtime_ns + 500) // 1000 > round(last_modified_s * 1_000_000)


def decide(local: LocalRecord | None, remote: RemoteRecord | None, mode: SyncMode, delete: bool) -> Action:
    """The action for one key (see the module docstring)."""
    rec = local if local is not None else remote
    assert rec is not None
    key = rec.key_utf8.decode("utf-8")
    if remote is None:
        return Action("upload", key, local, None, "new file")
    if local is None:
        return Action("delete" if delete else "keep", key, None, remote, "no local file")
    if local.size_bytes != remote.size_bytes:
        return Action("upload", key, local, remote,
                      f"size differs (local {local.size_bytes}, remote {remote.size_bytes} bytes)")
    if mode == "size-only":
        return Action("skip", key, local, remote, "same size")
    if mode in ("checksum", "default"):
        return Action("compare", key, local, remote, "same size")
    if local_is_newer(local.mtime_ns, remote.last_modified_s):
        return Action("upload", key, local, remote, "local file is newer than the object")
    return Action("skip", key, local, remote, "same size, not newer")


def plan(
    local: Iterable[LocalRecord], remote: Iterable[RemoteRecord], mode: SyncMode, *, delete: bool = False
) -> Iterator[Action]:
    """One :class:`Action` per key present on either side, in key order."""
    for lrec, rrec in merge_join(local, remote):
        yield decide(lrec, rrec, mode, delete)


def recorded_mtime_ns(text: str | None) -> int | None:
    """An object's recorded modification time (``x-amz-meta-mtime``: Unix seconds with up to nine
    decimals, rclone's format, ``1600000000.123456789``) in nanoseconds; None when absent or not
    of that form (another tool's metadata)."""
    if not text:
        return None
    whole, _, frac = text.strip().partition(".")
    if not whole.isdigit() or len(frac) > 9 or (frac and not frac.isdigit()):
        return None
    return int(whole) * 1_000_000_000 + int(frac.ljust(9, "0") or "0")


def mtime_verdict(local_mtime_ns: int, info: ObjectInfo | None, last_modified_s: float) -> Verdict:
    """The default mode's comparison of a file with an object of the same size (rclone's rule): the
    object's recorded mtime (``info``: HeadObject's answer) equal to the file's to the nanosecond is
    the same file; a different one is a changed file. Without a recorded mtime (an object written by
    another tool), the aws cli's rule (:func:`local_is_newer` than ``last_modified_s``)."""
    if info is None:
        return Verdict(False, "the object disappeared since the listing")
    recorded = recorded_mtime_ns(info.metadata.get("mtime"))
    if recorded is None:
        if local_is_newer(local_mtime_ns, last_modified_s):
            return Verdict(False, "local file is newer than the object (no recorded mtime)")
        return Verdict(True, "same size, not newer (no recorded mtime)")
    if recorded == local_mtime_ns:
        return Verdict(True, "same size and mtime as recorded on the object")
    side = "newer" if local_mtime_ns > recorded else "older"
    return Verdict(False, f"local file is {side} than the object's recorded mtime")


def valid_md5(text: str) -> str | None:
    """``text`` as a lowercase hex MD5, or None if it is not one (e.g. other tools' metadata)."""
    value = text.strip().lower()
    return value if len(value) == 32 and all(c in "0123456789abcdef" for c in value) else None


def checksum_part_sizes(remote: RemoteRecord, own_part_size_bytes: int) -> list[int]:
    """The part sizes whose multipart ETag must be computed to compare with ``remote``
    (empty for a single-part ETag)."""
    parsed = parse_etag(remote.etag)
    if parsed is None or parsed[1] is None:
        return []
    return candidate_part_sizes(remote.size_bytes, parsed[1], own_part_size_bytes)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a checksum comparison. ``fallback``: the bytes could not be compared
    exactly (no candidate part size, an SSE-KMS/SSE-C ETag, no md5 metadata nor full-object CRC), so the
    file is uploaded to be safe; ``reason`` says which."""

    same: bool
    reason: str
    fallback: bool = False


def checksum_verdict(
    digest: FileDigest, remote: RemoteRecord, part_sizes: list[int], head: Callable[[], ObjectInfo | None]
) -> Verdict:
    """Compare a local file with an object of the same size, exactly or not at all.

    1. A single-part ETag equal to the file's MD5, or a multipart ETag equal to the one
       recomputed for one of ``part_sizes``: same.
    2. Otherwise HeadObject (``head()``; with checksum mode, :mod:`s3pump.plan.crccheck`): the
       object's full-object CRC decides when the digest holds the file's CRC of that algorithm
       (``digest.crcs``; ``s3pump stream`` objects); else its ``md5`` user metadata (written by
       every s3pump sync upload, and by ``stream --md5``) decides when present.
    3. Otherwise upload: plainly changed when the ETag is a plain MD5 of an unencrypted
       object; a ``fallback`` when it is a multipart ETag no candidate matches, an SSE-KMS
       ETag, an object HeadObject refuses (SSE-C needs the key), or an opaque ETag.
    """
    etag = remote.etag.strip('"').lower()
    parsed = parse_etag(etag)
    if parsed is not None and parsed[1] is None and digest.md5 and parsed[0] == digest.md5:
        return Verdict(True, "MD5 equals the ETag")
    if parsed is not None and parsed[1] is not None:
        for size in part_sizes:
            if digest.multipart_etag_for(size) == etag:
                return Verdict(True, f"multipart ETag matches with {size} byte parts")
    try:
        info = head()
    except StoreError as e:
        return Verdict(False, f"HeadObject failed ({e}); the object may be SSE-C encrypted; uploading", True)
    if info is None:
        return Verdict(False, "the object disappeared since the listing")
    crc = full_object_crc(info)
    if crc is not None and crc[0] in digest.crcs:
        if digest.crcs[crc[0]] == crc[1]:
            return Verdict(True, f"full-object {crc[0]} equals the file's")
        return Verdict(False, f"content differs (full-object {crc[0]})")
    stored = valid_md5(info.metadata.get("md5") or "")
    if stored and digest.md5:
        if stored == digest.md5:
            return Verdict(True, "md5 metadata equals the file's MD5")
        return Verdict(False, "content differs (md5 metadata)")
    if info.sse and info.sse.startswith("aws:kms"):
        return Verdict(False, f"{info.sse} ETag is not an MD5 and the object has no md5 metadata", True)
    if parsed is None:
        return Verdict(False, f"ETag {etag!r} is not an MD5 and the object has no md5 metadata", True)
    if parsed[1] is not None:
        tried = ", ".join(str(s) for s in part_sizes) or "none fits"
        return Verdict(False, f"multipart ETag {etag} matches no part size tried ({tried} bytes) and the "
                       "object has no md5 metadata", True)
    return Verdict(False, "content differs (MD5 != ETag)")
