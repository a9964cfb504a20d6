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
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .events import (
    Event,
    FileDone,
    FileFailed,
    MultipartAborted,
    MultipartAbortFailed,
    MultipartCreated,
    MultipartCreating,
    PartDone,
    ShardSettled,
    Tick,
)
from .fileid import FileIdentity
from .items import ResumeRecord
from .journal_file import PENDING_SUFFIX, Lock, connect, target_of
from .statefs import sqlite_journal_mode
from .store.base import CompletedPart

__all__ = ["DONE_BATCH", "DONE_BATCH_S", "Journal", "OpenUpload", "ResumeRecord", "journal_path"]

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
        self._lock: Lock | None = Lock(Path(f"{self.path}.lock"), self.path)
        self.checksum_algorithm = checksum_algorithm
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            #: WAL on a local disk; the rollback journal on NFS/Lustre/GPFS, where WAL fails (statefs.py)
            self.journal_mode = sqlite_journal_mode(self.path)
            self._db: sqlite3.Connection | None = connect(self.path, self.journal_mode)
        except BaseException:
            self._lock.release()
            raise
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)", (repr(time.time()),))
        if bucket:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('target', ?)", (target_of(endpoint, bucket),))
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
            self.flag_pending(True)

    def flag_pending(self, pending: bool) -> None:
        """``<journal>.aborts`` exists while the journal holds uploads to abort: other runs look for
        these markers only (:func:`~s3pump.journal_aborts.abort_pending_in_journals`), never open every journal."""
        marker = Path(f"{self.path}{PENDING_SUFFIX}")
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
                self.flag_pending(True)
            self.db.execute("INSERT OR IGNORE INTO creating VALUES (?, ?)", (event.key, time.time()))
        elif isinstance(event, MultipartCreated):
            i = self._identity_of(event.key, -1, pop=False)
            self._open_keys.add(event.key)
            with self._tx() as db:
                # an older upload of the key (gone, or its abort failed) is no longer resumable
                stale = db.execute("UPDATE uploads SET state='abort' WHERE key=? AND state='open'", (event.key,))
                if stale.rowcount:
                    self.flag_pending(True)
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
        for suffix in ("", "-wal", "-shm", "-journal", PENDING_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")
        if self._lock is not None:
            self._lock.release(unlink=True)
            self._lock = None


#: ``abort(key, upload_id)``: the run's :meth:`~s3pump.engine.uploads.OpenUploads.abort`, which
