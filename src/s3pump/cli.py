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
from .errors import EXIT_CANCELLED, S3PumpError
from .logs import configure_logging
from .output import JsonLines, ProgressView, print_summary, stderr_console
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
Concurrency = Annotated[int | None, typer.Option("--concurrency", "-c", help="Requests in flight [default 64]")]
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


def _metadata_pairs(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise S3PumpError(f"--metadata {item!r}: use key=value")
        pairs.append((k, v))
    return tuple(pairs)


def _config(**flags: Any) -> TransferConfig:
    """Defaults < environment < flags. Sizes given as text are parsed here."""
    if flags.get("part_size_bytes") is not None:
        flags["part_size_bytes"] = parse_size_bytes(flags["part_size_bytes"], what="--part-size")
    if "metadata" in flags:
        flags["metadata"] = _metadata_pairs(flags["metadata"]) or None
    return TransferConfig.from_env(**flags)


def _run(debug: bool, fn: Callable[[], T]) -> T:
    """Run a command body: map s3pump errors to one line and an exit code; SIGTERM acts as Ctrl-C."""
    configure_logging(debug)
    console = stderr_console()

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
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
    include: Annotated[list[str] | None, typer.Option("--include", help="Glob of paths to take")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Glob of paths to skip")] = None,
    from_list: Annotated[Path | None, typer.Option("--from-list", help="Upload exactly the entries of a "
                                                   "failed-list (or a file of paths)")] = None,
    failed_list: Annotated[Path | None, typer.Option("--failed-list", help="Where to write failed files "
                                                     "[default: state dir]")] = None,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Follow symbolic links")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; send nothing")] = False,
    endpoint_url: Endpoint = None, region: Region = None, profile: Profile = None, embedded: Embedded = False,
    concurrency: Concurrency = None, part_size: PartSize = None, checksum_algorithm: Checksum = None,
    content_type: ContentType = None, acl: Acl = None, sse: Sse = None, sse_kms_key_id: SseKms = None,
    storage_class: StorageClass = None, metadata: Metadata = None,
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
            follow_symlinks=follow_symlinks or None,
        )
        totals = WalkTotals()
        subscribers: list[Any] = []
        json_lines = JsonLines() if json_output else None
        if json_lines:
            subscribers.append(json_lines)
        with _progress(not no_progress, lambda: (totals.files, totals.bytes, totals.finished)) as view:
            if view is not None:
                subscribers.append(view)
            report = upload_api(
                args, destination, config, include=include or (), exclude=exclude or (),
                from_list=from_list, dry_run=dry_run, embedded=embedded, failed_list=failed_list,
                subscribers=subscribers, totals=totals,
            )
        if json_lines:
            json_lines.summary(report.to_json())
        print_summary(stderr_console(), report, verb="would upload" if dry_run else "uploaded",
                      destination=destination)
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
) -> None:
    """Run a local S3 server (SeaweedFS) on 127.0.0.1 in the foreground, until Ctrl-C."""
    from .devserver import embedded_dir, start_server, stop_server

    def body() -> None:
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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
