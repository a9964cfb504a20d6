"""``s3pump cleanup``: abort orphaned multipart uploads (:func:`s3pump.jobs.cleanup.cleanup`)."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import examples, run
from .groups import Opts
from .options import WHERE_OPTS, Debug, Json, note

__all__ = ["HELP", "cleanup"]

HELP = ("Abort orphaned multipart uploads under s3://bucket/prefix (their parts cost storage until "
        "then); those a killed s3pump run recorded in the state directory as to abort, whatever their age. "
        "A bucket lifecycle rule (AbortIncompleteMultipartUpload) does the same server-side."
        + examples("s3pump cleanup s3://bucket/ --older-than 24h --dry-run"))


def cleanup(
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix", metavar="S3URL", show_default=False)],
    older_than: Annotated[str, typer.Option("--older-than", metavar="DURATION", show_default=False, help=note(
        "Abort only uploads initiated longer ago than this, e.g. 24h, 30m, 0s", default="24h"))] = "24h",
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="List the uploads; abort nothing")] = False,
    where: Opts = WHERE_OPTS,
    json_output: Json = False,
    debug: Debug = False,
) -> None:
    def body() -> int:
        from ..jobs.cleanup import cleanup as cleanup_api
        from ..ui.summary import print_cleanup
        from ..units import parse_duration_s
        from .config import config_from

        age_s = parse_duration_s(older_than, what="--older-than")
        report = cleanup_api(destination, age_s, config_from(where), dry_run=dry_run, embedded=where.embedded)
        print_cleanup(report, older_than=older_than, json_output=json_output)
        return 0 if report.ok else 1

    run(debug, body)
