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

With ``iceberg``, it also deletes the files of the Iceberg tables under the prefix that no snapshot
references (a killed ``export --table-format iceberg``'s data files and manifests), last modified more
than ``older_than_s`` ago (``export/iceberg_orphans.py``).
"""

from __future__ import annotations

import time

from ..config import TransferConfig
from ..errors import S3PumpError, UsageError
from ..intents import dead_run_uploads, sweep_dead_runs
from ..journal_aborts import forget_uploads
from ..reports import CleanupReport
from ..run import Run
from ..session import state_dir
from ..store.base import Store
from ..urls import S3Url, parse_s3_url

__all__ = ["cleanup"]


def cleanup(
    destination: str,
    older_than_s: float,
    config: TransferConfig | None = None,
    *,
    dry_run: bool = False,
    iceberg: bool = False,
    embedded: bool = False,
    store: Store | None = None,
) -> CleanupReport:
    """Abort the multipart uploads under ``destination`` (``s3://bucket/prefix``) initiated
    more than ``older_than_s`` seconds ago; with ``dry_run`` only list them. ``iceberg``: also delete the
    unreferenced files of the Iceberg tables under it older than that (``report.iceberg_deleted``).

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
        found = _iceberg_orphans(run, dest, cutoff, dry_run) if iceberg else ([], [], [])
    report = CleanupReport(aborted, kept, failed, dry_run, *found)
    if aborted and not dry_run:
        forget_uploads(state_dir() / "journals", (upload_id for _, upload_id in aborted))
    return report


def _iceberg_orphans(run: Run, dest: S3Url, cutoff_s: float, dry_run: bool
                     ) -> tuple[list[str], list[str], list[tuple[str, str]]]:
    """List (and, unless ``dry_run``, delete) the Iceberg tables' orphans under ``dest``: the URLs deleted (or
    to delete), kept (too young), and failed (with the error: a file not deleted, a table left alone).

    Raises:
        UsageError: the run's store is no S3 endpoint (pyiceberg's FileIO is set up with it).
    """
    from ..events import Event, ObjectDeleted
    from ..export.iceberg_orphans import find_orphans
    from ..export.iceberg_table import io_properties

    tables = find_orphans(dest.bucket, run.store.list_objects(dest.bucket, dest.prefix), cutoff_s,
                          lambda: io_properties(run))
    orphans = [key for t in tables for key in t.orphans]
    kept = [dest.key_url(k) for t in tables for k in t.kept]
    failed = [(f"s3://{dest.bucket}/{t.root}/", t.error) for t in tables if t.error]
    if dry_run:
        return [dest.key_url(k) for k in orphans], kept, failed
    refused: dict[str, str] = {}

    def note(event: Event) -> None:
        if isinstance(event, ObjectDeleted) and event.error is not None:
            refused[event.key] = str(event.error)

    run.subscribe(note)
    run.delete(orphans)
    failed += [(dest.key_url(k), error) for k, error in refused.items()]
    return [dest.key_url(k) for k in orphans if k not in refused], kept, failed
