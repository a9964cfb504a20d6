"""A local cache of file MD5s (and multipart ETags, and full-object CRCs), so a repeated
``sync --checksum`` reads no unchanged file again.

One SQLite table keyed by absolute path. An entry is used only while the file's size,
mtime_ns, inode and ctime_ns are all unchanged. ctime is part of the key because a
user can reset mtime (``touch -d``, ``os.utime``) after changing a file, but nobody can
set ctime: any write or utime moves it. So a stale digest is never trusted.

Columns: ``md5`` (hex, "" when not computed), ``multipart`` (``size:etag,...``) and ``crcs``
(``ALGORITHM:base64,...``: the file's CRC32C/CRC32/CRC64NVME, compared with an object's
full-object checksum). ``crcs`` was added in issue 28: a cache without it gets the column
(``ALTER TABLE``, empty for the old entries) when opened; an older s3pump then finds 8 columns
where it writes 7, and runs without the cache (``error`` says so), hashing every file.

Threading: :meth:`HashCache.get` may be called from many threads at once (each gets
its own read connection; WAL mode lets them read while the writer writes; on a network
filesystem the rollback journal is used instead, and a reader may wait out a write);
:meth:`put` and :meth:`flush` from one thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path

from .etags import FileDigest
from .statefs import sqlite_journal_mode

__all__ = ["HashCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    path TEXT PRIMARY KEY,
    size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    multipart TEXT NOT NULL,
    crcs TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID
"""
#: Caches written before issue 28 have no ``crcs`` column.
_ADD_CRCS = "ALTER TABLE digests ADD COLUMN crcs TEXT NOT NULL DEFAULT ''"
_FLUSH_EVERY = 2000
_MAX_QUERY_PARAMS = 500


def _encode_multipart(multipart: dict[int, str]) -> str:
    return ",".join(f"{size}:{etag}" for size, etag in sorted(multipart.items()))


def _encode_crcs(crcs: dict[str, str]) -> str:
    return ",".join(f"{name}:{value}" for name, value in sorted(crcs.items()))


def _decode_crcs(text: str) -> dict[str, str]:
    return {name: value for name, sep, value in (item.partition(":") for item in text.split(",")) if sep}


def _digest(row: tuple[int, int, int, int, str, str, str]) -> FileDigest:
    return FileDigest(row[0], row[1], row[2], row[3], row[4], _decode_multipart(row[5]), crcs=_decode_crcs(row[6]))


def _decode_multipart(text: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for item in text.split(","):
        size, sep, etag = item.partition(":")
        if sep:
            out[int(size)] = etag
    return out


class HashCache:
    """Digest cache at ``path`` (created if missing; an older one gains the ``crcs`` column). Close it
    to write the last entries.

    Raises:
        sqlite3.Error: never for a corrupt or locked cache: the cache is then off for
        this run (every file is hashed), and ``error`` says why.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.error: str | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._pending: list[tuple[str, int, int, int, int, str, str, str]] = []
        self._writer: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = self._connect()
            # WAL on a local disk; the rollback journal on NFS/Lustre/GPFS, where WAL fails (statefs.py)
            self._writer.execute(f"PRAGMA journal_mode={sqlite_journal_mode(self.path)}")
            self._writer.execute(_SCHEMA)
            columns = {row[1] for row in self._writer.execute("PRAGMA table_info(digests)")}
            if "crcs" not in columns:
                self._writer.execute(_ADD_CRCS)
            self._writer.commit()
        except (sqlite3.Error, OSError) as e:
            self._disable(e)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level="DEFERRED")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _disable(self, e: BaseException) -> None:
        self.error = f"hash cache {self.path} not used: {e}"
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.close()
        self._writer = None

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def get(self, path: str, st: os.stat_result) -> FileDigest | None:
        """The cached digest of ``path`` if its size, mtime, ctime and inode all match ``st``."""
        if self._writer is None:
            return None
        try:
            row = self._reader().execute(
                "SELECT size_bytes, mtime_ns, ctime_ns, inode, md5, multipart, crcs FROM digests WHERE path = ?",
                (path,),
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or tuple(row[:4]) != (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino):
            return None
        return _digest(row)

    def get_many(self, stats: dict[str, tuple[int, int, int, int]]) -> dict[str, FileDigest]:
        """:meth:`get` for many paths in one query: path -> digest, for the hits only. ``stats``: each path's
        ``(size, mtime_ns, ctime_ns, inode)`` (its ``stat``), which a digest must have been recorded with."""
        if self._writer is None or not stats:
            return {}
        paths = list(stats)
        out: dict[str, FileDigest] = {}
        try:
            conn = self._reader()
            for i in range(0, len(paths), _MAX_QUERY_PARAMS):
                chunk = paths[i:i + _MAX_QUERY_PARAMS]
                rows = conn.execute(
                    "SELECT path, size_bytes, mtime_ns, ctime_ns, inode, md5, multipart, crcs FROM digests "
                    f"WHERE path IN ({','.join('?' * len(chunk))})", chunk,
                ).fetchall()
                for row in rows:
                    if tuple(row[1:5]) == stats[row[0]]:
                        out[row[0]] = _digest(row[1:])
        except sqlite3.Error:
            return out
        return out

    def put(self, path: str, digest: FileDigest) -> None:
        """Remember ``digest`` for ``path`` (written in batches)."""
        if self._writer is None:
            return
        self._pending.append((path, digest.size_bytes, digest.mtime_ns, digest.ctime_ns, digest.inode,
                              digest.md5, _encode_multipart(digest.multipart), _encode_crcs(digest.crcs)))
        if len(self._pending) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._writer is None or not self._pending:
            return
        rows, self._pending = self._pending, []
        try:
            self._writer.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._writer.commit()
        except sqlite3.Error as e:
            self._disable(e)

    def close(self) -> None:
        self.flush()
        with self._readers_lock:
            for conn in self._readers:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._readers.clear()
        if self._writer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._writer.close()
            self._writer = None
