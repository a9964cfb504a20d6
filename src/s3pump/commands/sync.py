"""``s3pump sync``: the new and changed files of a directory to s3://bucket/prefix (:func:`s3pump.jobs.sync.sync`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..cliargs import filter_rules
from .base import examples, run, views
from .groups import Opts
from .options import (
    FILTER_OPTS,
    OBJECT_OPTS,
    OUTPUT,
    OUTPUT_OPTS,
    SAFETY,
    SPEED_OPTS,
    TREE_OPTS,
    WHAT,
    WHERE_OPTS,
    Checksum,
    FailedList,
)

__all__ = ["HELP", "sync"]

HELP = ("Upload the new and changed files of a directory to s3://bucket/prefix (and --delete what is gone)."
        + examples("s3pump sync ./dataset s3://bucket/dataset",
                   "s3pump sync ./dataset s3://bucket/dataset --checksum --delete --dry-run"))


def sync(
    ctx: typer.Context,
    source_dir: Annotated[Path, typer.Argument(help="Local directory to sync from", metavar="DIR", show_default=False)],
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix", metavar="S3URL", show_default=False)],
    size_only: Annotated[bool, typer.Option("--size-only", metavar="", rich_help_panel=WHAT,
                                            help="Upload only when the size differs")] = False,
    checksum: Annotated[bool, typer.Option("--checksum", metavar="", rich_help_panel=WHAT,
                                           help="Compare contents: MD5 vs ETag (multipart-aware), the "
                                           "object's full-object CRC (a stream's) or its md5 metadata")] = False,
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
    filters: Opts = FILTER_OPTS,
    no_hash_cache: Annotated[bool, typer.Option("--no-hash-cache", metavar="", rich_help_panel=SAFETY,
                                                help="Hash every file again (no local MD5 cache)")] = False,
    failed_list: FailedList = None,
    tree: Opts = TREE_OPTS,
    where: Opts = WHERE_OPTS,
    speed: Opts = SPEED_OPTS,
    checksum_algorithm: Checksum = None,
    what: Opts = OBJECT_OPTS,
    out: Opts = OUTPUT_OPTS,
) -> None:
    from ..jobs.sync import sync as sync_api
    from .config import config_from

    if size_only + checksum + use_server_modtime > 1:
        raise typer.BadParameter("--size-only, --checksum and --use-server-modtime exclude each other")

    def body() -> int:
        from ..ui.summary import SyncPlanPrinter, print_sync_summary
        from ..ui.walk_lines import SkipCounter

        config = config_from(where, tree, speed, what, {"checksum_algorithm": checksum_algorithm})
        skipped = SkipCounter()
        with views("files", "sync", out, no_progress=dry_run) as v:
            printer = [] if out.json_output else [SyncPlanPrinter(destination, dry_run=dry_run)]
            report = sync_api(
                source_dir, destination, config, mode="size-only" if size_only else "checksum" if checksum
                else "server-modtime" if use_server_modtime else "default", delete=delete, max_delete=max_delete,
                dry_run=dry_run,
                filters=filter_rules(ctx, filters.include, filters.exclude), embedded=where.embedded,
                failed_list=failed_list, subscribers=[*printer, *v.subscribers, skipped],
                hash_cache=not no_hash_cache, handle_signals=True, cluster=speed.cluster,
                list_unchanged=out.json_output,
            )
            v.finish(report.to_json())
        print_sync_summary(report, destination=destination)
        skipped.print()
        return 0 if report.ok else 1

    run(out.debug, body)
