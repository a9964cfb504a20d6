"""``s3pump upload``: files and directory trees to s3://bucket/prefix (:func:`s3pump.jobs.upload.upload`)."""

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

__all__ = ["HELP", "upload"]

HELP = ("Upload files and directory trees to s3://bucket/prefix, in parallel (multipart above 8 MiB)."
        + examples("s3pump upload ./site s3://bucket/www/ --exclude '*.tmp'",
                   "s3pump upload big.iso s3://bucket/isos/big.iso --part-size 64MiB --bwlimit 50M",
                   "s3pump upload --from-list failed.jsonl s3://bucket/www/"))


def upload(
    ctx: typer.Context,
    paths: Annotated[list[str] | None, typer.Argument(help="Files and directories to upload", metavar="PATH",
                                                      show_default=False)] = None,
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix", metavar="S3URL", show_default=False)] = "",
    filters: Opts = FILTER_OPTS,
    from_list: Annotated[Path | None, typer.Option(
        "--from-list", metavar="FILE", rich_help_panel=WHAT,
        help="Upload exactly the entries of a failed-list (or a file of paths)")] = None,
    failed_list: FailedList = None,
    tree: Opts = TREE_OPTS,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", rich_help_panel=OUTPUT,
                                          help="List what would be uploaded; send nothing")] = False,
    no_resume: Annotated[bool, typer.Option("--no-resume", metavar="", rich_help_panel=SAFETY,
                                            help="Ignore the resume journal of an earlier run of this command: "
                                            "abort its uploads and start over")] = False,
    where: Opts = WHERE_OPTS,
    speed: Opts = SPEED_OPTS,
    checksum_algorithm: Checksum = None,
    what: Opts = OBJECT_OPTS,
    out: Opts = OUTPUT_OPTS,
) -> None:
    from ..jobs.upload import check_paths_exist
    from ..jobs.upload import upload as upload_api
    from .config import config_from

    args = list(paths or [])
    if not destination and args:  # `upload --from-list F s3://b/p`: the URL lands in PATHS
        destination = args.pop()
    if not destination:
        raise typer.BadParameter("missing destination s3://bucket/prefix")

    def body() -> int:
        from ..ui.summary import print_summary
        from ..ui.walk_lines import DryRunLines, SkipCounter

        check_paths_exist([*args, *([from_list] if from_list is not None else [])])
        config = config_from(where, tree, speed, what, {"checksum_algorithm": checksum_algorithm})
        skipped = SkipCounter()
        lines = [DryRunLines(destination[5:].split("/", 1)[0])] if dry_run and not out.json_output else []
        with views("files", "upload", out) as v:
            report = upload_api(
                args, destination, config, filters=filter_rules(ctx, filters.include, filters.exclude),
                from_list=from_list, dry_run=dry_run, embedded=where.embedded, failed_list=failed_list,
                subscribers=[*v.subscribers, skipped, *lines], resume=not no_resume, handle_signals=True,
                cluster=speed.cluster,
            )
            v.finish(report.to_json())
        print_summary(report, verb="would upload" if dry_run else "uploaded", destination=destination)
        skipped.print()
        return 0 if report.ok else 1

    run(out.debug, body)
