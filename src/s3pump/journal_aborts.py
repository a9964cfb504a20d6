"""The aborts of the multipart uploads resume journals hold: a journaled upload (forgotten once its abort
succeeded, kept as a pending abort otherwise), the orphans of recorded intents (a CreateMultipartUpload whose
upload ID the journal never learnt), and the sweep of other runs' failed aborts, which every upload run and
``s3pump cleanup`` retry in the journals no live run holds (:mod:`s3pump.journal` says what is recorded when).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import NoSuchUploadError, S3PumpError
from .journal import Journal, OpenUpload
from .journal_file import PENDING_SUFFIX, VERSION, target_of, try_lock
from .retry import RetryPolicy
from .store.base import Store

__all__ = ["Abort", "SweepIntents", "abort_orphans", "abort_pending", "abort_pending_in_journals", "abort_recorded",
           "abort_upload", "forget_uploads"]

#: clock slack between this host and the server when matching ListMultipartUploads' Initiated times
_CLOCK_SLACK_S = 60.0

#: returns the error instead of raising it (an unknown upload counts as aborted)
Abort = Callable[[str, str], "S3PumpError | None"]


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
    journal.flag_pending(bool(journal.pending_aborts()))
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
    target = target_of(endpoint, bucket)
    for marker in sorted(directory.glob(f"*.sqlite{PENDING_SUFFIX}")):
        path = Path(str(marker)[:-len(PENDING_SUFFIX)])
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
    lock = try_lock(path)
    if lock is None:
        return []  # a live run holds it: its uploads are its own
    aborted: list[OpenUpload] = []
    drop = False  # a dead run's journal that is not resumable, with nothing left in it
    if not path.exists():  # its run deleted it since the marker was seen
        lock.release(unlink=True)
        return aborted
    try:
        with contextlib.closing(sqlite3.connect(str(path), isolation_level=None, timeout=10.0)) as db:
            if db.execute("PRAGMA user_version").fetchone()[0] != VERSION:
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
                    os.unlink(f"{path}{PENDING_SUFFIX}")
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
