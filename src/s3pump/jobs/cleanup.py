"""``s3pump cleanup``: abort orphaned multipart uploads under ``s3://bucket/prefix``.

An upload that was never completed nor aborted (a killed client, a lost network)
keeps its parts, and their storage is billed, until AbortMultipartUpload (S3 API
reference, AbortMultipartUpload; a bucket lifecycle rule with
``AbortIncompleteMultipartUpload`` does the same server-side). ``cleanup`` lists
them (ListMultipartUploads) and aborts those initiated more than ``older_than_s``
ago, so uploads still in progress elsewhere are left alone. It also forgets any
such upload in the local resume journals, so a rerun starts it over. First, whatever
their age, it aborts what runs that are gone recorded in the state directory as to
abort: the aborts that failed in earlier runs, and the uploads of a killed ``sync`` or
``stream`` (see :mod:`s3pump.intents`); a journal a live run holds is left alone.
"""

from __future__ import annotations

import time

from ..config import TransferConfig
from ..errors import S3PumpError, UsageError
from ..intents import dead_run_uploads, sweep_dead_runs
from ..journal import forget_uploads
from ..reports import CleanupReport
from ..run import Run
from ..session import state_dir
from ..store.base import Store
from ..urls import parse_s3_url

__all__ = ["cleanup"]


def cleanup(
    destination: str,
    older_than_s: float,
    config: TransferConfig | None = None,
    *,
    dry_run: bool = False,
    embedded: bool = False,
    store: Store | None = None,
) -> CleanupReport:
    """Abort the multipart uploads under ``destination`` (``s3://bucket/prefix``) initiated
    more than ``older_than_s`` seconds ago; with ``dry_run`` only list them.

    Raises:
        UsageError: a bad URL or a negative age (exit 2).
        NoSuchBucketError, CredentialsError: the bucket check failed (exit 2).
    """
    if older_than_s < 0:
        raise UsageError("--older-than must be >= 0")
    config = config or TransferConfig.from_env()
    dest = parse_s3_url(destination)
    aborted: list[tuple[str, str]] = []
    kept: list[tuple[str, str]] = []
    failed: list[tuple[str, str, str]] = []
    cutoff = time.time() - older_than_s
    with Run("cleanup", config, dest.bucket, store=store, embedded=embedded) as run:
        store = run.store
        journals = state_dir() / "journals"
        doomed: set[str] = set()  # a dry run's: what the sweep would abort whatever its age
        if dry_run:
            listed = list(store.list_multipart_uploads(dest.bucket, dest.prefix))
            doomed = dead_run_uploads(journals, run.config.endpoint_url, dest.bucket, dest.prefix, listed)
        else:  # what runs that are gone recorded as to abort, whatever its age
            for pending in sweep_dead_runs(journals, store, run.config.endpoint_url, dest.bucket, dest.prefix,
                                           policy=run.policy):
                aborted.append((f"s3://{dest.bucket}/{pending.key}", pending.upload_id))
            listed = list(store.list_multipart_uploads(dest.bucket, dest.prefix))
        for u in listed:
            entry = (dest.key_url(u.key), u.upload_id)
            if u.initiated > cutoff and u.upload_id not in doomed:
                kept.append(entry)
                continue
            if dry_run:
                aborted.append(entry)
                continue
            try:  # another run's orphan: the one abort outside a run's own registry (retried by its policy)
                run.policy.call(store.abort_multipart_upload, dest.bucket, u.key, u.upload_id, what=(u.key, None))
            except S3PumpError as e:
                failed.append((*entry, str(e)))
                continue
            aborted.append(entry)
    if aborted and not dry_run:
        forget_uploads(state_dir() / "journals", (upload_id for _, upload_id in aborted))
    return CleanupReport(aborted, kept, failed, dry_run)
