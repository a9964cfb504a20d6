"""The resume journal as a :class:`~s3pump.run.Run` plug-in: ``Run(..., resume=ResumeJournal(...))``.

A job that resumes (``upload``) gives its run a :class:`ResumeJournal`; :meth:`Run.transfer
<s3pump.run.Run.transfer>` then applies it around the transfer, so the job itself reads
"validate -> items -> transfer -> report". In order:

1. **open** (the run entered): the journal of this command (:func:`~s3pump.journal.journal_path`:
   per job, sources, destination and endpoint, in the state directory), locked for this run; aborts
   that failed in earlier runs are retried. With ``fresh`` (``--no-resume``) its uploads (and any it
   created without learning their ID) are aborted and it restarts. Otherwise a rerun never trusts its
   journal over the bucket: the files it has as done whose objects are missing or changed are
   forgotten (:func:`~s3pump.journal_check.forget_missing_done`, one listing), so they are sent
   again; this is the one place skipped objects are checked against the bucket. The journal then
   records the run's events (a write error stops the run: :meth:`~s3pump.run.Run.guard`), and a
   ``Resuming`` event says what an earlier run left;
2. **plan**: the items pass through :func:`skip_and_resume` (done files skipped,
   open multipart uploads attached as ``item.resume``); when the workers of a cluster create the
   multipart uploads (``workers_create``), each one's intent is journaled here first;
3. **finish**, after a transfer that ended: uploads a killed or retried CreateMultipartUpload left
   unknown are aborted, and the journal is deleted when nothing failed and nothing is left open;
4. the journal is closed however the transfer ended.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .errors import S3PumpError
from .events import EventBus, FileSkipped, Resuming
from .fileid import FileIdentity
from .items import UploadItem
from .journal import Journal, OpenUpload, journal_path
from .journal_aborts import Abort, abort_orphans, abort_pending, abort_recorded
from .journal_check import forget_missing_done
from .local_state import is_write_refused, state_error
from .session import state_dir
from .urls import parse_s3_url

if TYPE_CHECKING:
    from .run import Run

__all__ = ["ResumeJournal", "skip_and_resume"]


class ResumeJournal:
    """The resume journal of one run of ``sources`` to ``destination`` (``s3://bucket/prefix``).

    Args:
        sources: what the command names as its sources (the journal's identity, with the job's name,
            the destination and the endpoint): the PATHs, or ``["--from-list=FILE"]``.
        destination: the command's destination URL.
        fresh: ``--no-resume``: abort what the journal holds open and start over; a cancelled
            transfer then aborts its open multipart uploads instead of keeping them.
        workers_create: the multipart uploads are created by cluster workers (a killed one never
            reports its upload): journal each one's CreateMultipartUpload intent before handing it on.
    """

    def __init__(self, sources: list[str], destination: str, *, fresh: bool = False,
                 workers_create: bool = False) -> None:
        self.sources = sources
        self.destination = destination
        self.fresh = fresh
        self.workers_create = workers_create
        self.journal: Journal | None = None

    @property
    def keeps_uploads(self) -> bool:
        """Whether a cancelled transfer leaves its open multipart uploads for the rerun to resume."""
        return not self.fresh

    def transfer(self, run: Run, items: Iterable[UploadItem], send: Callable[[Iterable[UploadItem]], Any]) -> Any:
        """Open the journal, ``send`` the items it lets through (what :meth:`Run.transfer
        <s3pump.run.Run.transfer>` does without it), finish and close it; returns what ``send`` returns.

        Raises:
            JournalBusyError: a live run of the same command holds the journal (exit 2).
            LocalStateError: the journal cannot be created or written (read-only state dir, full disk).
            whatever ``send`` raises (CancelledError, ...); the journal is closed.
        """
        journal = self._open(run)
        try:
            try:
                result = send(self._plan(run, items, journal))
            except (OSError, sqlite3.Error) as e:  # the planner's journal lookups (the engine aborted)
                if not is_write_refused(e):
                    raise
                raise state_error(journal.path, "resume journal", e) from None
            self._finish(run, journal)
            return result
        finally:
            journal.close()
            self.journal = None

    def _open(self, run: Run) -> Journal:
        """The journal of this command, locked for this run, checked against the bucket (see the module
        docstring, 1.); subscribed to ``run``'s events."""
        assert run.uploads is not None
        dest = parse_s3_url(self.destination)
        path = journal_path(state_dir(), run.job, self.sources, self.destination, run.config.endpoint_url)
        try:
            journal = Journal(path, checksum_algorithm=run.config.checksum_algorithm, bucket=dest.bucket,
                              endpoint=run.config.endpoint_url)
            with contextlib.suppress(S3PumpError):
                abort_pending(journal, run.store, dest.bucket, run.uploads.abort)
            if self.fresh:
                for u in journal.open_uploads():
                    abort_recorded(journal, run.uploads.abort, u)
                with contextlib.suppress(S3PumpError):
                    abort_orphans(journal, run.store, dest.bucket, dest.prefix, run.uploads.abort)
                journal.restart()
            elif not journal.empty:  # never trust the journal over the bucket: skip only what is still there
                forget_missing_done(journal, run.store, dest.bucket)
        except (OSError, sqlite3.Error) as e:
            if not is_write_refused(e):
                raise
            raise state_error(path, "resume journal", e) from None
        self.journal = journal
        run.subscribe(run.guard(journal, lambda: journal.path, "resume journal"))
        if not journal.empty:
            counts = journal.counts()
            if counts["done"] or counts["uploads"]:
                run.emit(Resuming(counts["done"], counts["uploads"]))
        return journal

    def _plan(self, run: Run, items: Iterable[UploadItem], journal: Journal) -> Iterator[UploadItem]:
        assert run.uploads is not None
        threshold_bytes = run.config.multipart_threshold_bytes
        planned = skip_and_resume(items, journal, run.bus, run.uploads.abort)
        if not self.workers_create:
            return planned
        return _announce_multipart(planned, journal, threshold_bytes)

    def _finish(self, run: Run, journal: Journal) -> None:
        assert run.uploads is not None
        dest = parse_s3_url(self.destination)
        with contextlib.suppress(S3PumpError):  # uploads a killed or retried Create left unknown
            abort_orphans(journal, run.store, dest.bucket, dest.prefix, run.uploads.abort)
        if run.stats.files_failed == 0 and journal.settled:
            journal.delete()


def _announce_multipart(items: Iterable[UploadItem], journal: Journal, threshold_bytes: int) -> Iterator[UploadItem]:
    """Pass ``items`` on; record in the journal a CreateMultipartUpload intent for each file that
    will go as a multipart upload (see :class:`~s3pump.events.MultipartCreating`)."""
    for item in items:
        if item.path is not None and item.error is None and item.size_bytes > threshold_bytes:
            journal.intend_create(item.key)
        yield item


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
