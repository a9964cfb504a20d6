"""Where state files live: a local disk, or a network filesystem where SQLite's WAL fails.

The resume journal and the hash cache are SQLite files in the state directory. WAL mode keeps
its index in shared memory (the ``-shm`` file, mmap'd), which needs every process on one host:
on NFS, Lustre, GPFS and the like (where HPC home directories, the default state dir, usually
live) WAL can corrupt the database or fail to open (SQLite docs, "Write-Ahead Logging", section
"Disadvantages"). There, :func:`sqlite_journal_mode` chooses the rollback journal (``DELETE``),
which uses only POSIX byte-range locks, as the SQLite docs recommend for network filesystems.

The filesystem is told by ``statfs(2)``'s ``f_type`` (Linux magic numbers, ``linux/magic.h``
and each filesystem's own header); elsewhere, or if ``statfs`` fails, a path counts as local.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

__all__ = ["NETWORK_FS_MAGIC", "filesystem_magic", "network_filesystem", "sqlite_journal_mode"]

#: statfs f_type -> name, for filesystems whose files other hosts share (no WAL there).
NETWORK_FS_MAGIC: dict[int, str] = {
    0x6969: "nfs",
    0x0BD00BD0: "lustre",
    0x47504653: "gpfs",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x517B: "smb",
    0x00C36400: "ceph",
    0x19830326: "beegfs",
    0x5346414F: "afs",
    0x01161970: "gfs2",
    0x7461636F: "ocfs2",
    0x013111A8: "ibrix",
    0xA501FCF5: "vxfs",
}

_STATFS_BUF = 256  # larger than struct statfs on every Linux ABI; f_type is its first field


def filesystem_magic(path: str | Path) -> int | None:
    """``statfs(path).f_type`` (the filesystem's magic number), or None if not on Linux or it failed."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
    except OSError:
        return None
    buf = ctypes.create_string_buffer(_STATFS_BUF)
    if libc.statfs(os.fsencode(str(path)), buf) != 0:
        return None
    word = ctypes.sizeof(ctypes.c_long)  # __fsword_t: a long on 64-bit ABIs, an int on 32-bit
    raw = int.from_bytes(buf.raw[:word], sys.byteorder, signed=True)
    return raw & 0xFFFFFFFF


def network_filesystem(path: str | Path) -> str | None:
    """The name of the network filesystem ``path`` (or its nearest existing parent) is on, else None."""
    p = Path(path)
    while not p.exists() and p.parent != p:
        p = p.parent
    magic = filesystem_magic(p)
    return None if magic is None else NETWORK_FS_MAGIC.get(magic)


def sqlite_journal_mode(db_path: str | Path) -> str:
    """``"WAL"`` for a database on a local filesystem, ``"DELETE"`` (the rollback journal) on a
    network one (see the module docstring)."""
    return "DELETE" if network_filesystem(Path(db_path).parent) else "WAL"
