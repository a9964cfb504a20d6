"""``s3pump cleanup``: abort orphaned multipart uploads, and (``--iceberg``) delete the files no snapshot of an
Iceberg table references (:func:`s3pump.jobs.cleanup.cleanup`)."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import examples, need, run
from .groups import Opts
from .options import WHERE_OPTS, Debug, Json, note

__all__ = ["HELP", "cleanup"]

HELP = ("Abort orphaned multipart uploads under s3://bucket/prefix (their parts cost storage until "
        "then); those a killed s3pump run recorded in the state directory as to abort, whatever their age. "
        "A bucket lifecycle rule (AbortIncompleteMultipartUpload) does the same server-side. With --iceberg, "
        "also delete the data files and manifests of the Iceberg tables under it that no snapshot references "
        "(a killed export's), older than --older-than."
        + examples("s3pump cleanup s3://bucket/ --older-than 24h --dry-run",
                   "s3pump cleanup s3://lake/raw --iceberg --dry-run --json"))


def cleanup(
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix", metavar="S3URL", show_default=False)],
    older_than: Annotated[str, typer.Option("--older-than", metavar="DURATION", show_default=False, help=note(
        "Abort only uploads initiated longer ago than this, e.g. 24h, 30m, 0s", default="24h"))] = "24h",
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="",
                                          help="List the uploads (and files); abort and delete nothing")] = False,
    iceberg: Annotated[bool, typer.Option("--iceberg", metavar="", help=(
        "Also delete the files of the Iceberg tables under S3URL that no snapshot references and that are "
        "older than --older-than (lists every object under S3URL; needs s3pump\\[iceberg])"))] = False,
    where: Opts = WHERE_OPTS,
    json_output: Json = False,
    debug: Debug = False,
) -> None:
    def body() -> int:
        if iceberg:
            need("pyiceberg", "iceberg", "cleanup --iceberg")
        from ..jobs.cleanup import cleanup as cleanup_api
        from ..ui.summary import print_cleanup
        from ..units import parse_duration_s
        from .config import config_from

        age_s = parse_duration_s(older_than, what="--older-than")
        report = cleanup_api(destination, age_s, config_from(where), dry_run=dry_run, iceberg=iceberg,
                             embedded=where.embedded)
        print_cleanup(report, older_than=older_than, json_output=json_output)
        return 0 if report.ok else 1

    run(debug, body)
