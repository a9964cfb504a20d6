"""``s3pump export``: a SQL table to partitioned, idempotent objects (:func:`s3pump.jobs.export.export_table`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import examples, need, run, views
from .groups import Opts
from .options import HEADER_OPTS, OUTPUT_OPTS, RATE_OPTS, SCALE_OPTS, WHERE_OPTS, Checksum, Concurrency, note

__all__ = ["HELP", "export"]

HELP = ("Export a SQL table to partitioned, idempotent objects (Parquet, JSON Lines, protobuf), "
        "incrementally. SIGINT/SIGTERM finish the in-flight batches, save the checkpoint and exit "
        "(0 with --follow). Exit 1 if rows or objects went to the dead-letter queue."
        + examples("s3pump export shop.sqlite --table Invoice s3://lake/raw --partition-by time:InvoiceDate:day",
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
    table_format: Annotated[str, typer.Option(
        "--table-format", metavar="FORMAT", show_default=False, help=note(
            "files, or iceberg: append to an Iceberg table at PREFIX/TABLE (needs s3pump\\[iceberg])",
            default="files"))] = "files",
    catalog_uri: Annotated[str | None, typer.Option("--catalog-uri", metavar="URI", help=note(
        "Iceberg catalog: an SQLAlchemy URL or an http(s):// REST catalog",
        default="a SQLite file in the state directory"))] = None,
    target_file_size: Annotated[str, typer.Option("--target-file-size", metavar="SIZE", show_default=False, help=note(
        "Iceberg data file size", default="128MiB"))] = "128MiB",
    max_file_age: Annotated[str, typer.Option("--max-file-age", metavar="DURATION", show_default=False, help=note(
        "Iceberg with --follow: commit rows read this long ago even below --target-file-size",
        default="5m"))] = "5m",
    lifecycle_items: Annotated[list[str] | None, typer.Option(
        "--lifecycle", metavar="NAME=VALUE", help="Install a lifecycle rule for the table's objects (PREFIX/TABLE/), "
        "keeping the bucket's other rules: expire-after=365d, transition=STANDARD_IA:30d, "
        "noncurrent-expire-after=30d, abort-incomplete-multipart-after=7d, id=NAME (repeatable)")] = None,
    where: Opts = WHERE_OPTS,
    concurrency: Concurrency = None,
    checksum_algorithm: Checksum = None,
    what: Opts = HEADER_OPTS,
    rate: Opts = RATE_OPTS,
    scale: Opts = SCALE_OPTS,
    out: Opts = OUTPUT_OPTS,
) -> None:
    def body() -> int:
        need("pyarrow", "export", "export")
        if table_format == "iceberg":
            need("pyiceberg", "iceberg", "export --table-format iceberg")
        from ..errors import EXIT_CANCELLED
        from ..jobs.export import export_table
        from ..lifecycle import parse_rule_items
        from ..ui.summary import print_export_dry_run, print_export_summary
        from ..units import parse_duration_s, parse_size_bytes
        from .config import config_from

        rule_options = parse_rule_items(lifecycle_items) if lifecycle_items else None
        config = config_from(where, what, rate, scale,
                             {"concurrency": concurrency, "checksum_algorithm": checksum_algorithm})
        with views("export", "export", out) as v:
            report = export_table(
                db, table, destination, config, cursor_column=cursor_column, batch_rows=batch_rows,
                partition_by=partition_by or (), format=fmt, compression=compression,
                one_object_per_row=one_object_per_row, dedup=dedup, dlq=dlq, replay_dlq=replay_dlq,
                follow=follow, poll_interval_s=parse_duration_s(poll_interval, what="--poll-interval"),
                state_file=state_file, from_start=from_start, embedded=where.embedded,
                subscribers=v.subscribers, handle_signals=True, lifecycle=rule_options, dry_run=dry_run,
                cluster=scale.cluster, schema_evolution=schema_evolution, table_format=table_format,
                catalog_uri=catalog_uri,
                target_file_size_bytes=parse_size_bytes(target_file_size, what="--target-file-size"),
                max_file_age_s=parse_duration_s(max_file_age, what="--max-file-age"),
            )
            if dry_run and not out.json_output:
                print_export_dry_run(report)
            v.finish(report.to_json())
        print_export_summary(report)
        if not report.ok:
            return 1
        return EXIT_CANCELLED if report.stopped and not follow else 0

    run(out.debug, body)
