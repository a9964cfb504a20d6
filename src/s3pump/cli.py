"""The ``s3pump`` command line: one small function per verb over the Python API.

Exit codes: 0 everything done; 1 some files failed (they are listed); 2 usage or
configuration error (bad flag, bad URL, missing bucket, bad credentials);
130 cancelled by Ctrl-C or SIGTERM. Errors are one line on stderr, never a traceback
(``--debug`` adds one).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from .config import TransferConfig
from .errors import EXIT_CANCELLED, S3PumpError, UsageError
from .logs import configure_logging
from .metrics import RunMetrics
from .output import (
    JsonLines,
    PlainProgress,
    ProgressView,
    SyncPlanPrinter,
    print_summary,
    print_sync_summary,
    stderr_console,
)
from .units import parse_size_bytes

__all__ = ["app", "main"]

app = typer.Typer(
    name="s3pump",
    help="Move data into S3 and S3-compatible object stores: fast, in bounded memory, without losing a byte.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

T = TypeVar("T")

# ---- options shared by every command that talks to S3 (declared once) ----
Endpoint = Annotated[str | None, typer.Option("--endpoint-url", help="S3 endpoint, e.g. http://127.0.0.1:8333 "
                                              "[env: AWS_ENDPOINT_URL]")]
Region = Annotated[str | None, typer.Option("--region", help="Signing region [env: AWS_REGION]")]
Profile = Annotated[str | None, typer.Option("--profile", help="Profile of ~/.aws/config [env: AWS_PROFILE]")]
Embedded = Annotated[bool, typer.Option("--embedded", help="Use the local SeaweedFS (started if needed); "
                                        "creates the bucket")]
Concurrency = Annotated[str | None, typer.Option(
    "--concurrency", "-c", help="Requests in flight, or 'auto' (adaptive, AIMD) [default 64] "
    "[env: S3PUMP_CONCURRENCY]")]
PartSize = Annotated[str | None, typer.Option("--part-size", help="Multipart part size, e.g. 8MiB [default 8MiB]")]
Checksum = Annotated[str | None, typer.Option(
    "--checksum-algorithm", help="CRC32C (default), CRC32, CRC64NVME, SHA1, SHA256, or none for servers "
    "without checksum support")]
ContentType = Annotated[str | None, typer.Option("--content-type", help="Content-Type [default: from name]")]
Acl = Annotated[str | None, typer.Option("--acl", help="Canned ACL, e.g. bucket-owner-full-control")]
Sse = Annotated[str | None, typer.Option("--sse", help="Server-side encryption: AES256 or aws:kms")]
SseKms = Annotated[str | None, typer.Option("--sse-kms-key-id", help="KMS key ID for --sse aws:kms")]
StorageClass = Annotated[str | None, typer.Option("--storage-class", help="e.g. STANDARD_IA, GLACIER_IR")]
Metadata = Annotated[list[str] | None, typer.Option("--metadata", help="k=v user metadata (repeatable)")]
Json = Annotated[bool, typer.Option("--json", help="One JSON event per file and a summary on stdout")]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No progress bar")]
Debug = Annotated[bool, typer.Option("--debug", help="Debug logs on stderr (secrets redacted)")]
# ---- the local walk (upload, sync) ----
Include = Annotated[list[str] | None, typer.Option("--include", help="Glob of paths to take")]
Exclude = Annotated[list[str] | None, typer.Option("--exclude", help="Glob of paths to skip")]
FailedList = Annotated[Path | None, typer.Option("--failed-list", help="Where to write failed files "
                                                 "[default: state dir]")]
FollowSymlinks = Annotated[bool, typer.Option("--follow-symlinks", help="Follow symbolic links")]
# ---- limits and observation (engine/limits.py, metrics.py) ----
MaxRps = Annotated[float | None, typer.Option("--max-rps", help="At most N requests a second [env: S3PUMP_MAX_RPS]")]
RpsBurst = Annotated[int | None, typer.Option("--rps-burst", help="Requests allowed at once after a pause "
                                              "[default max-rps/10]")]
BwLimit = Annotated[str | None, typer.Option("--bwlimit", help="Upload bandwidth cap in bytes/s, e.g. 10M, 1.5G "
                                             "(M = 10^6) [env: S3PUMP_BWLIMIT]")]
MinConcurrency = Annotated[int | None, typer.Option("--min-concurrency", help="Floor for --concurrency auto [4]")]
MaxConcurrency = Annotated[int | None, typer.Option("--max-concurrency", help="Ceiling for --concurrency auto [256]")]
MetricsPort = Annotated[int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on "
                                                 "127.0.0.1:PORT/metrics during the run")]
MetricsFile = Annotated[Path | None, typer.Option("--metrics-file", help="Write the final summary and metrics "
                                                  "as JSON")]
ProgressMode = Annotated[str | None, typer.Option("--progress", help="bar (default on a terminal), plain (a line "
                                                  "every 5 s, for logs and CI) or none")]


def _metadata_pairs(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise S3PumpError(f"--metadata {item!r}: use key=value")
        pairs.append((k, v))
    return tuple(pairs)


def _config(**flags: Any) -> TransferConfig:
    """Defaults < environment < flags. Sizes, rates and ``--concurrency auto`` given as text are parsed here."""
    concurrency = flags.get("concurrency")
    if isinstance(concurrency, str):
        if concurrency.lower() == "auto":
            flags["concurrency"] = None
            flags["adaptive_concurrency"] = True
        elif concurrency.isdigit():
            flags["concurrency"] = int(concurrency)
        else:
            raise UsageError(f"--concurrency {concurrency!r}: give a number or 'auto'")
    if flags.get("max_bandwidth_bps") is not None:
        flags["max_bandwidth_bps"] = parse_size_bytes(flags["max_bandwidth_bps"], what="--bwlimit")
    if flags.get("part_size_bytes") is not None:
        flags["part_size_bytes"] = parse_size_bytes(flags["part_size_bytes"], what="--part-size")
    if "metadata" in flags:
        flags["metadata"] = _metadata_pairs(flags["metadata"]) or None
    return TransferConfig.from_env(**flags)


def _run(debug: bool, fn: Callable[[], T]) -> T:
    """Run a command body: map s3pump errors to one line and an exit code; SIGTERM acts as Ctrl-C."""
    configure_logging(debug)
    console = stderr_console()

    from .engine.scheduler import interrupt

    previous = signal.signal(signal.SIGTERM, interrupt)  # the engine, while it runs, cancels at a safe point
    try:
        return fn()
    except S3PumpError as e:
        if debug:
            logging.getLogger("s3pump").exception("failed")
        console.print(f"s3pump: error: {e}", markup=False, highlight=False)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        console.print("s3pump: cancelled", markup=False)
        raise typer.Exit(EXIT_CANCELLED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Observers:
    """A run's views of its events: ``--json`` lines, the progress display and metrics.

    Use as a context manager; ``subscribers`` go to the job, ``finish(summary)`` writes the JSON
    summary and ``--metrics-file``.
    """

    def __init__(self, *, json_output: bool, progress: str | None, no_progress: bool,
                 totals: Callable[[], tuple[int, int, bool]], metrics_port: int | None = None,
                 metrics_file: Path | None = None, bar: Callable[[], Any] | None = None,
                 json_events: bool = True) -> None:
        mode = "none" if no_progress else (progress or "bar")
        if mode not in ("bar", "plain", "none"):
            raise UsageError(f"--progress {mode!r}: use bar, plain or none")
        self.json = JsonLines() if json_output else None
        self.bar: Any = (bar or (lambda: ProgressView(totals)))() if mode == "bar" and sys.stderr.isatty() else None
        self.plain = PlainProgress(totals) if mode == "plain" else None
        self.metrics = RunMetrics() if metrics_port is not None or metrics_file is not None else None
        self.metrics_port = metrics_port
        self.metrics_file = metrics_file
        events = self.json if json_events else None
        bar_events = self.bar if callable(self.bar) else None  # some bars read counters instead of events
        self.subscribers: list[Any] = [v for v in (events, bar_events, self.plain, self.metrics) if v is not None]

    def __enter__(self) -> _Observers:
        if self.metrics is not None and self.metrics_port is not None:
            try:
                self.metrics.serve(self.metrics_port)
            except OSError as e:
                raise UsageError(f"--metrics-port {self.metrics_port}: {e.strerror}") from None
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
        if self.metrics is not None:
            self.metrics.close()

    def finish(self, summary: dict[str, Any]) -> None:
        if self.plain is not None:
            self.plain.print_line()
        if self.json is not None:
            self.json.summary(summary)
        if self.metrics is not None and self.metrics_file is not None:
            self.metrics.write(self.metrics_file, summary)


@contextlib.contextmanager
def _progress(enabled: bool, totals: Callable[[], tuple[int, int, bool]]) -> Iterator[ProgressView | None]:
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with ProgressView(totals) as view:
        yield view


@app.command()
def upload(
    paths: Annotated[list[str] | None, typer.Argument(help="Files and directories to upload")] = None,
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix")] = "",
    include: Include = None,
    exclude: Exclude = None,
    from_list: Annotated[Path | None, typer.Option("--from-list", help="Upload exactly the entries of a "
                                                   "failed-list (or a file of paths)")] = None,
    failed_list: FailedList = None,
    follow_symlinks: FollowSymlinks = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; send nothing")] = False,
    no_resume: Annotated[bool, typer.Option("--no-resume", help="Ignore the resume journal of an earlier run "
                                            "of this command: abort its uploads and start over")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, embedded: Embedded = False,
    concurrency: Concurrency = None, part_size: PartSize = None, checksum_algorithm: Checksum = None,
    content_type: ContentType = None, acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None,
    storage_class: StorageClass = None, metadata: Metadata = None,
    max_rps: MaxRps = None, rps_burst: RpsBurst = None, bwlimit: BwLimit = None,
    min_concurrency: MinConcurrency = None, max_concurrency: MaxConcurrency = None,
    metrics_port: MetricsPort = None, metrics_file: MetricsFile = None, progress: ProgressMode = None,
    json_output: Json = False, no_progress: NoProgress = False, debug: Debug = False,
) -> None:
    """Upload files and directory trees to s3://bucket/prefix, in parallel."""
    from .jobs.upload import upload as upload_api
    from .sources.walk import WalkTotals

    args = list(paths or [])
    if not destination and args:  # `upload --from-list F s3://b/p`: the URL lands in PATHS
        destination = args.pop()
    if not destination:
        raise typer.BadParameter("missing destination s3://bucket/prefix")

    def body() -> int:
        config = _config(
            endpoint_url=endpoint_url, region=region, profile=profile, concurrency=concurrency,
            part_size_bytes=part_size, checksum_algorithm=checksum_algorithm, content_type=content_type,
            acl=acl, sse=sse, sse_kms_key_id=sse_kms_key_id, storage_class=storage_class, metadata=metadata,
            follow_symlinks=follow_symlinks or None, max_rps=max_rps, rps_burst=rps_burst,
            max_bandwidth_bps=bwlimit, min_concurrency=min_concurrency, max_concurrency=max_concurrency,
        )
        totals = WalkTotals()
        with _Observers(json_output=json_output, progress=progress, no_progress=no_progress,
                        totals=lambda: (totals.files, totals.bytes, totals.finished),
                        metrics_port=metrics_port, metrics_file=metrics_file) as observers:
            report = upload_api(
                args, destination, config, include=include or (), exclude=exclude or (),
                from_list=from_list, dry_run=dry_run, embedded=embedded, failed_list=failed_list,
                subscribers=observers.subscribers, totals=totals, resume=not no_resume,
            )
            observers.finish(report.to_json())
        print_summary(stderr_console(), report, verb="would upload" if dry_run else "uploaded",
                      destination=destination)
        return 0 if report.ok else 1

    code = _run(debug, body)
    raise typer.Exit(code)


@app.command()
def sync(
    source_dir: Annotated[Path, typer.Argument(help="Local directory to sync from")],
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix")],
    size_only: Annotated[bool, typer.Option("--size-only", help="Upload only when the size differs")] = False,
    checksum: Annotated[bool, typer.Option("--checksum", help="Compare contents: MD5 vs ETag (multipart-aware) "
                                           "or the object's md5 metadata")] = False,
    delete: Annotated[bool, typer.Option("--delete", help="Delete objects under the prefix with no local "
                                         "file")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (uploads, deletes, counts); "
                                          "change nothing")] = False,
    include: Include = None,
    exclude: Exclude = None,
    no_hash_cache: Annotated[bool, typer.Option("--no-hash-cache", help="Hash every file again (no local "
                                                "MD5 cache)")] = False,
    failed_list: FailedList = None,
    follow_symlinks: FollowSymlinks = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, embedded: Embedded = False,
    concurrency: Concurrency = None, part_size: PartSize = None, checksum_algorithm: Checksum = None,
    content_type: ContentType = None, acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None,
    storage_class: StorageClass = None, metadata: Metadata = None,
    max_rps: MaxRps = None, rps_burst: RpsBurst = None, bwlimit: BwLimit = None,
    min_concurrency: MinConcurrency = None, max_concurrency: MaxConcurrency = None,
    metrics_port: MetricsPort = None, metrics_file: MetricsFile = None, progress: ProgressMode = None,
    json_output: Json = False, no_progress: NoProgress = False, debug: Debug = False,
) -> None:
    """Upload the new and changed files of a directory to s3://bucket/prefix (and --delete what is gone)."""
    from .jobs.sync import sync as sync_api
    from .sources.walk import WalkTotals

    if size_only and checksum:
        raise typer.BadParameter("--size-only and --checksum exclude each other")

    def body() -> int:
        config = _config(
            endpoint_url=endpoint_url, region=region, profile=profile, concurrency=concurrency,
            part_size_bytes=part_size, checksum_algorithm=checksum_algorithm, content_type=content_type,
            acl=acl, sse=sse, sse_kms_key_id=sse_kms_key_id, storage_class=storage_class, metadata=metadata,
            follow_symlinks=follow_symlinks or None, max_rps=max_rps, rps_burst=rps_burst, max_bandwidth_bps=bwlimit,
            min_concurrency=min_concurrency, max_concurrency=max_concurrency,
        )
        totals = WalkTotals()
        with _Observers(json_output=json_output, progress=progress, no_progress=no_progress or dry_run,
                        totals=lambda: (totals.files, totals.bytes, totals.finished),
                        metrics_port=metrics_port, metrics_file=metrics_file) as observers:
            printer = [] if json_output else [SyncPlanPrinter(destination, dry_run=dry_run)]
            report = sync_api(
                source_dir, destination, config, mode="size-only" if size_only else "checksum" if checksum
                else "default", delete=delete, dry_run=dry_run, include=include or (), exclude=exclude or (),
                embedded=embedded, failed_list=failed_list, subscribers=[*printer, *observers.subscribers],
                hash_cache=not no_hash_cache, totals=totals,
            )
            observers.finish(report.to_json())
        console = stderr_console()
        if not dry_run:
            print_summary(console, report, verb="uploaded", destination=destination)
        print_sync_summary(console, report)
        return 0 if report.ok else 1

    code = _run(debug, body)
    raise typer.Exit(code)


@app.command()
def generate(
    directory: Annotated[Path, typer.Argument(help="Directory to write into")],
    count: Annotated[int, typer.Option("--count", "-n", help="Number of files")] = 100,
    size: Annotated[str | None, typer.Option("--size", help="Size of every file, e.g. 4KiB")] = None,
    size_min: Annotated[str | None, typer.Option("--size-min", help="Smallest size (log-uniform)")] = None,
    size_max: Annotated[str | None, typer.Option("--size-max", help="Largest size (log-uniform)")] = None,
    files_per_dir: Annotated[int, typer.Option("--files-per-dir", help="Files per subdirectory")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
) -> None:
    """Write test files fast (fixed size, or a log-uniform size distribution)."""
    from .jobs.generate import generate as generate_api
    from .units import format_bytes

    def body() -> None:
        if size is None and size_min is None and size_max is None:
            size_bytes: int | None = 4096
        else:
            size_bytes = parse_size_bytes(size, what="--size") if size is not None else None
        t0 = time.monotonic()
        rep = generate_api(
            directory, count=count, size_bytes=size_bytes,
            size_min_bytes=parse_size_bytes(size_min, what="--size-min") if size_min else None,
            size_max_bytes=parse_size_bytes(size_max, what="--size-max") if size_max else None,
            files_per_dir=files_per_dir, seed=seed,
        )
        stderr_console().print(f"wrote {rep.files} files, {format_bytes(rep.bytes)} to {rep.directory} "
                               f"in {time.monotonic() - t0:.1f} s")

    _run(False, body)


@app.command()
def serve(
    port: Annotated[int | None, typer.Option("--port", help="S3 port [default: a free port]")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data directory [default: the "
                                                  "embedded server's]")] = None,
    stop_embedded: Annotated[bool, typer.Option("--stop-embedded", help="Stop the background server that "
                                                "--embedded started (its data is kept), then exit")] = False,
) -> None:
    """Run a local S3 server (SeaweedFS) on 127.0.0.1 in the foreground, until Ctrl-C."""
    from .devserver import embedded_dir, start_server, stop_server
    from .devserver import stop_embedded as stop_embedded_server

    def body() -> None:
        if stop_embedded:
            stopped = stop_embedded_server()
            stderr_console().print(f"stopped the embedded server at {stopped.endpoint_url}" if stopped
                                   else "no embedded server is running", markup=False)
            return
        directory = data_dir or embedded_dir().parent / "serve"
        server, proc = start_server(directory, s3_port=port)
        print(f"endpoint:   {server.endpoint_url}\naccess key: {server.access_key_id}\n"
              f"secret key: {server.secret_access_key}\nregion:     {server.region}\n"
              f"data dir:   {server.data_dir}", flush=True)
        stderr_console().print(
            f"export AWS_ENDPOINT_URL={server.endpoint_url} AWS_ACCESS_KEY_ID={server.access_key_id} "
            f"AWS_SECRET_ACCESS_KEY=... ; Ctrl-C stops the server", markup=False)
        try:
            proc.wait()
        finally:
            stop_server(proc)

    _run(False, body)


@app.command()
def export(
    db: Annotated[str, typer.Argument(help="SQLite file path, or an SQLAlchemy URL (needs s3pump\\[sql])")],
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix")],
    table: Annotated[str, typer.Option("--table", "-t", help="Table to export")],
    cursor_column: Annotated[str | None, typer.Option(
        "--cursor-column", help="Increasing column that orders and resumes the export \\[default: integer "
        "primary key]")] = None,
    batch_rows: Annotated[int, typer.Option("--batch-rows", help="Rows per batch")] = 100_000,
    partition_by: Annotated[list[str] | None, typer.Option(
        "--partition-by", help="time:COLUMN:hour|day|month\\[:epoch-s|:epoch-ms] or column:COL (repeatable, "
        "nested in order)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet, jsonl or protobuf")] = "parquet",
    compression: Annotated[str | None, typer.Option("--compression", help="parquet: zstd|snappy|gzip|none; "
                                                    "jsonl: gzip|zstd|none")] = None,
    one_object_per_row: Annotated[bool, typer.Option("--one-object-per-row", help="The lab layout: "
                                                     "<entity>/date=YYYY-MM-DD/<id>_<unix>.<ext>")] = False,
    dedup: Annotated[bool, typer.Option("--dedup", help="Write only groups whose rows changed (content hash "
                                        "per row; scans the whole table)")] = False,
    dlq: Annotated[str | None, typer.Option("--dlq", help="Dead-letter queue: a directory or s3:// prefix "
                                            "\\[default: DESTINATION/_dlq/]")] = None,
    replay_dlq: Annotated[bool, typer.Option("--replay-dlq", help="Export the dead-letter entries again")] = False,
    follow: Annotated[bool, typer.Option("--follow", help="Keep exporting new rows until SIGINT/SIGTERM")] = False,
    poll_interval: Annotated[str, typer.Option("--poll-interval", help="Poll period of --follow, e.g. 30s")] = "30s",
    state_file: Annotated[Path | None, typer.Option("--state-file", help="Also keep the checkpoint in this "
                                                    "local file")] = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="Ignore the checkpoint; export every row")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the objects it would write; write "
                                          "nothing")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, embedded: Embedded = False,
    concurrency: Concurrency = None, checksum_algorithm: Checksum = None, content_type: ContentType = None,
    acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None, storage_class: StorageClass = None,
    metadata: Metadata = None,
    max_rps: MaxRps = None, rps_burst: RpsBurst = None, bwlimit: BwLimit = None,
    min_concurrency: MinConcurrency = None, max_concurrency: MaxConcurrency = None,
    metrics_port: MetricsPort = None, metrics_file: MetricsFile = None, progress: ProgressMode = None,
    json_output: Json = False, no_progress: NoProgress = False, debug: Debug = False,
) -> None:
    """Export a SQL table to partitioned, idempotent objects (Parquet, JSON Lines, protobuf), incrementally.

    SIGINT/SIGTERM finish the in-flight batches, save the checkpoint and exit (0 with --follow).
    Exit 1 if rows or objects went to the dead-letter queue.
    """
    import threading

    from .export.report import ExportCounters, ExportProgress, print_dry_run, print_export_summary
    from .jobs.export import export_table
    from .units import parse_duration_s

    def body() -> int:
        config = _config(
            endpoint_url=endpoint_url, region=region, profile=profile, concurrency=concurrency,
            checksum_algorithm=checksum_algorithm, content_type=content_type, acl=acl, sse=sse,
            sse_kms_key_id=sse_kms_key_id, storage_class=storage_class, metadata=metadata,
            max_rps=max_rps, rps_burst=rps_burst, max_bandwidth_bps=bwlimit,
            min_concurrency=min_concurrency, max_concurrency=max_concurrency,
        )
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            if stop.is_set():  # a second signal: stop now (open multipart uploads are aborted)
                raise KeyboardInterrupt
            stop.set()
            stderr_console().print("s3pump: stopping after the in-flight batches (again to cancel now)",
                                   markup=False)

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        counters = ExportCounters()
        try:
            with _Observers(json_output=json_output, progress=progress, no_progress=no_progress,
                            totals=lambda: (counters.objects_written, counters.bytes_written, False),
                            metrics_port=metrics_port, metrics_file=metrics_file,
                            bar=lambda: ExportProgress(counters, stderr_console())) as observers:
                report = export_table(
                    db, table, destination, config, cursor_column=cursor_column, batch_rows=batch_rows,
                    partition_by=partition_by or (), format=fmt, compression=compression,
                    one_object_per_row=one_object_per_row, dedup=dedup, dlq=dlq, replay_dlq=replay_dlq,
                    follow=follow, poll_interval_s=parse_duration_s(poll_interval, what="--poll-interval"),
                    state_file=state_file, from_start=from_start, embedded=embedded,
                    subscribers=observers.subscribers, counters=counters, stop=stop, dry_run=dry_run,
                )
                if dry_run and not json_output:
                    print_dry_run(report)
                observers.finish(report.to_json())
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        print_export_summary(stderr_console(), report)
        if not report.ok:
            return 1
        return EXIT_CANCELLED if report.stopped and not follow else 0

    code = _run(debug, body)
    raise typer.Exit(code)


@app.command()
def cleanup(
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix")],
    older_than: Annotated[str, typer.Option("--older-than", help="Abort only uploads initiated longer ago "
                                            "than this, e.g. 24h, 30m, 0s")] = "24h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the uploads; abort nothing")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, embedded: Embedded = False,
    json_output: Json = False, debug: Debug = False,
) -> None:
    """Abort orphaned multipart uploads under s3://bucket/prefix (their parts cost storage until then)."""
    import json

    from .jobs.cleanup import cleanup as cleanup_api
    from .units import parse_duration_s

    def body() -> int:
        config = _config(endpoint_url=endpoint_url, region=region, profile=profile)
        age_s = parse_duration_s(older_than, what="--older-than")
        report = cleanup_api(destination, age_s, config, dry_run=dry_run, embedded=embedded)
        console = stderr_console()
        verb = "would abort" if dry_run else "aborted"
        for url, upload_id in report.aborted:
            if json_output:
                print(json.dumps({"event": "aborted" if not dry_run else "would_abort", "key": url,
                                  "upload_id": upload_id}))
            else:
                console.print(f"{verb} {url} (upload ID {upload_id})", markup=False)
        for url, upload_id, error in report.failed:
            console.print(f"failed to abort {url} (upload ID {upload_id}): {error}", markup=False)
        console.print(f"{verb} {len(report.aborted)} multipart upload(s); kept {len(report.kept)} newer than "
                      f"{older_than}; failures {len(report.failed)}", markup=False)
        return 0 if report.ok else 1

    code = _run(debug, body)
    raise typer.Exit(code)


@app.command()
def stream(
    destination: Annotated[str, typer.Argument(help="s3://bucket/key of the object to write")],
    input_path: Annotated[Path | None, typer.Option("--input", "-i", help="Read this file or FIFO instead "
                                                    "of stdin")] = None,
    expected_size: Annotated[str | None, typer.Option("--expected-size", help="Bytes the stream will have "
                                                      "(parts are sized for it; another count aborts)")] = None,
    size_tolerance: Annotated[str | None, typer.Option("--size-tolerance", help="Accepted difference from "
                                                       "--expected-size: bytes (10MiB) or percent (1%)")] = None,
    spool_dir: Annotated[Path | None, typer.Option("--spool-dir", help="Spool parts to temporary files here "
                                                   "instead of RAM (each deleted once uploaded)")] = None,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, embedded: Embedded = False,
    concurrency: Annotated[int | None, typer.Option("--concurrency", "-c", help="Part buffers (RAM, with "
                                                    "awscrt's copies); half are sent at once [default 16]")] = None,
    part_size: PartSize = None, checksum_algorithm: Checksum = None,
    content_type: ContentType = None, acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None,
    storage_class: StorageClass = None, metadata: Metadata = None,
    max_rps: MaxRps = None, rps_burst: RpsBurst = None, bwlimit: BwLimit = None,
    metrics_port: MetricsPort = None, metrics_file: MetricsFile = None, progress: ProgressMode = None,
    json_output: Annotated[bool, typer.Option("--json", help="A JSON summary on stdout")] = False,
    no_progress: NoProgress = False, debug: Debug = False,
) -> None:
    """Upload stdin (or --input) to one object while it is still being read: bounded memory,
    no size ceiling, and nothing stored unless the whole stream arrived (a read error, a count
    other than --expected-size, Ctrl-C or SIGTERM abort the upload). An empty stdin creates a
    0-byte object. The object's md5 and sha256 metadata hold the digests of the whole stream."""
    import os

    from .errors import SourceUnreadableError
    from .jobs.stream import STREAM_DEFAULT_CONCURRENCY, StreamProgress, format_report_line, parse_tolerance
    from .jobs.stream import stream as stream_api

    def body() -> int:
        default_c = None if os.environ.get("S3PUMP_CONCURRENCY") else STREAM_DEFAULT_CONCURRENCY
        config = _config(
            endpoint_url=endpoint_url, region=region, profile=profile,
            concurrency=concurrency if concurrency is not None else default_c,
            part_size_bytes=part_size, checksum_algorithm=checksum_algorithm, content_type=content_type,
            acl=acl, sse=sse, sse_kms_key_id=sse_kms_key_id, storage_class=storage_class, metadata=metadata,
            max_rps=max_rps, rps_burst=rps_burst, max_bandwidth_bps=bwlimit,
        )
        expected = parse_size_bytes(expected_size, what="--expected-size") if expected_size else None
        tolerance = parse_tolerance(size_tolerance, expected) if size_tolerance else 0
        if input_path is not None:
            try:
                readable: Any = open(input_path, "rb")  # noqa: SIM115 - closed below
            except OSError as e:
                raise SourceUnreadableError(f"{input_path}: {e.strerror}") from None
            name = str(input_path)
        else:
            readable, name = sys.stdin.buffer, "stdin"
        try:
            with _Observers(json_output=json_output, progress=progress, no_progress=no_progress,
                            totals=lambda: (1, expected or 0, expected is not None), metrics_port=metrics_port,
                            metrics_file=metrics_file, bar=lambda: StreamProgress(expected),
                            json_events=False) as observers:
                view: StreamProgress | None = observers.bar
                report = stream_api(
                    readable, destination, config, expected_size_bytes=expected, size_tolerance_bytes=tolerance,
                    spool_dir=str(spool_dir) if spool_dir is not None else None, embedded=embedded,
                    subscribers=observers.subscribers, name=name,
                    on_source=view.attach if view is not None else None,
                )
                observers.finish(report.to_json())
        finally:
            if input_path is not None:
                readable.close()
        stderr_console().print(format_report_line(report), markup=False)
        return 0

    raise typer.Exit(_run(debug, body))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
