"""``s3pump stream``: stdin (or a file or FIFO) to one object while it is read (:func:`s3pump.jobs.stream.stream`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import UsageError
from .base import examples, run, views
from .groups import Opts
from .options import (
    METRICS_OPTS,
    OBJECT_OPTS,
    OUTPUT,
    RATE_OPTS,
    SAFETY,
    SPEED,
    WHAT,
    WHERE_OPTS,
    Checksum,
    Debug,
    NoProgress,
    PartSize,
    note,
)

__all__ = ["HELP", "stream"]

HELP = ("Upload stdin (or --input) to one object while it is still being read: bounded memory, "
        "no size ceiling, and nothing stored unless the whole stream arrived (a read error, a count other "
        "than --expected-size, Ctrl-C or SIGTERM abort the upload). An empty stdin creates a 0-byte object. "
        "The server checks each part's checksum and, for a multipart stream, the whole object's "
        "(FULL_OBJECT CRC), which stays on the object for verify and sync --checksum; with --md5 the "
        "object's md5 metadata holds the MD5 of the whole stream (and sha256 the SHA-256, with --sha256)."
        + examples("pg_dump mydb | gzip | s3pump stream s3://bucket/backups/mydb.sql.gz",
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
    where: Opts = WHERE_OPTS,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", "-c", metavar="N", rich_help_panel=SPEED,
        help=note("Part buffers (RAM, with awscrt's copies); half are sent at once", default=16,
                  env="S3PUMP_CONCURRENCY"))] = None,
    part_size: PartSize = None,
    checksum_algorithm: Checksum = None,
    what: Opts = OBJECT_OPTS,
    rate: Opts = RATE_OPTS,
    metrics: Opts = METRICS_OPTS,
    json_output: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT,
                                              help="A JSON summary on stdout")] = False,
    sha256: Annotated[bool, typer.Option("--sha256", metavar="", rich_help_panel=SAFETY,
                                         help="Also store the SHA-256 of the whole stream as sha256 metadata "
                                         "(about 0.6 CPU-s/GiB more)")] = False,
    md5: Annotated[bool, typer.Option("--md5", metavar="", rich_help_panel=SAFETY, envvar="S3PUMP_STREAM_MD5",
                                      show_envvar=False,
                                      help=note("Also compute the MD5 of the whole stream and store it as md5 "
                                                "metadata (about 1.8 CPU-s/GiB more; always on without a "
                                                "full-object CRC)", env="S3PUMP_STREAM_MD5=1"))] = False,
    no_progress: NoProgress = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="", rich_help_panel=OUTPUT,
                                        help="No progress and no summary line; errors only")] = False,
    debug: Debug = False,
) -> None:
    import os

    from ..errors import PathNotFoundError, SourceUnreadableError
    from ..jobs.stream import STREAM_DEFAULT_CONCURRENCY, parse_tolerance
    from ..jobs.stream import stream as stream_api
    from ..units import parse_size_bytes
    from .config import config_from

    destination, source = (source_or_destination, None) if second is None else (second, source_or_destination)
    if source is not None and input_path is not None:
        raise typer.BadParameter("give the source once: SOURCE or --input")
    path = input_path if source in (None, "-") else Path(source)

    def body() -> int:
        default_c = None if os.environ.get("S3PUMP_CONCURRENCY") else STREAM_DEFAULT_CONCURRENCY
        config = config_from(where, what, rate, {"part_size": part_size, "checksum_algorithm": checksum_algorithm},
                             concurrency=concurrency if concurrency is not None else default_c)
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
        out = Opts(metrics, json_output=json_output, no_progress=no_progress)
        try:
            with views("stream", "stream", out, no_progress=quiet, json_events=False) as v:
                report = stream_api(
                    readable, destination, config, expected_size_bytes=expected, size_tolerance_bytes=tolerance,
                    spool_dir=str(spool_dir) if spool_dir is not None else None, embedded=where.embedded,
                    subscribers=v.subscribers, name=name, handle_signals=True, sha256=sha256, md5=md5,
                )
                v.finish(report.to_json())
        finally:
            if path is not None:
                readable.close()
        from ..ui.console import say
        from ..ui.summary import stream_summary

        if not quiet:
            say(stream_summary(report))
        return 0

    run(debug, body)
