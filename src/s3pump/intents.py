"""The multipart uploads of runs nobody resumes (``sync``, ``stream``), recorded so that a killed
run's are aborted by the next run or by ``s3pump cleanup``.

``sync`` and ``stream`` abort their open uploads when they stop (Ctrl-C, SIGTERM, a failure); a
SIGKILL, an OOM kill or a power cut leaves them open, billed until someone aborts them. So each
run of these verbs records, as ``upload``'s resume journal does (:mod:`s3pump.journal`), each
CreateMultipartUpload *before* it is sent and each upload ID when it returns, in a journal of its
own (:class:`IntentLog`: ``journals/<job>-<hash>-<pid>-<random>.sqlite``, created at the first
intent, so a run without a multipart upload writes nothing), locked while the run lives and
deleted when it ends with nothing open.

A journal whose lock is free belongs to a run that is gone: :func:`sweep_dead_runs` (called by every
``sync`` and ``stream`` before it starts, and by ``cleanup`` whatever the uploads' age) aborts the
uploads it records, and the uploads of its recorded intents that it never learnt the ID of (those of
the key initiated since the intent that no journal in the state directory holds), then deletes it.
A live run's journal is locked, so a run never aborts another live run's uploads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import NoSuchUploadError, S3PumpError
from .events import Event, MultipartCreating
from .journal import Journal, OpenUpload, journal_path
from .journal_aborts import abort_pending_in_journals, abort_upload
from .journal_file import try_lock
from .local_state import is_write_refused
from .retry import RetryPolicy
from .store.base import MultipartUploadInfo, Store

__all__ = ["IntentLog", "dead_run_uploads", "intent_sweeper", "sweep_dead_runs"]

_log = logging.getLogger("s3pump.intents")

#: clock slack between this host and the server when matching ListMultipartUploads' Initiated times
_CLOCK_SLACK_S = 60.0


class IntentLog:
    """A subscriber of one ``sync`` or ``stream`` run: its journal of multipart intents and uploads
    (not resumable: :class:`~s3pump.journal.Journal` with ``resumable=False``), created at the run's
    first :class:`~s3pump.events.MultipartCreating`.

    Raises (from the event that creates it):
        JournalBusyError: never in practice (the path is this run's own).
        OSError, sqlite3.Error: the state directory refuses writes (the run's guard stops the run).
    """

    def __init__(self, state_dir: Path, job: str, sources: list[str], destination: str, endpoint: str | None,
                 bucket: str) -> None:
        base = journal_path(state_dir, job, sources, destination, endpoint)
        self.path = base.with_name(f"{base.stem}-{os.getpid()}-{secrets.token_hex(4)}.sqlite")
        self._bucket = bucket
        self._endpoint = endpoint
        self.journal: Journal | None = None
        #: the state directory refused the journal (the run goes on without it; a warning said so)
        self.unavailable = False

    def __call__(self, event: Event) -> None:
        if self.journal is None:
            if type(event) is not MultipartCreating or self.unavailable:
                return
            try:
                self.journal = Journal(self.path, bucket=self._bucket, endpoint=self._endpoint, resumable=False)
            except (OSError, sqlite3.Error) as e:  # a read-only or full state dir: go on, as before journals
                if not is_write_refused(e):
                    raise
                self.unavailable = True
                _log.warning("%s: cannot write the journal of multipart uploads (%s); if this run is killed, "
                             "`s3pump cleanup --older-than 0s` aborts what it leaves open", self.path, e)
                return
        self.journal(event)

    def finish(self, store: Store) -> None:
        """At the end of the run: abort the uploads a retried Create left unknown (none that any journal
        holds, so never another live run's), then delete the journal if nothing is left open in it
        (else it stays, unlocked, for a later sweep)."""
        journal = self.journal
        if journal is None:
            return
        try:
            if journal.creating():
                intent_sweeper(self.path.parent, store, self._bucket)(journal.db)
            if journal.settled:
                journal.delete()
        except (OSError, sqlite3.Error) as e:  # the journal stays; the next sweep finishes this
            _log.warning("%s: %s", self.path, e)
        finally:
            journal.close()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def _known_upload_ids(directory: Path) -> set[str]:
    """The upload IDs every journal in ``directory`` holds (a live run's included)."""
    known: set[str] = set()
    for path in directory.glob("*.sqlite"):
        with contextlib.suppress(sqlite3.Error), contextlib.closing(
                sqlite3.connect(str(path), timeout=10.0)) as db:
            known.update(u for (u,) in db.execute("SELECT upload_id FROM uploads"))
    return known


def intent_sweeper(directory: Path, store: Store, bucket: str, prefix: str = "",
                   policy: RetryPolicy | None = None) -> Callable[[sqlite3.Connection], list[OpenUpload]]:
    """The intents' part of a dead run's sweep (see :func:`~s3pump.journal_aborts.abort_pending_in_journals`):
    for its journal's recorded CreateMultipartUpload intents of keys under ``prefix``, abort the uploads
    of exactly that key initiated since the intent (60 s of clock slack) that no journal in ``directory``
    holds, and forget the intents whose listing succeeded."""
    known: set[str] | None = None

    def sweep(db: sqlite3.Connection) -> list[OpenUpload]:
        nonlocal known
        creating = {k: t for k, t in db.execute("SELECT key, started FROM creating") if k.startswith(prefix)}
        if not creating:
            return []
        if known is None:
            known = _known_upload_ids(directory)
        aborted: list[OpenUpload] = []
        settled = set(creating)
        try:
            listed = list(store.list_multipart_uploads(bucket, os.path.commonprefix(list(creating))))  # noqa: RUF071 (keys, not paths)
        except S3PumpError:
            return aborted  # the intents stay, for the next sweep
        for u in listed:
            started = creating.get(u.key)
            if started is None or u.upload_id in known or u.initiated < started - _CLOCK_SLACK_S:
                continue
            try:
                abort_upload(store, policy, bucket, u.key, u.upload_id)
            except NoSuchUploadError:
                pass
            except S3PumpError:
                settled.discard(u.key)
                continue
            aborted.append(OpenUpload(u.key, u.upload_id))
        db.executemany("DELETE FROM creating WHERE key=?", [(k,) for k in settled])
        return aborted

    return sweep


def sweep_dead_runs(directory: Path, store: Store, endpoint: str | None, bucket: str,
                    prefix: str = "", policy: RetryPolicy | None = None) -> list[OpenUpload]:
    """Abort what the runs that are gone left open in ``bucket`` under ``prefix``: the uploads the
    journals in ``directory`` record as to abort (a killed ``sync``'s or ``stream``'s, a failed abort of
    any run's), and the uploads of a killed ``sync``'s or ``stream``'s unsettled intents. Journals held
    by live runs are left alone; each abort is retried by ``policy`` (the run's). Returns the uploads
    aborted (or found gone); failures stay recorded."""
    return abort_pending_in_journals(directory, store, endpoint, bucket, prefix=prefix, policy=policy,
                                     sweep_intents=intent_sweeper(directory, store, bucket, prefix, policy))


def dead_run_uploads(directory: Path, endpoint: str | None, bucket: str, prefix: str = "",
                     listed: Iterable[MultipartUploadInfo] = ()) -> set[str]:
    """The upload IDs under ``prefix`` that a :func:`sweep_dead_runs` would abort, changing nothing
    (``cleanup --dry-run``'s list): those recorded as to abort, and, among ``listed`` (the bucket's
    ListMultipartUploads under ``prefix``), those a dead run's unsettled CreateMultipartUpload intent
    accounts for (the same rule as :func:`intent_sweeper`: that key, initiated since the intent, held
    by no journal)."""
    ids: set[str] = set()
    if not directory.is_dir():
        return ids
    target = json.dumps([endpoint or "", bucket])
    creating: dict[str, float] = {}
    for marker in directory.glob("*.sqlite.aborts"):
        path = Path(str(marker)[:-len(".aborts")])
        lock = try_lock(path)
        if lock is None:
            continue  # a live run's
        try:
            with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(str(path))) as db:
                row = db.execute("SELECT value FROM meta WHERE name='target'").fetchone()
                if row is not None and row[0] == target:
                    ids.update(u for k, u in db.execute("SELECT key, upload_id FROM uploads WHERE state='abort'")
                               if k.startswith(prefix))
                    for key, started in db.execute("SELECT key, started FROM creating"):
                        if key.startswith(prefix):
                            creating[key] = min(started, creating.get(key, started))
        finally:
            lock.release()
    if creating:
        known = _known_upload_ids(directory)
        ids.update(u.upload_id for u in listed
                   if u.key in creating and u.upload_id not in known
                   and u.initiated >= creating[u.key] - _CLOCK_SLACK_S)
    return ids
