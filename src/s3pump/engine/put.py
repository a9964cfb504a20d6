"""A single PUT's lifecycle: the send (a file by descriptor, or bytes), the after-upload check
that the file is still the version planned (and the planner's own check, ``UploadItem.check_put``),
and the delete of an object a changed file tore.

The scheduler owns the request (slots, retries, timeouts); :class:`SinglePuts` is told what to
send and what came back. All on the scheduler thread; the delete runs on the control pool.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

from ..config import TransferConfig
from ..errors import S3PumpError, SourceChangedError
from ..events import EventBus, FileDone, FileFailed
from ..fileid import fd_path, open_version
from ..items import UploadItem
from ..store.base import ObjectAttributes, PutResult, Store
from ..store.body import FileRange, Throttled
from .control import ControlPool
from .inflight import Req
from .limits import TokenBucket

__all__ = ["SinglePuts", "sent_attrs"]


class SinglePuts:
    """The single PUTs of one engine writing to ``bucket``; events go to ``bus``."""

    def __init__(self, store: Store, bucket: str, config: TransferConfig, bus: EventBus,
                 control: ControlPool) -> None:
        self.store = store
        self.bucket = bucket
        self.config = config
        self.bus = bus
        self.control = control

    def send(self, req: Req, bw: TokenBucket | None, done: Callable[[PutResult | S3PumpError], None]) -> None:
        """Start ``req``'s PUT (paced by ``bw`` when given); ``done`` gets its result.

        A file is the one the walk listed, opened once (no symlink followed unless
        --follow-symlinks; the walk's inode, kept in ``req.fd``): awscrt reads that open file
        (/proc/self/fd/N), never whatever is at the path by then; under --bwlimit, or without
        /proc, through a (paced) stream of it.

        Raises:
            S3PumpError: refused before it started (credentials, an unreadable or changed file).
        """
        item = req.item
        if item.path is not None:
            req.fd = open_version(item.path, item.identity, follow=self.config.follow_symlinks)
            by_fd = fd_path(req.fd)
            attrs = sent_attrs(item, self.config, req.fd)
            if bw is None and by_fd is not None:
                req.handle = self.store.put_file(self.bucket, item.key, by_fd, item.size_bytes, attrs, done)
            else:
                whole = FileRange(req.fd, 0, item.size_bytes, item.path)
                body = whole if bw is None else Throttled(whole, bw, sent=req.sent)
                req.handle = self.store.put_bytes(self.bucket, item.key, body, attrs, done)
            return
        data = item.body if item.body is not None else b""
        req.handle = self.store.put_bytes(self.bucket, item.key,
                                          data if bw is None else Throttled(data, bw, sent=req.sent), item.attrs, done)

    @staticmethod
    def close_file(req: Req) -> None:
        """Close the file a PUT sent (once it settled)."""
        if req.fd is not None:
            os.close(req.fd)
            req.fd = None

    def succeeded(self, req: Req, result: PutResult) -> None:
        """The PUT succeeded: FileDone, unless the file changed under it; the object then holds a
        version the file no longer has (maybe cut short) and is removed, so the run ends with the key
        absent and the file failed, never a torn object."""
        item = req.item
        if item.path is not None:
            changed = self.changed(item, result)
            if changed is not None:
                self.control.call(_ignore, self._delete_quietly, item.key)
                self.bus.emit(FileFailed(item.source, item.key, item.size_bytes, changed))
                return
        self.bus.emit(FileDone(item.source, item.key, item.size_bytes, result.etag,
                               time.monotonic() - req.first_started, req.attempt, 0, result.version_id,
                               result.checksum))

    def late_success(self, req: Req, result: PutResult) -> None:
        """The PUT succeeded while the run was stopping: FileDone (so a journal knows the object
        exists), unless the file changed under it (left to the rerun)."""
        self.close_file(req)
        item = req.item
        if item.path is not None and self.changed(item, result) is not None:
            return
        self.bus.emit(FileDone(item.source, item.key, item.size_bytes, result.etag,
                               time.monotonic() - req.first_started, req.attempt, 0, result.version_id,
                               result.checksum))

    def changed(self, item: UploadItem, result: PutResult) -> SourceChangedError | None:
        """Whether the file is no longer the version that was planned (every file is checked: an
        mtime of 0 is a valid mtime), or the planner's ``check_put`` says the PUT sent other bytes
        than it planned (sync: the ETag is not the MD5 it hashed)."""
        try:
            now = os.stat(item.path, follow_symlinks=self.config.follow_symlinks)  # type: ignore[arg-type]
        except OSError:
            return SourceChangedError(f"{item.source}: removed while uploading; rerun to sync")
        if item.identity is not None:
            same = item.identity.matches(now) and now.st_size == item.size_bytes
        else:
            same = now.st_size == item.size_bytes and now.st_mtime_ns == item.mtime_ns
        if same and item.check_put is not None:
            same = item.check_put(item, result)
        if not same:
            return SourceChangedError(f"{item.source}: changed while uploading; rerun to upload the new version")
        return None

    def _delete_quietly(self, key: str) -> None:
        with contextlib.suppress(S3PumpError):
            self.store.delete_objects(self.bucket, [key])


def sent_attrs(item: UploadItem, config: TransferConfig, fd: int | None = None) -> ObjectAttributes:
    """The attributes an item's object is written with: a file's also carry its modification time
    (``x-amz-meta-mtime``, rclone's name and format; :meth:`ObjectAttributes.with_file_mtime`) and,
    with ``--preserve-attrs``, its mode, uid and gid (:meth:`ObjectAttributes.with_file_owner`), read
    from the open file ``fd`` when given, else from its path (a file that cannot be read fails its
    upload later, with its own error)."""
    if item.path is None:
        return item.attrs
    attrs = item.attrs.with_file_mtime(item.mtime_ns) if item.mtime_ns > 0 else item.attrs
    if config.preserve_attrs:
        try:
            st = os.fstat(fd) if fd is not None else os.stat(item.path, follow_symlinks=config.follow_symlinks)
        except OSError:
            return attrs
        attrs = attrs.with_file_owner(st.st_mode, st.st_uid, st.st_gid)
    return attrs


def _ignore(_: object) -> None:
    return None
