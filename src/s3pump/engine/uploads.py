"""The one registry of a run's open multipart uploads, and the only place that aborts them.

An upload is registered the moment CreateMultipartUpload returns its upload ID (or when a run
adopts one from its resume journal) and is forgotten only when its completion or its abort
succeeded (as s3transfer's ``add_failure_cleanup`` at CreateMultipartUpload). Every abort of an
upload a run created or owns goes through :meth:`OpenUploads.abort`; ``s3pump cleanup``, which
aborts other runs' orphans, and :func:`s3pump.journal_aborts.abort_pending_in_journals`, which retries the
aborts other (finished) runs' journals record as failed, are the other callers of
``AbortMultipartUpload``.

Thread-safe: the engine's scheduler thread and its control-plane threads both use it.
"""

from __future__ import annotations

import logging
import threading
import time

from ..errors import S3PumpError
from ..events import EventBus, MultipartAborted, MultipartAbortFailed
from ..retry import RetryPolicy
from ..store.base import Store

__all__ = ["OpenUploads", "report_abort"]

_log = logging.getLogger("s3pump.engine")

#: Clock slack when looking for uploads a lost CreateMultipartUpload response may have created.
_CLOCK_SLACK_S = 60.0


class OpenUploads:
    """Upload ID -> key of every multipart upload of one run in ``bucket`` not yet completed or aborted."""

    def __init__(self, store: Store, bucket: str, policy: RetryPolicy) -> None:
        self.store = store
        self.bucket = bucket
        self.policy = policy
        self._open: dict[str, str] = {}
        self._lock = threading.Lock()
        # key -> time of a CreateMultipartUpload that failed retryably: the server may have created an
        # upload whose ID never reached us (see abort_strays)
        self._doubts: dict[str, float] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def items(self) -> list[tuple[str, str]]:
        """``(key, upload_id)`` of every open upload."""
        with self._lock:
            return [(key, upload_id) for upload_id, key in self._open.items()]

    def create(self, key: str, attrs: object) -> str:
        """CreateMultipartUpload, registered before it returns; a create that had to be retried is
        followed by :meth:`abort_strays`. Not retried here (not idempotent): the engine retries it.

        Raises:
            StoreError: from the store.
        """
        started = time.time()
        try:
            upload_id = self.store.create_multipart_upload(self.bucket, key, attrs)  # type: ignore[arg-type]
        except S3PumpError as e:
            if e.retryable:
                with self._lock:
                    self._doubts.setdefault(key, started)
            raise
        self.register(key, upload_id)
        with self._lock:
            since = self._doubts.pop(key, None)
        if since is not None:
            self.abort_strays(key, upload_id, since)
        return upload_id

    def register(self, key: str, upload_id: str) -> None:
        """``upload_id`` exists (created, or adopted from a journal): abort it unless it completes."""
        with self._lock:
            self._open[upload_id] = key

    def completed(self, upload_id: str) -> None:
        """CompleteMultipartUpload succeeded: nothing to abort any more."""
        with self._lock:
            self._open.pop(upload_id, None)

    def release(self, upload_id: str) -> None:
        """Hand ``upload_id`` over to the resume journal, which keeps it for a rerun (not aborted)."""
        self.completed(upload_id)

    def abort(self, key: str, upload_id: str) -> S3PumpError | None:
        """AbortMultipartUpload, retried here by the policy (the store does not retry aborts:
        :meth:`~s3pump.store.base.Store.abort_multipart_upload`); an unknown upload ID counts as aborted.
        Forgotten only when it succeeded; returns the error otherwise (the upload stays registered,
        so a later :meth:`abort_all` tries again)."""
        self.register(key, upload_id)
        try:
            self.policy.call(self.store.abort_multipart_upload, self.bucket, key, upload_id, what=(key, None))
        except S3PumpError as e:
            return e
        self.completed(upload_id)
        return None

    def abort_all(self) -> list[tuple[str, str, S3PumpError]]:
        """Abort every open upload; returns those whose abort failed, with the error."""
        failed = []
        for key, upload_id in self.items():
            error = self.abort(key, upload_id)
            if error is not None:
                failed.append((key, upload_id, error))
        return failed

    def abort_strays(self, key: str, keep_upload_id: str, since: float) -> int:
        """Abort the uploads of exactly ``key`` initiated since ``since`` (a retried create's lost
        answers), except ``keep_upload_id``. Best effort; returns how many were aborted."""
        aborted = 0
        try:
            strays = [u for u in self.store.list_multipart_uploads(self.bucket, key)
                      if u.key == key and u.upload_id != keep_upload_id and u.initiated >= since - _CLOCK_SLACK_S]
        except S3PumpError:
            return 0
        for u in strays:
            if self.abort(u.key, u.upload_id) is None:
                aborted += 1
        return aborted


def report_abort(bus: EventBus, bucket: str, key: str, upload_id: str, error: S3PumpError | None,
                 reason: str) -> None:
    """MultipartAborted, or (``error``) MultipartAbortFailed and a warning: the registry keeps the
    upload (the run's final sweep tries again), and so does the journal."""
    if error is None:
        bus.emit(MultipartAborted(key, upload_id, reason))
        return
    _log.warning("s3://%s/%s: aborting multipart upload %s failed (%s); it stays open until a rerun "
                 "or `s3pump cleanup s3://%s/%s --older-than 0s` aborts it", bucket, key, upload_id,
                 error, bucket, key)
    bus.emit(MultipartAbortFailed(key, upload_id, error))
