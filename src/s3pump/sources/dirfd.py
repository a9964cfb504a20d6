"""Opening a tree's directories and files by descriptor, so a tree that changes under the walk
cannot lead it outside the tree.

The walk decides what an entry is from its parent's listing, and enters or reads it later. Between
the two, anyone who can rename inside the tree can put a symbolic link (or another directory) in
its place. So a directory is opened relative to its parent's open descriptor, with ``O_NOFOLLOW``
(unless symlinks are followed), and its ``(device, inode)`` must be the one the parent listed; a
file is opened the same way (:func:`open_beneath`) or, by the engine, by path with ``O_NOFOLLOW``
and checked against the identity the walk recorded (:func:`s3pump.fileid.open_version`).
"""

from __future__ import annotations

import errno
import os

__all__ = ["DIR_FLAGS", "TreeChangedOSError", "open_beneath", "open_dir"]

#: How a directory of the tree is opened (``O_NOFOLLOW`` added unless symlinks are followed).
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO put in a file's place must not block the open


class TreeChangedOSError(OSError):
    """An entry is no longer what its parent's listing said (its ``strerror`` says what it is now)."""


def _replaced(path: str, what: str) -> TreeChangedOSError:
    return TreeChangedOSError(errno.ESTALE, f"replaced by {what} while the walk was under way", path)


def open_dir(name: str, dir_fd: int | None, follow: bool, ident: tuple[int, int], *, shown: str = "",
             check: bool = True) -> int:
    """Open the directory ``name`` (relative to ``dir_fd``, or a path when None) without following
    a symlink there (unless ``follow``), and check that it is the directory ``ident`` (``(device,
    inode)``) names (unless not ``check``). Returns its descriptor.

    Raises:
        TreeChangedOSError: it is now a symlink, or another directory, or not a directory.
        OSError: it cannot be opened.
    """
    flags = DIR_FLAGS | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR) and not follow:
            raise _replaced(shown or name, "a symbolic link (not followed) or a file") from None
        raise
    try:
        st = os.fstat(fd)
        if check and (st.st_dev, st.st_ino) != ident:
            raise _replaced(shown or name, "another directory")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_beneath(root: str, relpath: str, follow: bool) -> int:
    """Open the file ``relpath`` (``/``-separated) under the directory ``root`` for reading, one
    component at a time, each relative to its parent's descriptor and (unless ``follow``) without
    following a symlink: a file or directory of the tree replaced by a link to outside it is not
    opened. ``root`` itself is opened as given. Returns the file's descriptor.

    Raises:
        TreeChangedOSError: a component is now a symlink (not followed).
        OSError: a component cannot be opened.
    """
    nofollow = 0 if follow else os.O_NOFOLLOW
    parts = [p for p in relpath.split("/") if p]
    fd = os.open(root, DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = os.open(part, (_FILE_FLAGS if last else DIR_FLAGS) | nofollow, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR) and not follow:
                    shown = os.path.join(root, *parts[: i + 1])
                    raise _replaced(shown, "a symbolic link (not followed)") from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd
