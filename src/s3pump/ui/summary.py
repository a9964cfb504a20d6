"""The end-of-run lines on stderr (and a sync dry run's plan on stdout), from a job's report and events."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import IO, TYPE_CHECKING, Any

from ..events import Event, ObjectDeleted, UploadPlanned
from ..reports import UploadReport
from ..units import format_bytes, format_rate
from .console import LineConsole, print_failure, stderr_console
from .stdout_guard import GuardedStdout

if TYPE_CHECKING:
    from ..reports import CleanupReport, ExportReport, StreamReport, SyncReport

__all__ = [
    "SyncPlanPrinter", "print_cleanup", "print_export_dry_run", "print_export_summary", "print_summary",
    "print_sync_summary",
    "stream_summary",
]


def print_summary(report: UploadReport, *, verb: str = "uploaded", destination: str = "s3://BUCKET/",
                  console: LineConsole | None = None) -> None:
    """The end-of-run summary of an upload on stderr, and the failures (the first 20)."""
    console = console or stderr_console()
    if report.dry_run:
        line = (f"dry run: would upload {report.files_skipped} files, {format_bytes(report.bytes_skipped)}; "
                f"{report.files_failed} could not be planned (listed below); nothing was sent")
        report = replace(report, files_skipped=0)
    else:
        line = (
            f"{verb} {report.files_done} files, {format_bytes(report.bytes_done)} in {report.elapsed_s:.1f} s "
            f"({format_rate(report.rate_bps)}); retries {report.retries}; failures {report.files_failed}"
        )
        if report.files_done or report.retries:  # percentiles of requests this run made (none: none)
            line += (f"; latency p50 {report.latency_p50_s * 1000:.1f} ms, "
                     f"p99 {report.latency_p99_s * 1000:.1f} ms")
    if report.files_skipped:
        line += f"; skipped {report.files_skipped}"
    console.print(line)
    if report.cluster:
        _print_cluster(console, report.cluster)
    _print_failures(console, report, destination, verb="upload")


def _print_cluster(console: LineConsole, cluster: dict[str, Any], *, tasks: str = "shards", items: str = "files"
                   ) -> None:
    """``--cluster``: shards (an export's ranges), where the walk ran, then one line per worker with its
    rate over its busy time."""
    console.print(f"cluster: {cluster['workers']} workers; {tasks} {cluster['shards_done']} done, "
                  f"{cluster['shards_failed']} failed of {cluster['shards_planned']} submitted")
    walk = cluster.get("walk") or {}
    if walk.get("on") == "workers":
        failed = f", {walk['failed']} failed" if walk.get("failed") else ""
        console.print(f"  walk on the workers: {walk['tasks']:,} tasks listed {walk['dirs']:,} directories, "
                      f"found {walk['files']:,} files{failed}")
    for w in cluster["per_worker"]:
        console.print(f"  worker {w['worker']}: {w['shards']} {tasks}, {w['files']} {items}, "
                      f"{format_bytes(w['bytes'])} in {w['busy_s']:.1f} s busy ({format_rate(w['rate_bps'])})")


def _print_failures(console: LineConsole, report: UploadReport, destination: str, *, verb: str) -> None:
    if report.files_failed:
        for f in report.failed[:20]:
            what = f.error if f.error.startswith(f.source) else f"{f.source}: {f.error}"
            print_failure(console, "failed", what)
        if report.files_failed > 20:
            console.print(f"... and {report.files_failed - 20} more")
        if report.failed_list_path:
            console.print(f"failed files written to {report.failed_list_path}; "
                          f"retry with: s3pump upload --from-list {report.failed_list_path} {destination}"
                          + ("" if verb == "upload" else f" (or run the same {verb} again)"))


class SyncPlanPrinter:
    """Sync's human output. With ``dry_run``: the plan on stdout, one line per upload
    (``(dry-run) upload: PATH to s3://bucket/key  [reason]``) and per delete. Otherwise, on
    stderr: the files uploaded only because their contents could not be compared exactly
    (first 20, with the reason), and failed deletes."""

    MAX_NOTES = 20

    def __init__(self, destination: str, *, dry_run: bool, stream: IO[str] | None = None,
                 console: LineConsole | None = None) -> None:
        self.bucket = destination[5:].partition("/")[0]
        self.dry_run = dry_run
        self.stream = GuardedStdout(stream)
        self.console = console or stderr_console()
        self.notes = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, UploadPlanned):
            if self.dry_run:
                self.stream.write(f"(dry-run) upload: {event.source} to s3://{self.bucket}/{event.key}  "
                                  f"[{event.reason}]\n")
            elif event.fallback:
                self.notes += 1
                if self.notes <= self.MAX_NOTES:
                    self.console.print(f"note: uploading s3://{self.bucket}/{event.key}: {event.reason}",
                                       markup=False)
                elif self.notes == self.MAX_NOTES + 1:
                    self.console.print("note: more files uploaded for the same kind of reason; --json lists all")
        elif isinstance(event, ObjectDeleted):
            if event.error is not None:
                print_failure(self.console, "delete failed", f"s3://{self.bucket}/{event.key}: {event.error}")
            elif event.dry_run:
                self.stream.write(f"(dry-run) delete: s3://{self.bucket}/{event.key}\n")


def print_sync_summary(report: SyncReport, *, destination: str = "s3://BUCKET/",
                       console: LineConsole | None = None) -> None:
    """Sync's summary on stderr, in sync's terms: what was planned, uploaded, deleted and unchanged."""
    console = console or stderr_console()
    hashed = ""
    if report.files_hashed or report.hash_cache_hits:
        hashed = (f"; hashed {report.files_hashed} files ({format_bytes(report.bytes_hashed)}), "
                  f"{report.hash_cache_hits} from the hash cache")
    if report.dry_run:
        done = (f"would upload {report.planned_uploads} new or changed, would delete {report.planned_deletes}"
                f" ({format_bytes(report.planned_delete_bytes)})")
    else:
        done = f"uploaded {report.files_done} of {report.planned_uploads} new or changed"
        if report.files_done:
            done += (f" ({format_bytes(report.bytes_done)} in {report.elapsed_s:.1f} s, "
                     f"{format_rate(report.rate_bps)})")
        done += f", deleted {report.objects_deleted}"
        if report.deletes_failed:
            done += f" (failed {report.deletes_failed})"
        if report.files_failed:
            done += f", failed {report.files_failed}"
    if report.deletes_withheld:
        done += f"; {report.deletes_withheld} deletes withheld (under local paths that could not be read)"
    if report.retries:
        done += f"; retries {report.retries}"
    console.print(
        f"sync ({report.mode}): {'dry run, nothing changed: ' if report.dry_run else ''}"
        f"{report.local_files} local files, {report.remote_objects} objects; {done}; "
        f"{report.files_skipped} unchanged, {report.remote_only_kept} remote-only kept{hashed}",
        markup=False,
    )
    if report.fallback_uploads:
        console.print(f"{report.fallback_uploads} files were uploaded because their contents could not be "
                      "compared exactly (see the notes above or --json)", markup=False)
    if report.cluster:
        _print_cluster(console, report.cluster)
    _print_failures(console, report, destination, verb="sync")


def print_export_summary(r: ExportReport, console: LineConsole | None = None) -> None:
    """The end-of-run summary of an export on stderr."""
    console = console or stderr_console()
    line = (f"exported {r.rows_exported:,} rows of {r.table} in {r.objects_written:,} objects "
            f"({format_bytes(r.bytes_written)}) to {r.destination} in {r.elapsed_s:.1f} s "
            f"({r.rows_per_s:,.0f} rows/s); checkpoint {r.checkpoint}; retries {r.retries}")
    if r.objects_skipped:
        line += f"; unchanged {r.objects_skipped} objects ({r.rows_unchanged:,} rows)"
    if r.replayed_entries:
        line += f"; replayed {r.replayed_entries} dead-letter entries"
    console.print(line, markup=False)
    if r.iceberg:
        console.print(f"iceberg table {r.iceberg['table']} at {r.iceberg['location']}, catalog {r.iceberg['catalog']}",
                      markup=False)
    if r.stopped:
        console.print("stopped on request after the in-flight batches; rerun to continue", markup=False)
    if r.cluster and r.cluster["workers"]:
        _print_cluster(console, r.cluster, tasks="ranges", items="objects")
        for f in r.failed[:20]:  # ranges the workers did not finish (their cuts stay in the checkpoint)
            console.print(f"failed {f.source}: {f.error}", markup=False)
    if not r.ok:
        console.print(f"failures: {r.rows_failed} rows, {r.objects_failed} objects; dead-letter entries in "
                      f"{r.dlq} (retry with --replay-dlq):", markup=False)
        for e in r.dlq_entries[:20]:
            console.print(f"  {e}", markup=False)


def print_export_dry_run(r: ExportReport, out: IO[str] | None = None) -> None:
    """``export --dry-run``: one stdout line per object it would write (the aws cli's ``(dryrun)`` form)."""
    out = out or sys.stdout
    bucket = r.destination.removeprefix("s3://").split("/", 1)[0]
    for o in r.would_write:
        print(f"(dryrun) export: {o['source']} ({o['rows']} rows, {format_bytes(o['bytes'])}) to "
              f"s3://{bucket}/{o['key']}", file=out, flush=True)
    for key in r.would_delete:
        print(f"(dryrun) delete: s3://{bucket}/{key} (superseded)", file=out, flush=True)


def stream_summary(report: StreamReport) -> str:
    """The one-line summary printed on stderr."""
    how = f"{report.parts} parts" if report.parts else "a single PUT"
    return (f"streamed {format_bytes(report.bytes)} to s3://{report.bucket}/{report.key} in {report.elapsed_s:.1f} s "
            f"({format_rate(report.rate_bps)}) as {how}; "
            + (f"{report.checksum_algorithm} {report.checksum} (checked by the server); " if report.checksum else "")
            + (f"md5 {report.md5}; " if report.md5 else "") + (f"sha256 {report.sha256}; " if report.sha256 else "")
            + f"retries {report.retries}")


def print_cleanup(report: CleanupReport, *, older_than: str, json_output: bool) -> None:
    """What ``s3pump cleanup`` aborted (``--json``: one line per upload on stdout), and a count."""
    import json

    console = stderr_console()
    out = GuardedStdout()
    verb = "would abort" if report.dry_run else "aborted"
    for url, upload_id in report.aborted:
        if json_output:
            out.write(json.dumps({"event": "would_abort" if report.dry_run else "aborted", "key": url,
                                  "upload_id": upload_id}) + "\n")
        else:
            console.print(f"{verb} {url} (upload ID {upload_id})", markup=False)
    out.flush()
    for url, upload_id, error in report.failed:
        console.print(f"failed to abort {url} (upload ID {upload_id}): {error}", markup=False)
    console.print(f"{verb} {len(report.aborted)} multipart upload(s); kept {len(report.kept)} newer than "
                  f"{older_than}; failures {len(report.failed)}", markup=False)
    if report.iceberg_deleted or report.iceberg_kept or report.iceberg_failed:
        _print_iceberg_cleanup(report, older_than=older_than, json_output=json_output)


def _print_iceberg_cleanup(report: CleanupReport, *, older_than: str, json_output: bool) -> None:
    """``cleanup --iceberg``: each unreferenced file deleted (``--json``: a line on stdout), and a count."""
    import json

    console = stderr_console()
    out = GuardedStdout()
    verb = "would delete" if report.dry_run else "deleted"
    for url in report.iceberg_deleted:
        if json_output:
            out.write(json.dumps({"event": "would_delete" if report.dry_run else "deleted", "key": url,
                                  "reason": "iceberg orphan"}) + "\n")
        else:
            console.print(f"{verb} {url} (no Iceberg snapshot references it)", markup=False)
    out.flush()
    for url, error in report.iceberg_failed:
        console.print(f"iceberg: {url}: {error}", markup=False)
    console.print(f"{verb} {len(report.iceberg_deleted)} unreferenced Iceberg file(s); kept "
                  f"{len(report.iceberg_kept)} newer than {older_than}; failures {len(report.iceberg_failed)}",
                  markup=False)
