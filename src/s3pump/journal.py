"""The resume journal: a SQLite file per (source, destination) in the state directory.

It is an event subscriber. As events arrive it records them in committed transactions
(WAL, ``synchronous=NORMAL``: a commit survives the process being killed, which is what
resume needs; on a network filesystem, where WAL does not work, the rollback journal with
``synchronous=FULL``, see :mod:`s3pump.statefs`). Finished files are committed in batches
(up to :data:`DONE_BATCH` records, or :data:`DONE_BATCH_S` seconds, or a ``--cluster`` shard's
files when its result is in: :class:`~s3pump.events.ShardSettled`): a kill loses at most the
last batch, and those files are only uploaded again (a PUT is idempotent); a file journaled
done is always done. Everything else (an intent, an upload, a part, a failure) commits the
pending batch and then itself, before the next event is handled:

* ``files``: every finished file (``done``) with its identity (size, mtime, ctime, inode,
  device: :class:`~s3pump.fileid.FileIdentity`), and failed ones;
* ``creating``: a key whose CreateMultipartUpload is about to be sent, recorded *before* it
  is sent (:class:`~s3pump.events.MultipartCreating`), so an upload created by a run killed
  before it learnt the upload ID is still found (:func:`abort_orphans`);
* ``uploads``: each multipart upload the moment it is created (key, upload ID, part size,
  the file's identity, the checksum algorithm), until its completion or abort *succeeded*.
  An upload whose abort failed (the server was down) stays, in state ``abort``, and every
  later run of any command on the same endpoint and bucket retries the abort
  (:func:`abort_pending`), as does ``s3pump cleanup``;
* ``parts``: each completed part (part number, size, ETag, checksum) as it completes.

``sync`` and ``stream`` keep a journal that is not resumable (``resumable=False``, one per run,
:mod:`s3pump.intents`): only intents and uploads, each upload recorded as one to abort, so what a
killed run of theirs left open is aborted by the next run's sweep or ``s3pump cleanup``.

A rerun of the same command opens the same journal (see :func:`journal_path`) and
asks it, per planned file, :meth:`Journal.is_done` (skip it) and
:meth:`Journal.resume_record` (continue its multipart upload, sending only missing
parts). A run that ends with no failure and nothing left open deletes its journal.
Nothing secret is stored: keys, paths, upload IDs, ETags and checksums only.

One live run per journal: :class:`Journal` holds an exclusive ``fcntl`` lock on a file
beside it (``<journal>.lock``) while open; a second run of the same command refuses
with :class:`~s3pump.errors.JournalBusyError` (exit 2). So the uploads a journal owns are
never those of a live run, and a run aborts only those.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import JournalBusyError, NoSuchUploadError, S3PumpError
from .events import (
    Event,
    EventBus,
    FileDone,
    FileFailed,
    FileSkipped,
    MultipartAborted,
    MultipartAbortFailed,
    MultipartCreated,
    MultipartCreating,
    PartDone,
    ShardSettled,
    Tick,
)
from .fileid import FileIdentity
from .items import ResumeRecord, UploadItem
from .retry import RetryPolicy
from .statefs import sqlite_journal_mode
from .store.base import CompletedPart, Store

__all__ = [
    "Journal",
    "OpenUpload",
    "ResumeRecord",
    "abort_orphans",
    "abort_pending",
    "abort_pending_in_journals",
    "abort_recorded",
    "abort_upload",
    "forget_uploads",
    "journal_path",
    "skip_and_resume",
]

_VERSION = 2
_SCHEMA = """
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
_UNKNOWN = FileIdentity(-1, -1, -1, -1, None)
#: beside a journal that holds uploads to abort (see Journal._flag_pending)
_PENDING_SUFFIX = ".aborts"
#: clock slack between this host and the server when matching ListMultipartUploads' Initiated times
_CLOCK_SLACK_S = 60.0
#: finished-file records committed together (a kill loses at most these: uploaded again on resume)
DONE_BATCH = 256
#: ... or those of this many seconds, whichever comes first
DONE_BATCH_S = 1.0
#: the events that write to the journal (others pass by)
_WRITES = (PartDone, MultipartCreating, MultipartCreated, FileDone, FileFailed, MultipartAborted, MultipartAbortFailed)


def journal_path(state_dir: Path, job: str, sources: list[str], destination: str, endpoint: str | None) -> Path:
    """The journal file of one (sources, destination, endpoint) of a job: the same command
    gives the same path. Sources are made absolute so the working directory does not matter,
    and ``s3://b/p`` and ``s3://b/p/`` are one destination (they name the same keys for a tree)."""
    ident = json.dumps({"job": job, "sources": [os.path.abspath(s) for s in sources],
                        "destination": destination.rstrip("/"), "endpoint": endpoint or ""}, sort_keys=True)
    digest = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return state_dir / "journals" / f"{job}-{digest}.sqlite"


@dataclass(frozen=True, slots=True)
class OpenUpload:
    """A multipart upload the journal knows as still open."""

    key: str
    upload_id: str


class _Lock:
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


def _try_lock(path: Path) -> _Lock | None:
    try:
        return _Lock(Path(f"{path}.lock"), path, wait_s=0.0)
    except JournalBusyError:
        return None


def _connect(path: Path, journal_mode: str) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    db.execute(f"PRAGMA journal_mode={journal_mode}")
    db.execute("PRAGMA synchronous=NORMAL" if journal_mode == "WAL" else "PRAGMA synchronous=FULL")
    _migrate(db)
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version={_VERSION}")
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """A journal of the first format (size and mtime only): its finished files are forgotten
    (uploaded again), its open uploads kept with an unknown identity (aborted, never resumed)."""
    if db.execute("PRAGMA user_version").fetchone()[0] >= _VERSION:
        return
    columns = {r[1] for r in db.execute("PRAGMA table_info(uploads)")}
    if not columns or "state" in columns:
        return
    old = db.execute("SELECT key, upload_id, part_size_bytes, created FROM uploads").fetchall()
    db.executescript("DROP TABLE uploads; DROP TABLE files;")
    db.executescript(_SCHEMA)
    u = _UNKNOWN
    for key, upload_id, part_size, created in old:
        db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, 'open')",
                   (upload_id, key, part_size, u.size_bytes, u.mtime_ns, u.ctime_ns, u.inode, u.device, created))


class Journal:
    """One run's journal (see the module docstring). Use from one thread (the scheduler's).

    ``Journal(path)`` locks, then opens or creates the file. ``checksum_algorithm`` is the
    run's ``--checksum-algorithm``, recorded with each multipart upload: a rerun with another
    one aborts the old upload and starts over (its parts carry the old checksums, which an
    AWS-faithful server refuses to complete with the new ones). ``bucket`` and ``endpoint``
    are recorded so another command's run can retry this journal's failed aborts.

    Raises:
        JournalBusyError: another live run holds the journal (exit 2).
    """

    def __init__(self, path: str | Path, *, checksum_algorithm: str = "", bucket: str = "",
                 endpoint: str | None = None, resumable: bool = True) -> None:
        self.path = Path(path)
        #: False for a run whose uploads nobody resumes (sync, stream: :mod:`s3pump.intents`): only its
        #: intents and uploads are recorded, every upload as one to abort once the run is gone
        self.resumable = resumable
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock: _Lock | None = _Lock(Path(f"{self.path}.lock"), self.path)
        self.checksum_algorithm = checksum_algorithm
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            #: WAL on a local disk; the rollback journal on NFS/Lustre/GPFS, where WAL fails (statefs.py)
            self.journal_mode = sqlite_journal_mode(self.path)
            self._db: sqlite3.Connection | None = _connect(self.path, self.journal_mode)
        except BaseException:
            self._lock.release()
            raise
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (repr(time.time()),))
        if bucket:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('target', ?)", (_target(endpoint, bucket),))
        if not resumable:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('resumable', '0')")
        self._pending: dict[str, FileIdentity] = {}  # key -> identity announced by the planner
        self._intents: dict[str, int] = {}  # key -> CreateMultipartUpload attempts announced in this run
        self._inherited: set[str] = {k for (k,) in self._db.execute("SELECT key FROM creating")}
        # keys with a journaled multipart upload; other keys' FileDone is one autocommit INSERT
        self._open_keys: set[str] = {k for (k,) in self._db.execute("SELECT key FROM uploads")}
        #: the journal held no file when opened (a first run): no per-file lookups are needed
        self.empty = self._db.execute("SELECT 1 FROM files LIMIT 1").fetchone() is None and not self._open_keys
        self._batch: list[tuple[object, ...]] = []  # finished-file rows not committed yet (see flush)
        self._batch_started = 0.0  # time.monotonic() of the first of them

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

    def is_done(self, key: str, identity: FileIdentity) -> bool:
        """True if an earlier run uploaded this very version of the file to ``key``."""
        self.flush()
        row = self.db.execute(
            "SELECT size_bytes, mtime_ns, ctime_ns, inode, device, status FROM files WHERE key=?", (key,)
        ).fetchone()
        return row is not None and row[5] == "done" and FileIdentity(*row[:5]).same_version(identity)

    def resume_record(self, key: str, identity: FileIdentity) -> ResumeRecord | OpenUpload | None:
        """The open multipart upload of ``key``: a :class:`ResumeRecord` if the file is the same
        version (size, mtime, ctime, inode, device) and the checksum algorithm the same as when it
        was journaled; an :class:`OpenUpload` (to abort) otherwise; None if there is none."""
        row = self.db.execute(
            "SELECT upload_id, part_size_bytes, size_bytes, mtime_ns, ctime_ns, inode, device, checksum_algorithm"
            " FROM uploads WHERE key=? AND state='open' ORDER BY created DESC LIMIT 1", (key,)
        ).fetchone()
        if row is None:
            return None
        upload_id, part_size = row[0], row[1]
        if not FileIdentity(*row[2:7]).same_version(identity) or row[7] != self.checksum_algorithm:
            return OpenUpload(key, upload_id)
        parts = {
            n: CompletedPart(n, etag, sz, checksum)
            for n, sz, etag, checksum in self.db.execute(
                "SELECT part_number, size_bytes, etag, checksum FROM parts WHERE upload_id=?", (upload_id,)
            )
        }
        return ResumeRecord(upload_id, part_size, parts)

    def open_uploads(self) -> list[OpenUpload]:
        """Every multipart upload the journal still holds (open for resume, or its abort pending)."""
        return [OpenUpload(k, u) for k, u in self.db.execute("SELECT key, upload_id FROM uploads")]

    def pending_aborts(self) -> list[OpenUpload]:
        """The uploads whose abort failed (to be retried)."""
        return [OpenUpload(k, u) for k, u in self.db.execute("SELECT key, upload_id FROM uploads WHERE state='abort'")]

    def creating(self) -> dict[str, float]:
        """Keys whose CreateMultipartUpload was sent without the upload ID being recorded since
        (or with a failed attempt before it): key -> when (epoch seconds)."""
        return dict(self.db.execute("SELECT key, started FROM creating"))

    def forget_upload(self, upload_id: str) -> None:
        """Drop the upload ``upload_id`` and its parts (after its abort succeeded)."""
        with self._tx() as db:
            db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))

    def mark_abort(self, upload_id: str) -> None:
        """Keep ``upload_id`` recorded as to be aborted (its abort failed, or was not tried yet)."""
        self.flush()
        if self.db.execute("UPDATE uploads SET state='abort' WHERE upload_id=?", (upload_id,)).rowcount:
            self._flag_pending(True)

    def _flag_pending(self, pending: bool) -> None:
        """``<journal>.aborts`` exists while the journal holds uploads to abort: other runs look for
        these markers only (:func:`abort_pending_in_journals`), never open every journal."""
        marker = Path(f"{self.path}{_PENDING_SUFFIX}")
        if pending:
            marker.touch()
        else:
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()

    def restart(self) -> None:
        """Forget every finished or failed file (``--no-resume``); uploads still recorded (their
        abort failed) and unsettled intents stay until they are aborted."""
        with self._tx() as db:
            db.execute("DELETE FROM files")
        self.empty = not self._open_keys

    def intend_create(self, key: str) -> None:
        """Record that an upload of ``key`` may be created where this process does not see it (a
        cluster worker): the intent stays until :func:`abort_orphans` has looked for its orphans."""
        self(MultipartCreating(key))
        self._inherited.add(key)

    def forget_creating(self, keys: Iterable[str]) -> None:
        with self._tx() as db:
            db.executemany("DELETE FROM creating WHERE key=?", [(k,) for k in keys])

    @property
    def settled(self) -> bool:
        """Nothing open or uncertain is left: no upload, and no CreateMultipartUpload unaccounted for."""
        return (self.db.execute("SELECT 1 FROM uploads LIMIT 1").fetchone() is None
                and self.db.execute("SELECT 1 FROM creating LIMIT 1").fetchone() is None)

    def counts(self) -> dict[str, int]:
        """Rows per table: ``{"done": n, "failed": n, "uploads": n, "parts": n}``."""
        self.flush()
        db = self.db
        return {
            "done": db.execute("SELECT count(*) FROM files WHERE status='done'").fetchone()[0],
            "failed": db.execute("SELECT count(*) FROM files WHERE status='failed'").fetchone()[0],
            "uploads": db.execute("SELECT count(*) FROM uploads").fetchone()[0],
            "parts": db.execute("SELECT count(*) FROM parts").fetchone()[0],
        }

    # ------------------------------------------------------------------ recording
    def expect(self, key: str, identity: FileIdentity) -> None:
        """The planner hands ``key``'s identity over before the engine starts it (it is recorded
        with its multipart upload and its done row, so a rerun can tell whether the file changed)."""
        self._pending[key] = identity

    def flush(self) -> None:
        """Commit the pending batch of finished-file records (if any), in one transaction."""
        if self._batch:
            rows, self._batch = self._batch, []
            with self._tx() as db:
                db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, 'done', ?)", rows)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._batch:
            self.flush()
        db = self.db
        db.execute("BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _identity_of(self, key: str, size_bytes: int, *, pop: bool) -> FileIdentity:
        got = self._pending.pop(key, None) if pop else self._pending.get(key)
        return got if got is not None else FileIdentity(size_bytes, -1, -1, -1, None)

    def __call__(self, event: Event) -> None:
        if not self.resumable and (isinstance(event, (PartDone, FileFailed)) or (
                type(event) is FileDone and event.key not in self._open_keys)):
            return  # no resume: only intents and uploads are recorded
        if type(event) is FileDone and event.key not in self._open_keys:  # the common case: batched
            i = self._identity_of(event.key, event.size_bytes, pop=True)
            batch = self._batch
            if not batch:
                self._batch_started = time.monotonic()
            batch.append((event.key, event.source, i.size_bytes, i.mtime_ns, i.ctime_ns, i.inode, i.device,
                          event.etag))
            if len(batch) >= DONE_BATCH or time.monotonic() - self._batch_started >= DONE_BATCH_S:
                self.flush()
            return
        if not isinstance(event, _WRITES):
            if self._batch and (type(event) is ShardSettled or (
                    isinstance(event, Tick) and time.monotonic() - self._batch_started >= DONE_BATCH_S)):
                self.flush()
            return
        self.flush()  # what was done before this event is committed before it
        if isinstance(event, PartDone):
            with self._tx() as db:
                db.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?)",
                           (event.upload_id, event.part_number, event.size_bytes, event.etag, event.checksum))
        elif isinstance(event, MultipartCreating):
            # before the request is sent: a kill after the server created the upload leaves this row
            self._intents[event.key] = self._intents.get(event.key, 0) + 1
            if not self.resumable:  # a kill from now on leaves an upload only a sweep of this journal finds
                self._flag_pending(True)
            self.db.execute("INSERT OR IGNORE INTO creating VALUES (?, ?)", (event.key, time.time()))
        elif isinstance(event, MultipartCreated):
            i = self._identity_of(event.key, -1, pop=False)
            self._open_keys.add(event.key)
            with self._tx() as db:
                # an older upload of the key (gone, or its abort failed) is no longer resumable
                stale = db.execute("UPDATE uploads SET state='abort' WHERE key=? AND state='open'", (event.key,))
                if stale.rowcount:
                    self._flag_pending(True)
                # not resumable: recorded as an upload to abort, which the sweeps of later runs and
                # cleanup do once this run is gone (its lock released) if it did not end it itself
                db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (event.upload_id, event.key, event.part_size_bytes, i.size_bytes, i.mtime_ns,
                            i.ctime_ns, i.inode, i.device, self.checksum_algorithm, time.time(),
                            "open" if self.resumable else "abort"))
                # the intent is settled unless an earlier attempt (a failed one, whose request may still
                # have created an upload, or a killed run's) could have left an orphan
                if self._intents.get(event.key) == 1 and event.key not in self._inherited:
                    db.execute("DELETE FROM creating WHERE key=?", (event.key,))
        elif isinstance(event, FileDone):
            i = self._identity_of(event.key, event.size_bytes, pop=True)
            row = (event.key, event.source, i.size_bytes, i.mtime_ns, i.ctime_ns, i.inode, i.device, event.etag)
            with self._tx() as db:  # a file with a journaled multipart upload: its done row and the upload's end
                if self.resumable:
                    db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, 'done', ?)", row)
                # not resumable: the completed one is the key's latest (an older one's abort failed)
                for (upload_id,) in db.execute(
                        "SELECT upload_id FROM uploads WHERE key=? AND state='open'" if self.resumable else
                        "SELECT upload_id FROM uploads WHERE key=? ORDER BY created DESC LIMIT 1",
                        (event.key,)).fetchall():
                    db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
                    db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
            self._open_keys.discard(event.key)
        elif isinstance(event, FileFailed):
            i = self._identity_of(event.key, event.size_bytes, pop=True)
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, 'failed', NULL)",
                            (event.key, event.source, i.size_bytes, i.mtime_ns, i.ctime_ns, i.inode, i.device))
        elif isinstance(event, MultipartAborted):
            self.forget_upload(event.upload_id)
        elif isinstance(event, MultipartAbortFailed):
            self.mark_abort(event.upload_id)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):  # a batch that cannot be committed is only uploaded again
                self.flush()
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def delete(self) -> None:
        """Close and remove the journal file (the run finished everything)."""
        self._batch = []  # a pending batch goes with the file
        if self._db is not None:
            self._db.close()
            self._db = None
        for suffix in ("", "-wal", "-shm", "-journal", _PENDING_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")
        if self._lock is not None:
            self._lock.release(unlink=True)
            self._lock = None


#: ``abort(key, upload_id)``: the run's :meth:`~s3pump.engine.uploads.OpenUploads.abort`, which
#: returns the error instead of raising it (an unknown upload counts as aborted)
Abort = Callable[[str, str], "S3PumpError | None"]


def _target(endpoint: str | None, bucket: str) -> str:
    return json.dumps([endpoint or "", bucket])


def skip_and_resume(
    items: Iterable[UploadItem], journal: Journal, bus: EventBus, abort: Abort,
) -> Iterator[UploadItem]:
    """Filter planned items through the journal of an earlier run of the same command.

    * a file the journal has as done (the same version: size, mtime, ctime, inode, device)
      is skipped (FileSkipped, reason ``done in an earlier run``);
    * a file with an open multipart upload gets it as ``item.resume`` (the engine verifies the
      parts and sends only the missing ones); if the file is another version since, or the
      checksum algorithm differs, the stale upload is aborted (``abort(key, upload_id)``; a
      failed abort stays recorded) and the file starts over;
    * every other file passes unchanged. Each passing file's identity is handed to the
      journal (:meth:`Journal.expect`) for the uploads it creates.

    A journal that was empty when opened (a first run) is not asked per file.
    """
    lookup = not journal.empty
    for item in items:
        if item.error is not None or item.path is None:
            yield item
            continue
        identity = item.identity or FileIdentity(item.size_bytes, item.mtime_ns, -1, -1, None)
        if not lookup:
            journal.expect(item.key, identity)
            yield item
            continue
        if journal.is_done(item.key, identity):
            bus.emit(FileSkipped(item.source, item.key, item.size_bytes, "done in an earlier run"))
            continue
        record = journal.resume_record(item.key, identity)
        if isinstance(record, OpenUpload):
            abort_recorded(journal, abort, record)
        elif record is not None:
            item.resume = record
        journal.expect(item.key, identity)
        yield item


def abort_recorded(journal: Journal, abort: Abort, u: OpenUpload) -> bool:
    """Abort a journaled upload: forgotten once the abort succeeded (or the upload is gone),
    kept as a pending abort otherwise. Returns whether it is gone."""
    try:
        error = abort(u.key, u.upload_id)
    except NoSuchUploadError:
        error = None
    except S3PumpError as e:
        error = e
    if error is not None and not isinstance(error, NoSuchUploadError):
        journal.mark_abort(u.upload_id)
        return False
    journal.forget_upload(u.upload_id)
    return True


def abort_orphans(journal: Journal, store: Store, bucket: str, prefix: str, abort: Abort) -> int:
    """Abort the multipart uploads this journal owns but never learnt the ID of.

    A client killed between CreateMultipartUpload reaching the server and the journal
    recording the upload ID, or a CreateMultipartUpload whose response was lost and that was
    sent again, leaves an upload nobody knows. The journal recorded the intent first
    (``creating``); any upload of such a key under ``prefix`` initiated since the intent (60 s
    of clock slack) that the journal does not hold is that orphan: the journal's lock means no
    live run of this command created it. Intents are forgotten once the listing succeeded and
    their orphans are aborted. Returns how many were aborted.

    Raises:
        S3PumpError: ListMultipartUploads failed (the intents stay recorded).
    """
    creating = journal.creating()
    if not creating:
        return 0
    known = {u.upload_id for u in journal.open_uploads()}
    aborted = 0
    settled = set(creating)
    for u in store.list_multipart_uploads(bucket, prefix):
        started = creating.get(u.key)
        if started is None or u.upload_id in known or u.initiated < started - _CLOCK_SLACK_S:
            continue
        error = abort(u.key, u.upload_id)
        if error is None or isinstance(error, NoSuchUploadError):
            aborted += 1
        else:
            settled.discard(u.key)
    journal.forget_creating(settled)
    return aborted


def abort_pending(journal: Journal, store: Store, bucket: str, abort: Abort) -> int:
    """Retry the aborts that failed in earlier runs: this journal's (through ``abort``), and those
    of every other journal in the same directory for the same endpoint and bucket that no live run
    holds (so the ``--from-list`` rerun after an outage cleans up what the failed run could not;
    like ``s3pump cleanup``, these are other runs' leftovers, aborted on the store directly).
    Returns how many uploads were aborted; failures stay recorded."""
    aborted = 0
    for u in journal.pending_aborts():
        aborted += abort_recorded(journal, abort, u)
    journal._flag_pending(bool(journal.pending_aborts()))
    target = journal.db.execute("SELECT value FROM meta WHERE name='target'").fetchone()
    if target is not None:
        aborted += len(abort_pending_in_journals(journal.path.parent, store, json.loads(target[0])[0] or None,
                                                 bucket, skip=journal.path))
    return aborted


def abort_pending_in_journals(directory: Path, store: Store, endpoint: str | None, bucket: str, *,
                              skip: Path | None = None, prefix: str = "",
                              sweep_intents: SweepIntents | None = None,
                              policy: RetryPolicy | None = None) -> list[OpenUpload]:
    """Retry the failed aborts recorded in the journals in ``directory`` for ``endpoint`` and
    ``bucket`` that no live run holds (``s3pump cleanup`` and every upload run call this), of keys
    under ``prefix``; a journal that is not resumable (a dead sync's or stream's, :mod:`s3pump.intents`)
    holds only uploads to abort. ``sweep_intents`` (if given) also aborts what such a journal's
    recorded CreateMultipartUpload intents left unknown; a journal of a dead run with nothing left is
    deleted. Each abort is retried by ``policy`` (the store sends one request). Returns the uploads
    aborted now (or found gone); failures stay recorded."""
    aborted: list[OpenUpload] = []
    if not directory.is_dir():
        return aborted
    target = _target(endpoint, bucket)
    for marker in sorted(directory.glob(f"*.sqlite{_PENDING_SUFFIX}")):
        path = Path(str(marker)[:-len(_PENDING_SUFFIX)])
        if path != skip:
            aborted += _abort_pending_in(path, target, store, bucket, prefix, sweep_intents, policy)
    return aborted


#: ``sweep_intents(db)``: abort the uploads a dead run's recorded intents left unknown, forget the
#: intents it settled; returns the uploads aborted (see :func:`s3pump.intents.intent_sweeper`)
SweepIntents = Callable[[sqlite3.Connection], "list[OpenUpload]"]


def abort_upload(store: Store, policy: RetryPolicy | None, bucket: str, key: str, upload_id: str) -> None:
    """AbortMultipartUpload of another run's upload, retried by ``policy`` when given (the store sends
    one request: :meth:`~s3pump.store.base.Store.abort_multipart_upload`)."""
    if policy is None:
        store.abort_multipart_upload(bucket, key, upload_id)
    else:
        policy.call(store.abort_multipart_upload, bucket, key, upload_id, what=(key, None))


def _abort_pending_in(path: Path, target: str, store: Store, bucket: str, prefix: str = "",
                      sweep_intents: SweepIntents | None = None,
                      policy: RetryPolicy | None = None) -> list[OpenUpload]:
    lock = _try_lock(path)
    if lock is None:
        return []  # a live run holds it: its uploads are its own
    aborted: list[OpenUpload] = []
    drop = False  # a dead run's journal that is not resumable, with nothing left in it
    if not path.exists():  # its run deleted it since the marker was seen
        lock.release(unlink=True)
        return aborted
    try:
        with contextlib.closing(sqlite3.connect(str(path), isolation_level=None, timeout=10.0)) as db:
            if db.execute("PRAGMA user_version").fetchone()[0] != _VERSION:
                return []  # another s3pump version's journal: not ours to change
            row = db.execute("SELECT value FROM meta WHERE name='target'").fetchone()
            if row is None or row[0] != target:
                return []
            resumable = db.execute("SELECT 1 FROM meta WHERE name='resumable' AND value='0'").fetchone() is None
            for key, upload_id in db.execute("SELECT key, upload_id FROM uploads WHERE state='abort'").fetchall():
                if not key.startswith(prefix):
                    continue
                try:
                    abort_upload(store, policy, bucket, key, upload_id)
                except NoSuchUploadError:
                    pass
                except S3PumpError:
                    continue
                db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
                db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
                aborted.append(OpenUpload(key, upload_id))
            if not resumable and sweep_intents is not None:
                aborted += sweep_intents(db)
            left = db.execute("SELECT 1 FROM uploads WHERE state='abort' LIMIT 1").fetchone() is not None
            if not resumable:
                left = left or db.execute("SELECT 1 FROM creating LIMIT 1").fetchone() is not None
                drop = not left and db.execute("SELECT 1 FROM uploads LIMIT 1").fetchone() is None
            if not left:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{_PENDING_SUFFIX}")
    except sqlite3.Error:
        return aborted
    finally:
        if drop:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{path}{suffix}")
        lock.release(unlink=drop)
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

