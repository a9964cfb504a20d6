"""The ``s3pump`` command line: one small function per verb over the Python API.

Each command parses its flags into a config (:func:`s3pump.options.config_from`), builds the
views of its run (:class:`s3pump.ui.views.Views`), calls the job with ``handle_signals=True``
(the first Ctrl-C/SIGTERM stops at a safe point, a second at once) and prints the summary.

Exit codes: 0 everything done; 1 some items failed (they are listed); 2 usage or
configuration error (bad flag, bad URL, missing bucket, bad credentials); 130 cancelled by
Ctrl-C or SIGTERM. Errors are one line on stderr, never a traceback (``--debug`` adds one).

Start-up: this module imports only Typer and s3pump's light modules; a command imports its job
(awscrt, pyarrow, ...) and rich when it runs.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from . import __version__, clicoerce
from .cliargs import OrderedArgsCommand, filter_rules
from .errors import EXIT_CANCELLED, CancelledError, S3PumpError, UsageError
from .options import (
    OUTPUT,
    SAFETY,
    WHAT,
    Acl,
    BwLimit,
    CaBundle,
    CacheControl,
    Checksum,
    Cluster,
    Concurrency,
    ConnectTimeout,
    ContentDisposition,
    ContentEncoding,
    ContentLanguage,
    ContentType,
    Debug,
    Embedded,
    Endpoint,
    Exclude,
    Expires,
    FailedList,
    FollowSymlinks,
    Include,
    Json,
    MaxConcurrency,
    MaxRps,
    Metadata,
    MetricsFile,
    MetricsPort,
    MinConcurrency,
    NoProgress,
    NormalizeKeys,
    NoVerifySsl,
    PartSize,
    PreserveAttrs,
    Profile,
    ProgressMode,
    ReadTimeout,
    Region,
    RpsBurst,
    Sse,
    SseKms,
    StorageClass,
    Tagging,
    config_from,
    note,
)

__all__ = ["app", "main"]

clicoerce.install()  # plain option values without pydantic (Typer's coercion for everything else)

app = typer.Typer(
    name="s3pump",
    help="Move data into S3 and S3-compatible object stores: fast, in bounded memory, without losing a byte.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)

T = TypeVar("T")


def _argument_type_column(self: Any, ctx: Any) -> str | None:
    return None  # the argument's name (its metavar) already says what it is; Typer would print "<list[str]>"


if hasattr(typer.core.TyperArgument, "display_type_rich"):  # Typer >= 0.16 shows Python types for arguments
    typer.core.TyperArgument.display_type_rich = _argument_type_column  # type: ignore[method-assign]


def _help_option_without_type(self: Any, ctx: Any) -> Any:
    option = _click_help_option(self, ctx)
    if option is not None and option.metavar is None:
        option.metavar = ""  # a flag: Typer would print "<bool>" beside -h, --help
    return option


_click_help_option = typer.core.TyperCommand.get_help_option
typer.core.TyperCommand.get_help_option = _help_option_without_type  # type: ignore[method-assign]
typer.core.TyperGroup.get_help_option = _help_option_without_type  # type: ignore[method-assign]


def _version(value: bool) -> None:
    if value:
        print(f"s3pump {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool | None, typer.Option("--version", "-V", callback=_version, is_eager=True, metavar="",
                                                 help="Print the version and exit")] = None,
) -> None:
    """Move data into S3 and S3-compatible object stores: fast, in bounded memory, without losing a byte.

    Exit codes: 0 done; 1 some items failed (listed, and written to a failed-list); 2 usage or
    configuration error; 130 cancelled.
    """


def _run(debug: bool, fn: Callable[[], T]) -> T:
    """Run a command body: map s3pump errors to one line and an exit code."""
    from .logs import configure_logging
    from .ui.console import say

    configure_logging(debug)
    try:
        return fn()
    except S3PumpError as e:
        if debug:
            import logging

            logging.getLogger("s3pump").exception("failed")
        hint = ""
        if isinstance(e, CancelledError) and e.kept_uploads:
            hint = "; rerun the same command to resume, or add --no-resume to start over"
        for line in f"{e}{hint}".splitlines() or [""]:  # one line per problem (e.g. one per clashing key)
            say(f"s3pump: error: {line}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        say("s3pump: cancelled")
        raise typer.Exit(EXIT_CANCELLED) from None
    except Exception as e:  # out of file descriptors wherever it struck: one line naming the limit
        from .errors import is_out_of_files, open_files_error

        if not is_out_of_files(e):
            raise
        if debug:
            import logging

            logging.getLogger("s3pump").exception("failed")
        error = open_files_error(e if isinstance(e, OSError) else None)
        say(f"s3pump: error: {error}")
        raise typer.Exit(error.exit_code) from None


class _SkipCounter:
    """Counts the walk's EntrySkipped events; :meth:`print` says them in one line on stderr."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, event: Any) -> None:
        kind = getattr(event, "kind", None)
        if kind is not None and type(event).__name__ == "EntrySkipped":
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def print(self) -> None:
        from .sources.walk import skipped_line
        from .ui.console import say

        line = skipped_line(self.counts)
        if line:
            say(line)


def _need(module: str, extra: str, what: str) -> None:
    """Raise a one-line UsageError (exit 2) when ``module`` of the ``extra`` is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(f"{what} needs the '{extra}' extra: pip install 's3pump[{extra}]'")


def _examples(*lines: str) -> str:
    """An Examples section for a command's help (rich markup: each line on its own)."""
    return "\n\n[bold]Examples[/bold]\n\n" + "\n\n".join(f"  [cyan]{line}[/cyan]" for line in lines)


@app.command(cls=OrderedArgsCommand,
             help="Upload files and directory trees to s3://bucket/prefix, in parallel (multipart above 8 MiB)."
             + _examples("s3pump upload ./site s3://bucket/www/ --exclude '*.tmp'",
                         "s3pump upload big.iso s3://bucket/isos/big.iso --part-size 64MiB --bwlimit 50M",
                         "s3pump upload --from-list failed.jsonl s3://bucket/www/"))
def upload(
    ctx: typer.Context,
    paths: Annotated[list[str] | None, typer.Argument(help="Files and directories to upload", metavar="PATH",
                                                      show_default=False)] = None,
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix", metavar="S3URL", show_default=False)] = "",
    include: Include = None,
    exclude: Exclude = None,
    from_list: Annotated[Path | None, typer.Option(
        "--from-list", metavar="FILE", rich_help_panel=WHAT,
        help="Upload exactly the entries of a failed-list (or a file of paths)")] = None,
    failed_list: FailedList = None,
    follow_symlinks: FollowSymlinks = False, preserve_attrs: PreserveAttrs = False,
    normalize_keys: NormalizeKeys = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", rich_help_panel=OUTPUT,
                                          help="List what would be uploaded; send nothing")] = False,
    no_resume: Annotated[bool, typer.Option("--no-resume", metavar="", rich_help_panel=SAFETY,
                                            help="Ignore the resume journal of an earlier run of this command: "
                                            "abort its uploads and start over")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, embedded: Embedded = False,
    connect_timeout: ConnectTimeout = None, read_timeout: ReadTimeout = None,
    concurrency: Concurrency = None, part_size: PartSize = None, checksum_algorithm: Checksum = None,
    content_type: ContentType = None, acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None,
    storage_class: StorageClass = None, metadata: Metadata = None,
    cache_control: CacheControl = None, content_encoding: ContentEncoding = None,
    content_disposition: ContentDisposition = None, content_language: ContentLanguage = None,
    expires: Expires = None, tagging: Tagging = None,
    max_rps: MaxRps = None, rps_burst: RpsBurst = None, bwlimit: BwLimit = None,
    min_concurrency: MinConcurrency = None, max_concurrency: MaxConcurrency = None, cluster: Cluster = None,
    metrics_port: MetricsPort = None, metrics_file: MetricsFile = None, progress: ProgressMode = None,
    json_output: Json = False, no_progress: NoProgress = False, debug: Debug = False,
) -> None:
    params = locals()
    from .jobs.upload import check_paths_exist
    from .jobs.upload import upload as upload_api
    from .ui.views import Views

    args = list(paths or [])
    if not destination and args:  # `upload --from-list F s3://b/p`: the URL lands in PATHS
        destination = args.pop()
    if not destination:
        raise typer.BadParameter("missing destination s3://bucket/prefix")

    def body() -> int:
        check_paths_exist([*args, *([from_list] if from_list is not None else [])])
        config = config_from(params)
        bucket = destination[5:].split("/", 1)[0]
        skipped = _SkipCounter()

        def dry_run_line(event: Any) -> None:  # as aws: (dryrun) upload: ./a to s3://b/a
            if getattr(event, "reason", None) == "dry-run":
                print(f"(dryrun) upload: {event.source} to s3://{bucket}/{event.key}")

        with Views(kind="files", label="upload", json_output=json_output, progress=progress,
                   no_progress=no_progress, metrics_port=metrics_port, metrics_file=metrics_file) as views:
            report = upload_api(
                args, destination, config, filters=filter_rules(ctx, include, exclude),
                from_list=from_list, dry_run=dry_run, embedded=embedded, failed_list=failed_list,
                subscribers=[*views.subscribers, skipped, *([dry_run_line] if dry_run and not json_output else [])],
                resume=not no_resume, handle_signals=True, cluster=cluster,
            )
            views.finish(report.to_json())
        from .ui.summary import print_summary

        print_summary(report, verb="would upload" if dry_run else "uploaded", destination=destination)
        skipped.print()
        return 0 if report.ok else 1

    raise typer.Exit(_run(debug, body))


@app.command(cls=OrderedArgsCommand, help="Upload the new and changed files of a directory to s3://bucket/prefix "
             "(and --delete what is gone)."
             + _examples("s3pump sync ./dataset s3://bucket/dataset",
                         "s3pump sync ./dataset s3://bucket/dataset --checksum --delete --dry-run"))
def sync(
    ctx: typer.Context,
    source_dir: Annotated[Path, typer.Argument(help="Local directory to sync from", metavar="DIR", show_default=False)],
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix", metavar="S3URL", show_default=False)],
    size_only: Annotated[bool, typer.Option("--size-only", metavar="", rich_help_panel=WHAT,
                                            help="Upload only when the size differs")] = False,
    checksum: Annotated[bool, typer.Option("--checksum", metavar="", rich_help_panel=WHAT,
                                           help="Compare contents: MD5 vs ETag (multipart-aware) or the "
                                           "object's md5 metadata")] = False,
    use_server_modtime: Annotated[bool, typer.Option(
        "--use-server-modtime", metavar="", rich_help_panel=WHAT,
        help="Compare the file's mtime with the object's LastModified (as aws s3 sync; no HeadObject per "
             "object of the same size) instead of its recorded mtime (x-amz-meta-mtime, as rclone)")] = False,
    delete: Annotated[bool, typer.Option("--delete", metavar="", rich_help_panel=WHAT,
                                         help="Delete objects under the prefix with no local file")] = False,
    max_delete: Annotated[str | None, typer.Option(
        "--max-delete", metavar="N|P%", rich_help_panel=SAFETY, show_default=False,
        help="With --delete: refuse (exit 2, nothing deleted) when the plan deletes more than N objects, "
             "or more than P% of the objects under the prefix")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", rich_help_panel=OUTPUT,
                                          help="Print the plan (uploads, deletes, counts); change nothing")] = False,
    include: Include = None,
    exclude: Exclude = None,
    no_hash_cache: Annotated[bool, typer.Option("--no-hash-cache", metavar="", rich_help_panel=SAFETY,
                                                help="Hash every file again (no local MD5 cache)")] = False,
    failed_list: FailedList = None,
    follow_symlinks: FollowSymlinks = False, preserve_attrs: PreserveAttrs = False,
    normalize_keys: NormalizeKeys = None,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, embedded: Embedded = False,
    connect_timeout: ConnectTimeout = None, read_timeout: ReadTimeout = None,
    concurrency: Concurrency = None, part_size: PartSize = None, checksum_algorithm: Checksum = None,
    content_type: ContentType = None, acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None,
    storage_class: StorageClass = None, metadata: Metadata = None,
    cache_control: CacheControl = None, content_encoding: ContentEncoding = None,
    content_disposition: ContentDisposition = None, content_language: ContentLanguage = None,
    expires: Expires = None, tagging: Tagging = None,
    max_rps: MaxRps = None, rps_burst: RpsBurst = None, bwlimit: BwLimit = None,
    min_concurrency: MinConcurrency = None, max_concurrency: MaxConcurrency = None, cluster: Cluster = None,
    metrics_port: MetricsPort = None, metrics_file: MetricsFile = None, progress: ProgressMode = None,
    json_output: Json = False, no_progress: NoProgress = False, debug: Debug = False,
) -> None:
    params = locals()
    from .jobs.sync import sync as sync_api
    from .ui.views import Views

    if size_only + checksum + use_server_modtime > 1:
        raise typer.BadParameter("--size-only, --checksum and --use-server-modtime exclude each other")

    def body() -> int:
        from .ui.summary import SyncPlanPrinter, print_sync_summary

        config = config_from(params)
        skipped = _SkipCounter()
        with Views(kind="files", label="sync", json_output=json_output, progress=progress,
                   no_progress=no_progress or dry_run, metrics_port=metrics_port,
                   metrics_file=metrics_file) as views:
            printer = [] if json_output else [SyncPlanPrinter(destination, dry_run=dry_run)]
            report = sync_api(
                source_dir, destination, config, mode="size-only" if size_only else "checksum" if checksum
                else "server-modtime" if use_server_modtime else "default", delete=delete, max_delete=max_delete,
                dry_run=dry_run,
                filters=filter_rules(ctx, include, exclude),
                embedded=embedded, failed_list=failed_list, subscribers=[*printer, *views.subscribers, skipped],
                hash_cache=not no_hash_cache, handle_signals=True, cluster=cluster, list_unchanged=json_output,
            )
            views.finish(report.to_json())
        print_sync_summary(report, destination=destination)
        skipped.print()
        return 0 if report.ok else 1

    raise typer.Exit(_run(debug, body))


@app.command(help="Upload stdin (or --input) to one object while it is still being read: bounded memory, "
             "no size ceiling, and nothing stored unless the whole stream arrived (a read error, a count other "
             "than --expected-size, Ctrl-C or SIGTERM abort the upload). An empty stdin creates a 0-byte object. "
             "The server checks each part's checksum and, for a multipart stream, the whole object's "
             "(FULL_OBJECT CRC); the object's md5 metadata holds the MD5 of the whole stream (and sha256 "
             "the SHA-256, with --sha256)."
             + _examples("pg_dump mydb | gzip | s3pump stream s3://bucket/backups/mydb.sql.gz",
                         "s3pump stream s3://bucket/big.tar --input big.fifo --expected-size 200GiB"))
def stream(
    source_or_destination: Annotated[str, typer.Argument(
        metavar="SOURCE|S3URL", show_default=False, help="'-' for stdin (as aws s3 cp -) or a file or FIFO, "
        "then the S3URL; or only the S3URL (stdin)")],
    second: Annotated[str | None, typer.Argument(metavar="[S3URL]", show_default=False,
                                                 help="s3://bucket/key of the object to write")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", "-i", metavar="FILE", rich_help_panel=WHAT,
                                                    help="Read this file or FIFO instead of stdin")] = None,
    expected_size: Annotated[str | None, typer.Option(
        "--expected-size", metavar="SIZE", rich_help_panel=SAFETY,
        help="Bytes the stream will have (parts are sized for it; another count aborts)")] = None,
    size_tolerance: Annotated[str | None, typer.Option(
        "--size-tolerance", metavar="SIZE|PCT", rich_help_panel=SAFETY,
        help=note("Accepted difference from --expected-size: bytes (10MiB) or percent (1%)", default=0))] = None,
    spool_dir: Annotated[Path | None, typer.Option(
        "--spool-dir", metavar="DIR", rich_help_panel=SAFETY,
        help="Spool parts to temporary files here instead of RAM (each deleted once uploaded)")] = None,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, embedded: Embedded = False,
    connect_timeout: ConnectTimeout = None, read_timeout: ReadTimeout = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", metavar="N", rich_help_panel="How fast",
        help=note("Part buffers (RAM, with awscrt's copies); half are sent at once", default=16,
                  env="S3PUMP_CONCURRENCY"))] = None,
    part_size: PartSize = None, checksum_algorithm: Checksum = None,
    content_type: ContentType = None, acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None,
    storage_class: StorageClass = None, metadata: Metadata = None,
    cache_control: CacheControl = None, content_encoding: ContentEncoding = None,
    content_disposition: ContentDisposition = None, content_language: ContentLanguage = None,
    expires: Expires = None, tagging: Tagging = None,
    max_rps: MaxRps = None, rps_burst: RpsBurst = None, bwlimit: BwLimit = None,
    metrics_port: MetricsPort = None, metrics_file: MetricsFile = None, progress: ProgressMode = None,
    json_output: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT,
                                              help="A JSON summary on stdout")] = False,
    sha256: Annotated[bool, typer.Option("--sha256", metavar="", rich_help_panel=SAFETY,
                                         help="Also store the SHA-256 of the whole stream as sha256 metadata "
                                         "(about 0.6 CPU-s/GiB more)")] = False,
    no_progress: NoProgress = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", rich_help_panel=OUTPUT,
                                        help="No progress and no summary line; errors only")] = False,
    debug: Debug = False,
) -> None:
    params = locals()
    import os

    from .errors import PathNotFoundError, SourceUnreadableError
    from .jobs.stream import STREAM_DEFAULT_CONCURRENCY, parse_tolerance
    from .jobs.stream import stream as stream_api
    from .ui.views import Views
    from .units import parse_size_bytes

    destination, source = (source_or_destination, None) if second is None else (second, source_or_destination)
    if source is not None and input_path is not None:
        raise typer.BadParameter("give the source once: SOURCE or --input")
    path = input_path if source in (None, "-") else Path(source)

    def body() -> int:
        default_c = None if os.environ.get("S3PUMP_CONCURRENCY") else STREAM_DEFAULT_CONCURRENCY
        config = config_from(params, concurrency=concurrency if concurrency is not None else default_c)
        expected = parse_size_bytes(expected_size, what="--expected-size") if expected_size else None
        tolerance = parse_tolerance(size_tolerance, expected) if size_tolerance else 0
        if path is not None:
            if not os.path.lexists(path):
                raise PathNotFoundError(f"the path {path} does not exist")
            try:
                readable: Any = open(path, "rb")  # noqa: SIM115 - closed below
            except OSError as e:
                raise SourceUnreadableError(f"{path}: {e.strerror}") from None
            name = str(path)
        elif sys.stdin is None:  # `s3pump stream ... <&-`: there is no file descriptor 0
            raise UsageError("stdin is closed; pipe the data in (cmd | s3pump stream ...) or pass --input FILE")
        else:
            # fd 0 unbuffered, not sys.stdin.buffer: the reader thread may still be in a read when a
            # cancelled run exits, and the interpreter's shutdown then needs sys.stdin.buffer's lock
            # ("Fatal Python error: _enter_buffered_busy", exit -6 instead of 130)
            readable, name = open(sys.stdin.fileno(), "rb", buffering=0, closefd=False), "stdin"  # noqa: SIM115
        try:
            with Views(kind="stream", label="stream", json_output=json_output, progress=progress,
                       no_progress=no_progress or quiet, metrics_port=metrics_port, metrics_file=metrics_file,
                       json_events=False) as views:
                report = stream_api(
                    readable, destination, config, expected_size_bytes=expected, size_tolerance_bytes=tolerance,
                    spool_dir=str(spool_dir) if spool_dir is not None else None, embedded=embedded,
                    subscribers=views.subscribers, name=name, handle_signals=True, sha256=sha256,
                )
                views.finish(report.to_json())
        finally:
            if path is not None:
                readable.close()
        from .ui.console import say
        from .ui.summary import stream_summary

        if not quiet:
            say(stream_summary(report))
        return 0

    raise typer.Exit(_run(debug, body))


@app.command(help="Export a SQL table to partitioned, idempotent objects (Parquet, JSON Lines, protobuf), "
             "incrementally. SIGINT/SIGTERM finish the in-flight batches, save the checkpoint and exit "
             "(0 with --follow). Exit 1 if rows or objects went to the dead-letter queue."
             + _examples("s3pump export shop.sqlite --table Invoice s3://lake/raw "
                         "--partition-by time:InvoiceDate:day",
                         "s3pump export shop.sqlite --table Customer s3://lake/raw --format protobuf --follow"))
def export(
    db: Annotated[str, typer.Argument(help="SQLite file path, or an SQLAlchemy URL (needs s3pump\\[sql])",
                                      metavar="DB", show_default=False)],
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix", metavar="S3URL", show_default=False)],
    table: Annotated[str, typer.Option("--table", "-t", metavar="TABLE", help="Table to export")],
    cursor_column: Annotated[str | None, typer.Option(
        "--cursor-column", metavar="COLUMN",
        help=note("Increasing column that orders and resumes the export", default="integer primary key"))] = None,
    batch_rows: Annotated[int, typer.Option("--batch-rows", metavar="N", show_default=False,
                                            help=note("Rows per batch", default=100_000))] = 100_000,
    partition_by: Annotated[list[str] | None, typer.Option(
        "--partition-by", metavar="SPEC",
        help="time:COLUMN:hour|day|month\\[:epoch-s|:epoch-ms] or column:COL (repeatable, nested in order)")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", show_default=False,
                                     help=note("parquet, jsonl or protobuf", default="parquet"))] = "parquet",
    compression: Annotated[str | None, typer.Option(
        "--compression", metavar="CODEC",
        help=note("parquet: zstd|snappy|gzip|none; jsonl: gzip|zstd|none", default="zstd / gzip"))] = None,
    one_object_per_row: Annotated[bool, typer.Option(
        "--one-object-per-row", metavar="",
        help="The lab layout: <entity>/date=YYYY-MM-DD/<id>_<unix>.<ext>",
    )] = False,
    dedup: Annotated[bool, typer.Option("--dedup", metavar="", help="Write only groups whose rows changed "
                                        "(content hash per row; scans the whole table)")] = False,
    dlq: Annotated[str | None, typer.Option("--dlq", metavar="DIR|URL", help=note(
        "Dead-letter queue: a directory or s3:// prefix", default="DESTINATION/_dlq/"))] = None,
    replay_dlq: Annotated[bool, typer.Option("--replay-dlq", metavar="",
                                             help="Export the dead-letter entries again")] = False,
    follow: Annotated[bool, typer.Option("--follow", metavar="",
                                         help="Keep exporting new rows until SIGINT/SIGTERM")] = False,
    poll_interval: Annotated[str, typer.Option("--poll-interval", metavar="DURATION", show_default=False, help=note(
        "Poll period of --follow", default="30s"))] = "30s",
    state_file: Annotated[Path | None, typer.Option("--state-file", metavar="FILE", help="Also keep the "
                                                    "checkpoint in this local file")] = None,
    from_start: Annotated[bool, typer.Option("--from-start", metavar="",
                                             help="Ignore the checkpoint; export every row")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="",
                                          help="Print the objects it would write; write nothing")] = False,
    schema_evolution: Annotated[bool, typer.Option(
        "--schema-evolution", metavar="",
        help="When the table's schema changed since the last run, write new objects under the next schema "
             "version (PREFIX/TABLE/_vN/) instead of stopping")] = False,
    lifecycle_items: Annotated[list[str] | None, typer.Option(
        "--lifecycle", metavar="NAME=VALUE", help="Install a lifecycle rule for the table's objects (PREFIX/TABLE/), "
        "keeping the bucket's other rules: expire-after=365d, transition=STANDARD_IA:30d, "
        "noncurrent-expire-after=30d, abort-incomplete-multipart-after=7d, id=NAME (repeatable)")] = None,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, embedded: Embedded = False,
    connect_timeout: ConnectTimeout = None, read_timeout: ReadTimeout = None,
    concurrency: Concurrency = None, checksum_algorithm: Checksum = None, content_type: ContentType = None,
    acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None, storage_class: StorageClass = None,
    metadata: Metadata = None,
    max_rps: MaxRps = None, rps_burst: RpsBurst = None, bwlimit: BwLimit = None,
    min_concurrency: MinConcurrency = None, max_concurrency: MaxConcurrency = None, cluster: Cluster = None,
    metrics_port: MetricsPort = None, metrics_file: MetricsFile = None, progress: ProgressMode = None,
    json_output: Json = False, no_progress: NoProgress = False, debug: Debug = False,
) -> None:
    params = locals()

    def body() -> int:
        _need("pyarrow", "export", "export")
        from .jobs.export import export_table
        from .lifecycle import parse_rule_items
        from .ui.summary import print_export_dry_run, print_export_summary
        from .ui.views import Views
        from .units import parse_duration_s

        rule_options = parse_rule_items(lifecycle_items) if lifecycle_items else None
        config = config_from(params)
        with Views(kind="export", label="export", json_output=json_output, progress=progress,
                   no_progress=no_progress, metrics_port=metrics_port, metrics_file=metrics_file) as views:
            report = export_table(
                db, table, destination, config, cursor_column=cursor_column, batch_rows=batch_rows,
                partition_by=partition_by or (), format=fmt, compression=compression,
                one_object_per_row=one_object_per_row, dedup=dedup, dlq=dlq, replay_dlq=replay_dlq,
                follow=follow, poll_interval_s=parse_duration_s(poll_interval, what="--poll-interval"),
                state_file=state_file, from_start=from_start, embedded=embedded,
                subscribers=views.subscribers, handle_signals=True, lifecycle=rule_options, dry_run=dry_run,
                cluster=cluster, schema_evolution=schema_evolution,
            )
            if dry_run and not json_output:
                print_export_dry_run(report)
            views.finish(report.to_json())
        print_export_summary(report)
        if not report.ok:
            return 1
        return EXIT_CANCELLED if report.stopped and not follow else 0

    raise typer.Exit(_run(debug, body))


@app.command(help="Abort orphaned multipart uploads under s3://bucket/prefix (their parts cost storage until "
             "then); those a killed s3pump run recorded in the state directory as to abort, whatever their age. "
             "A bucket lifecycle rule (AbortIncompleteMultipartUpload) does the same server-side."
             + _examples("s3pump cleanup s3://bucket/ --older-than 24h --dry-run"))
def cleanup(
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix", metavar="S3URL", show_default=False)],
    older_than: Annotated[str, typer.Option("--older-than", metavar="DURATION", show_default=False, help=note(
        "Abort only uploads initiated longer ago than this, e.g. 24h, 30m, 0s", default="24h"))] = "24h",
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="List the uploads; abort nothing")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, embedded: Embedded = False,
    connect_timeout: ConnectTimeout = None, read_timeout: ReadTimeout = None,
    json_output: Json = False, debug: Debug = False,
) -> None:
    params = locals()

    def body() -> int:
        from .jobs.cleanup import cleanup as cleanup_api
        from .ui.summary import print_cleanup
        from .units import parse_duration_s

        age_s = parse_duration_s(older_than, what="--older-than")
        report = cleanup_api(destination, age_s, config_from(params), dry_run=dry_run, embedded=embedded)
        print_cleanup(report, older_than=older_than, json_output=json_output)
        return 0 if report.ok else 1

    raise typer.Exit(_run(debug, body))


@app.command(help="Write test files fast (fixed size, or a log-uniform size distribution)."
             + _examples("s3pump generate ./demo-data --count 1000 --size 4KiB",
                         "s3pump generate ./mixed --count 2000 --size-min 0 --size-max 40MiB --seed 7"))
def generate(
    directory: Annotated[Path, typer.Argument(help="Directory to write into", metavar="DIR", show_default=False)],
    count: Annotated[int, typer.Option("--count", "-n", metavar="N", show_default=False, help=note("Number of files",
                                                                              default=100))] = 100,
    size: Annotated[str | None, typer.Option("--size", metavar="SIZE", help=note(
        "Size of every file, e.g. 4KiB", default="4KiB"))] = None,
    size_min: Annotated[str | None, typer.Option("--size-min", metavar="SIZE",
                                                 help="Smallest size (log-uniform)")] = None,
    size_max: Annotated[str | None, typer.Option("--size-max", metavar="SIZE",
                                                 help="Largest size (log-uniform)")] = None,
    files_per_dir: Annotated[int, typer.Option("--files-per-dir", metavar="N", show_default=False, help=note(
        "Files per subdirectory", default=1000))] = 1000,
    seed: Annotated[int, typer.Option("--seed", metavar="N", show_default=False,
                                      help=note("Random seed", default=0))] = 0,
) -> None:
    def body() -> None:
        import time

        from .jobs.generate import generate as generate_api
        from .ui.console import say
        from .units import format_bytes, parse_size_bytes

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
        say(f"wrote {rep.files} files, {format_bytes(rep.bytes)} to {rep.directory} in {time.monotonic() - t0:.1f} s")

    _run(False, body)


def _interrupt_on(*signals: signal.Signals) -> None:
    """These signals raise KeyboardInterrupt, as SIGINT does (serve's way to stop its server)."""
    for sig in signals:
        signal.signal(sig, signal.default_int_handler)


@app.command(help="Run a local S3 server (SeaweedFS) on 127.0.0.1 in the foreground, until Ctrl-C. While it runs, "
             "commands with --embedded use it."
             + _examples("s3pump serve --port 8333", "eval \"$(s3pump serve --env)\"", "s3pump serve --stop-embedded"))
def serve(
    port: Annotated[int | None, typer.Option("--port", metavar="PORT", help=note("S3 port",
                                                                                default="a free port"))] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", metavar="DIR", help=note(
        "Data directory", default="the embedded server's, shared with --embedded"))] = None,
    info: Annotated[bool, typer.Option("--info", metavar="", help="Print the running embedded server's endpoint "
                                       "and keys, then exit")] = False,
    env: Annotated[bool, typer.Option("--env", metavar="", help="Print them as export AWS_...=... lines (for eval), "
                                      "then exit")] = False,
    stop_embedded: Annotated[bool, typer.Option("--stop-embedded", metavar="", help="Stop the background server that "
                                                "--embedded started (its data is kept), then exit")] = False,
) -> None:
    def body() -> int:
        from .devserver import embedded_dir, record_server, running_embedded, start_server, state_file, stop_server
        from .devserver import stop_embedded as stop_embedded_server
        from .errors import UsageError
        from .ui.console import say

        if stop_embedded:
            if stop_embedded_server(say) is None:
                say("no embedded server is running")
            return 0
        if info or env:
            running = running_embedded()
            if running is None:
                say("no embedded server is running; start one with: s3pump serve (or any command with --embedded)")
                return 1
            if env:
                print(f"export AWS_ENDPOINT_URL={running.endpoint_url}\nexport AWS_ACCESS_KEY_ID="
                      f"{running.access_key_id}\nexport AWS_SECRET_ACCESS_KEY={running.secret_access_key}\n"
                      f"export AWS_REGION={running.region}")
            else:
                print(f"endpoint:   {running.endpoint_url}\naccess key: {running.access_key_id}\n"
                      f"secret key: {running.secret_access_key}\nregion:     {running.region}\n"
                      f"data dir:   {running.data_dir}\npid:        {running.pid}")
            return 0
        directory = data_dir or embedded_dir()
        shared = directory.resolve() == embedded_dir().resolve()
        already = running_embedded() if shared else None
        if already is not None:
            raise UsageError(f"the embedded server already runs on {directory} ({already.endpoint_url}); use it "
                             "(s3pump serve --info), or stop it first: s3pump serve --stop-embedded")
        # SeaweedFS runs in its own process group: SIGTERM and SIGHUP here, as Ctrl-C, stop it and all it
        # started (a second one kills it at once), instead of leaving it running with its ports and data dir
        _interrupt_on(signal.SIGTERM, signal.SIGHUP)
        server, proc = start_server(directory, s3_port=port)
        try:
            if shared:
                record_server(server)  # --embedded and serve --info see it while it runs
            print(f"endpoint:   {server.endpoint_url}\naccess key: {server.access_key_id}\n"
                  f"secret key: {server.secret_access_key}\nregion:     {server.region}\n"
                  f"data dir:   {server.data_dir}", flush=True)
            say("s3pump serve --env prints export lines for these; Ctrl-C stops the server")
            proc.wait()
        finally:
            if proc.poll() is None:
                say("stopping the server ...")
            stop_server(proc)
            if shared:
                state_file().unlink(missing_ok=True)
        return 0

    raise typer.Exit(_run(False, body))


@app.command("ls", help="List buckets, or the prefixes and objects under s3://bucket/prefix, as aws s3 ls does."
             + _examples("s3pump ls", "s3pump ls s3://bucket/logs/", "s3pump ls s3://bucket --recursive "
                         "--human-readable --summarize"))
def ls_command(
    url: Annotated[str | None, typer.Argument(help="s3://bucket/prefix; none: list the buckets", metavar="[S3URL]",
                                              show_default=False)] = None,
    recursive: Annotated[bool, typer.Option("--recursive", metavar="", help="Every object under the prefix, "
                                            "with its full key")] = False,
    human_readable: Annotated[bool, typer.Option("--human-readable", metavar="", help="Sizes as 1.5 MiB")] = False,
    summarize: Annotated[bool, typer.Option("--summarize", metavar="",
                                            help="End with the object count and total size")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, embedded: Embedded = False,
    connect_timeout: ConnectTimeout = None, read_timeout: ReadTimeout = None,
    json_output: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT,
                                              help="One JSON object per line")] = False,
    debug: Debug = False,
) -> None:
    params = locals()

    def body() -> int:
        import json

        from .jobs.ls import format_entry, format_summary
        from .jobs.ls import ls as ls_api

        count = objects = size = 0
        for entry in ls_api(url, config_from(params), recursive=recursive, embedded=embedded):
            count += 1
            if entry.kind == "object":
                objects += 1
                size += entry.size_bytes
            print(json.dumps(entry.to_json()) if json_output else format_entry(entry, human_readable=human_readable))
        if json_output and summarize:
            print(json.dumps({"event": "summary", "objects": objects, "bytes": size}))
        elif summarize:
            print(format_summary(objects, size, human_readable=human_readable))
        has_key = bool(url and url.startswith("s3://") and "/" in url[5:] and url[5:].split("/", 1)[1])
        return 1 if has_key and count == 0 else 0  # as aws: a key or prefix that matches nothing

    raise typer.Exit(_run(debug, body))


@app.command(help="Prove a tree arrived intact: every file's object exists with the same size and content "
             "(ETag, multipart ETag, md5 metadata or full-object CRC; --download: the bytes). Lists missing, "
             "different and extra objects. Exit 0 only when everything matches."
             + _examples("s3pump verify ./dataset s3://bucket/dataset", "s3pump verify ./site s3://bucket/www "
                         "--download --json"))
def verify(
    directory: Annotated[Path, typer.Argument(help="Local directory that was uploaded", show_default=False)],
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix it was uploaded to", show_default=False)],
    download: Annotated[bool, typer.Option("--download", metavar="", help="Fetch every object and compare the bytes "
                                           "themselves")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, embedded: Embedded = False,
    connect_timeout: ConnectTimeout = None, read_timeout: ReadTimeout = None,
    part_size: PartSize = None, normalize_keys: NormalizeKeys = None,
    json_output: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT, help="One JSON event per "
                                              "problem and a summary on stdout")] = False,
    debug: Debug = False,
) -> None:
    params = locals()

    def body() -> int:
        import json

        from .jobs.verify import verify as verify_api
        from .ui.console import say

        report = verify_api(directory, destination, config_from(params), download=download, embedded=embedded)
        bucket = destination[5:].split("/", 1)[0]
        for event in report.events(bucket):
            if json_output:
                print(json.dumps(event))
            else:
                reason = f": {event['reason']}" if "reason" in event else ""
                print(f"{event['event']}: {event['url']}{reason}")
        if json_output:
            print(json.dumps(report.to_json()))
        say(f"verify {destination}: {report.matched} match, {len(report.missing)} missing, "
            f"{len(report.different)} different, {len(report.unverified)} unverified, {len(report.extra)} extra")
        return 0 if report.ok else 1

    raise typer.Exit(_run(debug, body))


# ---- bucket verbs: lifecycle rules, versioning, mb/rb (lifecycle_update.py, jobs/buckets.py) ----
@app.command(help="Show the lifecycle rules that apply to s3://bucket/prefix, or add, replace or remove ONE rule "
             "while keeping the bucket's other rules (read, merge, write, read back; see docs/lifecycle.md)."
             + _examples("s3pump lifecycle s3://lake/raw/",
                         "s3pump lifecycle s3://lake/raw/ --transition STANDARD_IA:30d --expire-after 365d --dry-run",
                         "s3pump lifecycle s3://bucket --abort-incomplete-multipart-after 7d"))
def lifecycle(
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix the rule is for", metavar="S3URL",
                                               show_default=False)],
    expire_after: Annotated[str | None, typer.Option(
        "--expire-after", metavar="DAYS", help="Delete objects N days after creation, e.g. 365d (Expiration)")] = None,
    transition: Annotated[list[str] | None, typer.Option(
        "--transition", metavar="CLASS:DAYS", help="e.g. STANDARD_IA:30d (repeatable; Transitions)")] = None,
    abort_incomplete_multipart_after: Annotated[str | None, typer.Option(
        "--abort-incomplete-multipart-after", metavar="DAYS", help="Abort multipart uploads N days after they "
        "were started, e.g. 7d (AbortIncompleteMultipartUpload)")] = None,
    noncurrent_expire_after: Annotated[str | None, typer.Option(
        "--noncurrent-expire-after", metavar="DAYS", help="Delete old versions N days after they became "
        "noncurrent (NoncurrentVersionExpiration)")] = None,
    rule_id: Annotated[str | None, typer.Option("--id", metavar="NAME", help=note(
        "Rule ID", default="s3pump:<prefix>, or the one rule filtering on exactly this prefix"))] = None,
    remove: Annotated[bool, typer.Option("--remove", metavar="", help="Remove this rule (the others stay)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="Show the change; write nothing")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False,
    json_output: Annotated[bool, typer.Option("--json", metavar="", help="The rules (or the change) as JSON on "
                                              "stdout")] = False,
    debug: Debug = False,
) -> None:
    params = locals()

    def body() -> int:
        import json

        from .lifecycle import RuleOptions, describe
        from .lifecycle_update import apply_rule, rules_for_prefix
        from .session import open_store
        from .ui.console import say
        from .urls import parse_s3_url

        dest = parse_s3_url(destination)
        options = RuleOptions(rule_id, expire_after, tuple(transition or ()), noncurrent_expire_after,
                              abort_incomplete_multipart_after)
        if remove and options.any_action():
            raise UsageError("lifecycle: --remove takes no rule options (only --id)")
        rule = options.rule(dest.prefix) if options.any_action() else None  # validated before any request
        store, _ = open_store(config_from(params), dest.bucket)
        try:
            if rule is None and not remove:
                rules = rules_for_prefix(store, dest.bucket, dest.prefix)
                if json_output:
                    print(json.dumps({"event": "lifecycle_rules", "bucket": dest.bucket, "prefix": dest.prefix,
                                      "rules": [{"applies": scope, "rule": r} for r, scope in rules]}, default=str))
                for r, scope in [] if json_output else rules:
                    print(describe(r) + ("" if scope == "all" else "  (part of this prefix)"))
                if not rules and not json_output:
                    say(f"no lifecycle rule applies to {dest}")
                return 0
            change = apply_rule(store, dest.bucket, dest.prefix, rule, rule_id=rule_id, dry_run=dry_run)
        finally:
            store.close()
        if json_output:
            print(json.dumps(change.to_json(), default=str))
        else:
            for line in change.diff_lines():
                print(line)
        for text in change.notes:
            say(f"{dest}: {text}")
        if change.written:
            say(f"s3://{dest.bucket}: lifecycle configuration written ({len(change.after)} rules) and verified")
        elif change.changed:
            say(f"(dryrun) s3://{dest.bucket}: lifecycle configuration not written")
        else:
            say(f"s3://{dest.bucket}: lifecycle configuration unchanged")
        return 0

    raise typer.Exit(_run(debug, body))


def _bucket_name(url: str, verb: str) -> str:
    from .urls import parse_s3_url

    dest = parse_s3_url(url if url.startswith("s3://") else f"s3://{url}")
    if dest.prefix.strip("/"):
        raise UsageError(f"{verb} {url}: give a bucket (s3://bucket), not a prefix")
    return dest.bucket


BucketUrl = Annotated[str, typer.Argument(help="s3://bucket", metavar="S3URL", show_default=False)]


@app.command(help="Make a bucket (in --region), as `aws s3 mb` does; prints `make_bucket: NAME`."
             + _examples("s3pump mb s3://lake --versioning"))
def mb(
    bucket_url: BucketUrl,
    versioning: Annotated[bool, typer.Option("--versioning", metavar="", help="Enable versioning on the new "
                                             "bucket")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, debug: Debug = False,
) -> None:
    params = locals()

    def body() -> int:
        from .jobs.buckets import make_bucket
        from .run import Run

        bucket = _bucket_name(bucket_url, "mb")
        with Run("mb", config_from(params), bucket, check_bucket=False) as run:
            make_bucket(run.store, bucket, versioning=versioning)
        print(f"make_bucket: {bucket}")
        return 0

    raise typer.Exit(_run(debug, body))


@app.command(help="Remove a bucket, as `aws s3 rb` does; prints `remove_bucket: NAME`."
             + _examples("s3pump rb s3://scratch", "s3pump rb s3://scratch --force"))
def rb(
    bucket_url: BucketUrl,
    force: Annotated[bool, typer.Option("--force", metavar="", help="First delete every object, version and "
                                        "multipart upload in it")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False, debug: Debug = False,
) -> None:
    params = locals()

    def body() -> int:
        from .jobs.buckets import remove_bucket
        from .run import Run

        bucket = _bucket_name(bucket_url, "rb")
        with Run("rb", config_from(params), bucket) as run:
            remove_bucket(run.store, bucket, force=force)
        print(f"remove_bucket: {bucket}")
        return 0

    raise typer.Exit(_run(debug, body))


@app.command(help="Show a bucket's versioning status, or --enable / --suspend it."
             + _examples("s3pump versioning s3://lake", "s3pump versioning s3://lake --enable"))
def versioning(
    bucket_url: BucketUrl,
    enable: Annotated[bool, typer.Option("--enable", metavar="", help="Turn versioning on")] = False,
    suspend: Annotated[bool, typer.Option("--suspend", metavar="", help="Suspend versioning (old versions "
                                          "stay)")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, ca_bundle: CaBundle = None,
    no_verify_ssl: NoVerifySsl = False,
    json_output: Annotated[bool, typer.Option("--json", metavar="", help="The status as JSON on stdout")] = False,
    debug: Debug = False,
) -> None:
    params = locals()

    def body() -> int:
        import json

        from .jobs.buckets import set_versioning
        from .run import Run

        if enable and suspend:
            raise UsageError("versioning: give --enable or --suspend, not both")
        bucket = _bucket_name(bucket_url, "versioning")
        with Run("versioning", config_from(params), bucket) as run:
            status = set_versioning(run.store, bucket, True if enable else False if suspend else None)
        if json_output:
            print(json.dumps({"event": "versioning", "bucket": bucket, "status": status}))
        else:
            print(f"s3://{bucket}: versioning {status or 'never enabled'}")
        return 0

    raise typer.Exit(_run(debug, body))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
