"""A file's identity: what tells one version of a file from another without reading it.

Size and mtime alone do not: ``cp -p``, ``rsync -t``, ``tar x`` and ``touch -r`` + ``mv``
give a new file the old one's size and mtime, and a build may write every file with
mtime 0. The identity adds the inode change time (``ctime``: the kernel sets it on every
write, rename-over or ``utime``, and nobody can set it back), the inode and the device
(a file replaced by another is a new inode). The hash cache keys its digests the same way.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from .errors import SourceChangedError, source_os_error

__all__ = ["FileIdentity", "fd_path", "open_version"]

#: Linux names every open descriptor as a path that opens the very same file, whatever is at
#: the original path now: the engine hands awscrt this path instead of the file's.
_PROC_FD = "/proc/self/fd"


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """Size in bytes, mtime and ctime in ns, inode and device of one version of a file.

    ``device`` is None when the caller did not know it (it is then not compared).
    """

    size_bytes: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int | None = None

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        """The identity in a ``stat`` result."""
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    @classmethod
    def of_path(cls, path: str, *, follow: bool = True) -> FileIdentity:
        """The identity of ``path`` now (of a symlink's target if ``follow``, else of the link).
        Raises OSError if it cannot be stat'ed."""
        return cls.of(os.stat(path, follow_symlinks=follow))

    def matches(self, st: os.stat_result) -> bool:
        """:meth:`same_version` of the identity in ``st``, without building it (once per uploaded file)."""
        return (st.st_size == self.size_bytes and st.st_mtime_ns == self.mtime_ns
                and st.st_ctime_ns == self.ctime_ns and st.st_ino == self.inode
                and (self.device is None or st.st_dev == self.device))

    def same_file(self, st: os.stat_result) -> bool:
        """Whether ``st`` is of the same file (inode, and device when known), whatever its version."""
        return st.st_ino == self.inode and (self.device is None or st.st_dev == self.device)

    def same_version(self, other: FileIdentity) -> bool:
        """True if ``other`` is the same version of the same file (devices compared when both are known)."""
        if (self.size_bytes, self.mtime_ns, self.ctime_ns, self.inode) != (
                other.size_bytes, other.mtime_ns, other.ctime_ns, other.inode):
            return False
        return self.device is None or other.device is None or self.device == other.device


def open_version(path: str, identity: FileIdentity | None, *, follow: bool) -> int:
    """Open ``path`` for reading as the file ``identity`` names (the one the walk listed): without
    following a symlink there (unless ``follow``), and refused unless it is a regular file with that
    inode (and device, when known). So a file replaced, since the walk, by a link to a file outside
    the tree, or by another file, is never read. Returns the descriptor (``O_NONBLOCK`` set, which
    changes nothing for a regular file: a FIFO put in the file's place does not block the open).

    Raises:
        SourceChangedError: the path is now a symlink, another file, or not a regular file.
        SourceUnreadableError: it cannot be opened; OpenFilesError: the process is out of descriptors.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP and not follow:
            raise SourceChangedError(f"{path}: replaced by a symbolic link since the walk (not followed; "
                                     "--follow-symlinks follows them); not uploaded") from None
        raise source_os_error(path, e, "; check the file's permissions") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (identity is not None and not identity.same_file(st)):
            raise SourceChangedError(f"{path}: replaced by another file since the walk; not uploaded, "
                                     "rerun to upload it")
    except OSError as e:
        os.close(fd)
        raise source_os_error(path, e) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def fd_path(fd: int) -> str | None:
    """A path that opens the file open as ``fd`` (``/proc/self/fd/N``), or None without ``/proc``."""
    return f"{_PROC_FD}/{fd}" if _HAS_PROC_FD else None


_HAS_PROC_FD = os.path.isdir(_PROC_FD)
