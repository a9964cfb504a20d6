"""``s3pump verify DIR s3://bucket/prefix``: prove that a tree arrived intact (like ``rclone check``).

For every regular file under ``DIR`` (keys as ``upload``/``sync`` make them), the object
``prefix/<relative path>`` must exist, have the file's size, and the same content. Content is
compared, in order, by what the object can prove:

0. for a multipart object, first its full-object CRC32/CRC32C/CRC64NVME checksum (HeadObject with
   ``x-amz-checksum-mode: ENABLED``, ``ChecksumType`` FULL_OBJECT; S3 User Guide, "Checking
   object integrity"; what ``s3pump stream`` stores, and its only record without ``--md5``): the
   file's CRC of that algorithm, one pass, no part size to know (:mod:`s3pump.plan.crccheck`);
1. the ETag: a single-part ETag is the MD5 of the body; a multipart ETag is recomputed for the
   part size of the object's part 1 (HeadObject ``partNumber=1``), or where the store cannot tell,
   for the part sizes that give its part count (s3pump's, the common tools' defaults, the
   smallest fitting size; :mod:`s3pump.etags`) — all from one read of the file;
2. the ``md5`` user metadata (s3pump's sync uploads and ``stream --md5`` write it) when the ETag
   cannot decide (SSE-KMS, an unknown part size): the same rule as ``sync --checksum``
   (:func:`s3pump.plan.syncplan.checksum_verdict`);
3. a single-part object's stored full-object CRC, when 1 and 2 cannot decide (SSE-KMS).

A COMPOSITE checksum (``<base64>-N``, the checksum of the parts' checksums) is not compared.

With ``download``, the bytes themselves are fetched and compared instead. An object none of
these can judge is ``unverified`` (rerun with ``--download``). Objects under the prefix with
no local file are ``extra``. The local keys and the listing are held in memory (about 200
bytes per object).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..config import TransferConfig
from ..errors import PathNotFoundError, SourceError, StoreError, UsageError
from ..etags import file_digest, parse_etag
from ..plan.crccheck import HeadMemo, head_with_checksums
from ..plan.syncplan import RemoteRecord, checksum_part_sizes, checksum_verdict
from ..reports import VerifyReport
from ..run import Run
from ..sources.keynames import KeyNames
from ..sources.walk import walk_items
from ..store.base import ObjectInfo, Store
from ..units import MIB
from ..urls import S3Url, parse_s3_url

__all__ = ["verify"]

_READ_BYTES = MIB


def verify(
    directory: str | Path, destination: str, config: TransferConfig | None = None, *,
    download: bool = False, embedded: bool = False, store: Store | None = None, workers: int = 4,
) -> VerifyReport:
    """Compare the files under ``directory`` with the objects under ``destination`` (rules in the
    module docstring).

    Raises:
        PathNotFoundError: ``directory`` does not exist (exit 2).
        UsageError: ``directory`` is not a directory, a bad URL or config (exit 2).
        NoSuchBucketError, CredentialsError, EndpointUnreachableError: as for any job (exit 2).
    """
    config = config or TransferConfig.from_env()
    root = os.fspath(directory)
    if not os.path.exists(root):
        raise PathNotFoundError(f"the path {root} does not exist")
    if not os.path.isdir(root):
        raise UsageError(f"{root}: not a directory; verify takes a directory")
    dest = parse_s3_url(destination)
    prefix = dest.prefix if not dest.prefix or dest.prefix.endswith("/") else dest.prefix + "/"
    report = VerifyReport(destination)
    with Run("verify", config, dest.bucket, store=store, embedded=embedded) as run:
        store, config = run.store, run.config
        remote = {o.key: o for o in store.list_objects(dest.bucket, prefix)}
        local: list[tuple[str, str, int]] = []
        for item in walk_items([root], S3Url(dest.bucket, prefix), follow_symlinks=config.follow_symlinks,
                               threaded=False, names=KeyNames(config.normalize_keys)):
            if item.error is not None:
                report.unverified.append((item.source, item.key, str(item.error)))
            else:
                local.append((item.path or item.source, item.key, item.size_bytes))
        seen = {key for _, key, _ in local} | {key for _, key, _ in report.unverified}
        report.extra = sorted(k for k in remote if k not in seen)
        check = _Checker(store, dest.bucket, config, download)
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="s3pump-verify") as pool:
            outcomes = list(pool.map(lambda f: check(f[0], f[1], f[2], remote.get(f[1])), local))
        for (source, key, _), (kind, reason) in zip(local, outcomes, strict=True):
            if kind == "match":
                report.matched += 1
            else:
                getattr(report, kind).append((source, key, reason))
        for rows in (report.missing, report.different, report.unverified):
            rows.sort(key=lambda r: r[1])
    return report


class _Checker:
    """Judges one file against its object: ``(kind, reason)``, kind one of match, missing,
    different, unverified."""

    def __init__(self, store: Store, bucket: str, config: TransferConfig, download: bool) -> None:
        self.store, self.bucket, self.config, self.download = store, bucket, config, download
        #: keys whose HeadObject ``partNumber=1`` answer was not a part's (the parameter was ignored)
        self.ignored_part_number: dict[str, bool] = {}

    def __call__(self, path: str, key: str, size: int, info: ObjectInfo | None) -> tuple[str, str]:
        if info is None:
            return "missing", "no such object"
        if info.size_bytes != size:
            return "different", f"size differs: file {size} bytes, object {info.size_bytes} bytes"
        try:
            if self.download:
                return self._download(path, key)
            record = RemoteRecord(key.encode(), info.size_bytes, info.etag, info.last_modified)
            parsed = parse_etag(info.etag)
            head = HeadMemo(lambda: head_with_checksums(self.store, self.bucket, key))
            multipart = parsed is None or parsed[1] is not None
            if multipart and (crc := self._full_object_checksum(path, head)) is not None:
                return crc  # one CRC pass, and no part size or md5 metadata needed
            exact = self._part_size(key, info.size_bytes, parsed[1]) if parsed is not None and parsed[1] else None
            part_sizes = [exact] if exact else checksum_part_sizes(record, self.config.part_size_bytes)
            digest = file_digest(path, part_sizes, whole=True)
            verdict = checksum_verdict(digest, record, part_sizes, head)
            if verdict.same:
                return "match", verdict.reason
            if not verdict.fallback:
                return "different", verdict.reason
            if exact and verdict.reason.startswith("multipart ETag"):  # the part size is known, not guessed
                return "different", f"content differs (multipart ETag recomputed with the object's {exact}-byte parts)"
            if not multipart and (crc := self._full_object_checksum(path, head)) is not None:
                return crc
            if self.ignored_part_number.get(key):
                return "unverified", (f"{verdict.reason}; the server ignored partNumber=1 on HeadObject (no "
                                      "x-amz-mp-parts-count in its answer), so the object's part size is unknown; "
                                      "rerun with --download to compare the bytes")
            return "unverified", f"{verdict.reason}; rerun with --download to compare the bytes"
        except SourceError as e:
            return "unverified", str(e)
        except StoreError as e:
            return "unverified", f"cannot read the object: {e}"

    def _download(self, path: str, key: str) -> tuple[str, str]:
        body = self.store.get_object_stream(self.bucket, key)
        offset = 0
        try:
            with open(path, "rb") as f:
                while True:
                    want = f.read(_READ_BYTES)
                    got = body.read(len(want)) if want else body.read(1)
                    if want != got:
                        for i, (a, b) in enumerate(zip(want, got, strict=False)):
                            if a != b:
                                return "different", f"bytes differ at offset {offset + i}"
                        return "different", f"lengths differ after {offset + min(len(want), len(got))} bytes"
                    if not want:
                        return "match", "downloaded bytes are equal"
                    offset += len(want)
        except OSError as e:
            return "unverified", f"{path}: {e.strerror}"
        finally:
            body.close()

    def _part_size(self, key: str, size_bytes: int, parts: int) -> int | None:
        """The size of part 1 of a multipart object of ``size_bytes`` in ``parts`` parts (HeadObject
        ``partNumber=1``; S3 API reference, HeadObject): the part size its uploader used. None when
        the store does not answer it, or answers as if ``partNumber`` were not there: a part-1 answer
        carries ``x-amz-mp-parts-count`` (:attr:`ObjectInfo.parts_count`), and a server that ignores
        the parameter (some small S3 servers, some gateways) sends the whole object's headers, whose
        length taken as the part size would call an intact object different. The answer is used only
        when its parts count is the ETag's and the length fits it."""
        try:
            head = self.store.head_object(self.bucket, key, part_number=1)
        except StoreError:
            return None
        if head is None:
            return None
        size, count = head.size_bytes, head.parts_count
        if count is None:
            self.ignored_part_number[key] = True
            return None
        fits = size > 0 and size * (parts - 1) < size_bytes <= size * parts
        return size if count == parts and fits else None

    def _full_object_checksum(self, path: str, head: HeadMemo) -> tuple[str, str] | None:
        """Compare the object's stored full-object CRC with the file's; None when it has none (or
        HeadObject failed: the other rules, or ``unverified``, then say why)."""
        crc = head.crc()
        if crc is None:
            return None
        name, stored = crc
        if file_digest(path, (), whole=False, crcs=[name]).crcs[name] == stored:
            return "match", f"full-object {name} equals the file's"
        return "different", f"content differs (full-object {name})"
