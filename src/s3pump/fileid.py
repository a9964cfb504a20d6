"""A file's identity: what tells one version of a file from another without reading it.

Size and mtime alone do not: ``cp -p``, ``rsync -t``, ``tar x`` and ``touch -r`` + ``mv``
give a new file the old one's size and mtime, and a build may write every file with
mtime 0. The identity adds the inode change time (``ctime``: the kernel sets it on every
write, rename-over or ``utime``, and nobody can set it back), the inode and the device
(a file replaced by another is a new inode). The hash cache keys its digests the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["FileIdentity"]


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
    def of_path(cls, path: str) -> FileIdentity:
        """The identity of ``path`` now (follows symlinks). Raises OSError if it cannot be stat'ed."""
        return cls.of(os.stat(path))

    def matches(self, st: os.stat_result) -> bool:
        """:meth:`same_version` of the identity in ``st``, without building it (once per uploaded file)."""
        return (st.st_size == self.size_bytes and st.st_mtime_ns == self.mtime_ns
                and st.st_ctime_ns == self.ctime_ns and st.st_ino == self.inode
                and (self.device is None or st.st_dev == self.device))

    def same_version(self, other: FileIdentity) -> bool:
        """True if ``other`` is the same version of the same file (devices compared when both are known)."""
        if (self.size_bytes, self.mtime_ns, self.ctime_ns, self.inode) != (
                other.size_bytes, other.mtime_ns, other.ctime_ns, other.inode):
            return False
        return self.device is None or other.device is None or self.device == other.device
