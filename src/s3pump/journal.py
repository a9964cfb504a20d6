"""The resume journal: a SQLite file per (source, destination) in the state directory.

It is an event subscriber. As events arrive it records, each in its own committed
transaction (WAL, ``synchronous=NORMAL``: a commit survives the process being
killed, which is what resume needs; on a network filesystem, where WAL does not work, the
rollback journal with ``synchronous=FULL``, see :mod:`s3pump.statefs`):

* ``files``: every finished file (``done``) with its size and mtime, and failed ones;
* ``uploads``: each multipart upload the moment it is created (key, upload ID, part
  size, the file's size and mtime);
* ``parts``: each completed part (part number, size, ETag, checksum) as it completes.

A rerun of the same command opens the same journal (see :func:`journal_path`) and
asks it, per planned file, :meth:`Journal.is_done` (skip it) and
:meth:`Journal.resume_record` (continue its multipart upload, sending only missing
parts). A run that ends with no failure deletes its journal. Nothing secret is
stored: keys, paths, upload IDs, ETags and checksums only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import S3PumpError
from .events import (
    Event,
    EventBus,
    FileDone,
    FileFailed,
    FileSkipped,
    MultipartAborted,
    MultipartCreated,
    PartDone,
)
from .items import ResumeRecord, UploadItem
from .statefs import sqlite_journal_mode
from .store.base import CompletedPart, Store

__all__ = [
    "Journal", "OpenUpload", "ResumeRecord", "abort_orphans", "forget_uploads", "journal_path", "skip_and_resume",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    key TEXT PRIMARY KEY, source TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, status TEXT NOT NULL, etag TEXT
);
CREATE TABLE IF NOT EXISTS uploads (
    key TEXT PRIMARY KEY, upload_id TEXT NOT NULL, part_size_bytes INTEGER NOT NULL,
    size_bytes INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size_bytes INTEGER NOT NULL,
    etag TEXT NOT NULL, checksum TEXT, PRIMARY KEY (upload_id, part_number)
);
"""


def journal_path(state_dir: Path, job: str, sources: list[str], destination: str, endpoint: str | None) -> Path:
    """The journal file of one (sources, destination, endpoint) of a job: the same command
    gives the same path. Sources are made absolute so the working directory does not matter."""
    ident = json.dumps({"job": job, "sources": [os.path.abspath(s) for s in sources],
                        "destination": destination, "endpoint": endpoint or ""}, sort_keys=True)
    digest = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return state_dir / "journals" / f"{job}-{digest}.sqlite"


@dataclass(frozen=True, slots=True)
class OpenUpload:
    """A multipart upload the journal knows as still open."""

    key: str
    upload_id: str


class Journal:
    """One run's journal (see the module docstring). Use from one thread (the scheduler's).

    ``Journal(path)`` opens or creates the file; :meth:`delete` removes it (a fresh start opens a new one).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._db: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False
        )
        #: WAL on a local disk; the rollback journal on NFS/Lustre/GPFS, where WAL fails (statefs.py)
        self.journal_mode = sqlite_journal_mode(self.path)
        self._db.execute(f"PRAGMA journal_mode={self.journal_mode}")
        self._db.execute("PRAGMA synchronous=NORMAL" if self.journal_mode == "WAL" else "PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (repr(time.time()),))
        self._pending: dict[str, tuple[int, int]] = {}  # key -> (size, mtime) announced by the planner
        # keys with a journaled multipart upload; other keys' FileDone is one autocommit INSERT
        self._open_keys: set[str] = {k for (k,) in self._db.execute("SELECT key FROM uploads")}
        #: the journal held no file when opened (a first run): no per-file lookups are needed
        self.empty = self._db.execute("SELECT 1 FROM files LIMIT 1").fetchone() is None and not self._open_keys

    # ------------------------------------------------------------------ queries
    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("journal is closed")
        return self._db

    @property
    def created(self) -> float:
        row = self.db.execute("SELECT value FROM meta WHERE name='created'").fetchone()
        return float(row[0])

    def is_done(self, key: str, size_bytes: int, mtime_ns: int) -> bool:
        """True if an earlier run uploaded this file, unchanged since, to ``key``."""
        row = self.db.execute("SELECT size_bytes, mtime_ns, status FROM files WHERE key=?", (key,)).fetchone()
        return row is not None and row[2] == "done" and row[0] == size_bytes and row[1] == mtime_ns

    def resume_record(self, key: str, size_bytes: int, mtime_ns: int) -> ResumeRecord | OpenUpload | None:
        """The open multipart upload of ``key``: a :class:`ResumeRecord` if the file is
        unchanged since it was journaled; an :class:`OpenUpload` (to abort) if it changed;
        None if there is none."""
        row = self.db.execute(
            "SELECT upload_id, part_size_bytes, size_bytes, mtime_ns FROM uploads WHERE key=?", (key,)
        ).fetchone()
        if row is None:
            return None
        upload_id, part_size, size, mtime = row
        if size != size_bytes or mtime != mtime_ns:
            return OpenUpload(key, upload_id)
        parts = {
            n: CompletedPart(n, etag, sz, checksum)
            for n, sz, etag, checksum in self.db.execute(
                "SELECT part_number, size_bytes, etag, checksum FROM parts WHERE upload_id=?", (upload_id,)
            )
        }
        return ResumeRecord(upload_id, part_size, parts)

    def open_uploads(self) -> list[OpenUpload]:
        """Every multipart upload the journal still holds open (e.g. for ``--no-resume``)."""
        return [OpenUpload(k, u) for k, u in self.db.execute("SELECT key, upload_id FROM uploads")]

    def forget_upload(self, key: str) -> None:
        """Drop ``key``'s open upload and its parts (after it was aborted)."""
        with self._tx() as db:
            row = db.execute("SELECT upload_id FROM uploads WHERE key=?", (key,)).fetchone()
            if row is not None:
                db.execute("DELETE FROM parts WHERE upload_id=?", (row[0],))
                db.execute("DELETE FROM uploads WHERE key=?", (key,))
        self._open_keys.discard(key)

    def counts(self) -> dict[str, int]:
        """Rows per table: ``{"done": n, "failed": n, "uploads": n, "parts": n}``."""
        db = self.db
        return {
            "done": db.execute("SELECT count(*) FROM files WHERE status='done'").fetchone()[0],
            "failed": db.execute("SELECT count(*) FROM files WHERE status='failed'").fetchone()[0],
            "uploads": db.execute("SELECT count(*) FROM uploads").fetchone()[0],
            "parts": db.execute("SELECT count(*) FROM parts").fetchone()[0],
        }

    # ------------------------------------------------------------------ recording
    @property
    def multipart_planned(self) -> bool:
        """Some run of this journal planned a multipart upload (so orphans are possible)."""
        return self.db.execute("SELECT 1 FROM meta WHERE name='multipart'").fetchone() is not None

    def mark_multipart(self) -> None:
        """Record, before any CreateMultipartUpload, that this command uploads large files."""
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('multipart', '1')")

    def expect(self, key: str, size_bytes: int, mtime_ns: int) -> None:
        """The planner hands ``key``'s size and mtime over before the engine starts it (they
        are recorded with its multipart upload, so a rerun can tell whether the file changed)."""
        self._pending[key] = (size_bytes, mtime_ns)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def __call__(self, event: Event) -> None:
        if isinstance(event, PartDone):
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?)",
                           (event.upload_id, event.part_number, event.size_bytes, event.etag, event.checksum))
        elif isinstance(event, MultipartCreated):
            size, mtime = self._pending.get(event.key, (-1, -1))
            self._open_keys.add(event.key)
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?, ?)",
                           (event.key, event.upload_id, event.part_size_bytes, size, mtime, time.time()))
        elif isinstance(event, FileDone):
            size, mtime = self._pending.pop(event.key, (event.size_bytes, 0))
            row = (event.key, event.source, size, mtime, event.etag)
            if event.key not in self._open_keys:  # the common case: one statement, its own transaction
                self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, 'done', ?)", row)
                return
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, 'done', ?)", row)
                self._drop_upload(db, event.key)
            self._open_keys.discard(event.key)
        elif isinstance(event, FileFailed):
            size, mtime = self._pending.pop(event.key, (event.size_bytes, 0))
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, 'failed', NULL)",
                            (event.key, event.source, size, mtime))
        elif isinstance(event, MultipartAborted) and event.reason != "kept for resume":
            with self._tx() as db:
                row = db.execute("SELECT upload_id FROM uploads WHERE key=?", (event.key,)).fetchone()
                if row is not None and row[0] == event.upload_id:
                    self._drop_upload(db, event.key)
                    self._open_keys.discard(event.key)

    @staticmethod
    def _drop_upload(db: sqlite3.Connection, key: str) -> None:
        row = db.execute("SELECT upload_id FROM uploads WHERE key=?", (key,)).fetchone()
        if row is not None:
            db.execute("DELETE FROM parts WHERE upload_id=?", (row[0],))
            db.execute("DELETE FROM uploads WHERE key=?", (key,))

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None

    def delete(self) -> None:
        """Close and remove the journal file (the run finished everything)."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")


def skip_and_resume(
    items: Iterable[UploadItem], journal: Journal, bus: EventBus, abort: Callable[[str, str], object],
    *, multipart_threshold_bytes: int | None = None,
) -> Iterator[UploadItem]:
    """Filter planned items through the journal of an earlier run of the same command.

    * a file the journal has as done (same size and mtime) is skipped (FileSkipped,
      reason ``done in an earlier run``);
    * a file with an open multipart upload gets it as ``item.resume`` (only missing parts
      are sent); if the file changed since, the stale upload is aborted (``abort(key,
      upload_id)``) and the file starts over;
    * every other file passes unchanged. Each passing file's size and mtime are handed
      to the journal (:meth:`Journal.expect`) for the uploads it creates.

    A journal that was empty when opened (a first run) is not asked per file. The first file
    over ``multipart_threshold_bytes`` marks the journal (:meth:`Journal.mark_multipart`).
    """
    lookup = not journal.empty
    marked = multipart_threshold_bytes is None
    for item in items:
        if item.error is not None or item.path is None:
            yield item
            continue
        if not marked and item.size_bytes > multipart_threshold_bytes:  # type: ignore[operator]
            journal.mark_multipart()
            marked = True
        if not lookup:
            journal.expect(item.key, item.size_bytes, item.mtime_ns)
            yield item
            continue
        if journal.is_done(item.key, item.size_bytes, item.mtime_ns):
            bus.emit(FileSkipped(item.source, item.key, item.size_bytes, "done in an earlier run"))
            continue
        record = journal.resume_record(item.key, item.size_bytes, item.mtime_ns)
        if isinstance(record, OpenUpload):
            with contextlib.suppress(S3PumpError):
                abort(record.key, record.upload_id)
            journal.forget_upload(record.key)
        elif record is not None:
            item.resume = record
        journal.expect(item.key, item.size_bytes, item.mtime_ns)
        yield item


def abort_orphans(journal: Journal, store: Store, bucket: str, prefix: str,
                  abort: Callable[[str, str], S3PumpError | None]) -> int:
    """Abort multipart uploads under ``prefix`` that belong to files this journal has as done.

    A client killed between CreateMultipartUpload reaching the server and the journal
    recording the upload ID leaves an upload nobody knows. Once the run has finished
    every file, any upload of one of its keys initiated since the journal was created
    (60 s of clock slack) is such an orphan; ``abort(key, upload_id)`` (the run's
    :class:`~s3pump.engine.uploads.OpenUploads`) aborts it. Returns how many were aborted.
    """
    since = journal.created - 60.0
    aborted = 0
    for u in store.list_multipart_uploads(bucket, prefix):
        if u.initiated < since:
            continue
        row = journal.db.execute("SELECT status FROM files WHERE key=?", (u.key,)).fetchone()
        if row is not None and row[0] == "done" and abort(u.key, u.upload_id) is None:
            aborted += 1
    return aborted


def forget_uploads(directory: Path, upload_ids: Iterable[str]) -> None:
    """Drop these (aborted) uploads from every resume journal in ``directory``: their files start over."""
    ids = list(upload_ids)
    if not directory.is_dir():
        return
    for path in directory.glob("*.sqlite"):
        with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(str(path))) as db:
            for upload_id in ids:
                db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
                db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
            db.commit()
