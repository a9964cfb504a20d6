"""A resume journal's SQLite file: its schema and version (a journal of the first format migrated), the
connection (WAL or, on a network filesystem, the rollback journal: :mod:`s3pump.statefs`), the exclusive lock
beside it (``<journal>.lock``), the marker of uploads left to abort (``<journal>.aborts``) and the target it
records (endpoint and bucket). The journal itself, what it records and when, is :mod:`s3pump.journal`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from pathlib import Path

from .errors import JournalBusyError
from .fileid import FileIdentity

__all__ = ["PENDING_SUFFIX", "SCHEMA", "VERSION", "Lock", "connect", "target_of", "try_lock"]

VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    key TEXT PRIMARY KEY, source TEXT NOT NULL, size_bytes INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, device INTEGER, status TEXT NOT NULL, etag TEXT
);
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, key TEXT NOT NULL, part_size_bytes INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
    device INTEGER, checksum_algorithm TEXT NOT NULL, created REAL NOT NULL, state TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_key ON uploads (key);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size_bytes INTEGER NOT NULL,
    etag TEXT NOT NULL, checksum TEXT, PRIMARY KEY (upload_id, part_number)
);
CREATE TABLE IF NOT EXISTS creating (key TEXT PRIMARY KEY, started REAL NOT NULL);
"""
#: an upload recorded by a journal of the first format: its file identity is unknown (never resumed)
UNKNOWN = FileIdentity(-1, -1, -1, -1, None)
#: beside a journal that holds uploads to abort (see Journal._flag_pending)
PENDING_SUFFIX = ".aborts"


class Lock:
    """An exclusive ``flock`` on ``path`` (created if missing), held until :meth:`release`.
    Waits up to ``wait_s`` (another run may hold it for a moment, to retry its failed aborts).

    Raises:
        JournalBusyError: another process holds it.
    """

    def __init__(self, path: Path, what: Path, *, wait_s: float = 2.0) -> None:
        self.path = path
        deadline = time.monotonic() + wait_s
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                os.close(fd)
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise JournalBusyError(
                    f"{what}: another s3pump run of the same command is running"
                    f"{f' (pid {holder})' if holder else ''}; wait for it to finish, or stop it"
                ) from None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not a lock file its last holder unlinked after we opened it
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd: int | None = fd

    def release(self, *, unlink: bool = False) -> None:
        if self._fd is None:
            return
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = None


def try_lock(path: Path) -> Lock | None:
    """The lock of the journal at ``path`` if no other process holds it (no wait), else None."""
    try:
        return Lock(Path(f"{path}.lock"), path, wait_s=0.0)
    except JournalBusyError:
        return None


def connect(path: Path, journal_mode: str) -> sqlite3.Connection:
    """The journal at ``path``, created or migrated to :data:`VERSION`, in ``journal_mode`` (WAL or DELETE)."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    db.execute(f"PRAGMA journal_mode={journal_mode}")
    db.execute("PRAGMA synchronous=NORMAL" if journal_mode == "WAL" else "PRAGMA synchronous=FULL")
    _migrate(db)
    db.executescript(SCHEMA)
    db.execute(f"PRAGMA user_version={VERSION}")
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """A journal of the first format (size and mtime only): its finished files are forgotten
    (uploaded again), its open uploads kept with an unknown identity (aborted, never resumed)."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= VERSION:
        return
    columns = {r[1] for r in db.execute("PRAGMA table_info(uploads)")}
    if not columns or "state" in columns:
        return
    old = db.execute("SELECT key, upload_id, part_size_bytes, created FROM uploads").fetchall()
    db.executescript("DROP TABLE uploads; DROP TABLE files;")
    db.executescript(SCHEMA)
    u = UNKNOWN
    for key, upload_id, part_size, created in old:
        db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, 'open')",
                   (upload_id, key, part_size, u.size_bytes, u.mtime_ns, u.ctime_ns, u.inode, u.device, created))


def target_of(endpoint: str | None, bucket: str) -> str:
    """What a journal records as its target (``meta``): the endpoint (empty for AWS) and bucket, as JSON."""
    return json.dumps([endpoint or "", bucket])
