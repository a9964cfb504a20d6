"""``s3pump ls``: buckets, or the prefixes and objects under s3://bucket/prefix (:func:`s3pump.jobs.ls.ls`)."""

from __future__ import annotations

from typing import Annotated

import typer

from .base import examples, run
from .groups import Opts
from .options import OUTPUT, WHERE_OPTS, Debug

__all__ = ["HELP", "ls_command"]

HELP = ("List buckets, or the prefixes and objects under s3://bucket/prefix, as aws s3 ls does."
        + examples("s3pump ls", "s3pump ls s3://bucket/logs/", "s3pump ls s3://bucket --recursive "
                   "--human-readable --summarize"))


def ls_command(
    url: Annotated[str | None, typer.Argument(help="s3://bucket/prefix; none: list the buckets", metavar="[S3URL]",
                                              show_default=False)] = None,
    recursive: Annotated[bool, typer.Option("--recursive", metavar="", help="Every object under the prefix, "
                                            "with its full key")] = False,
    human_readable: Annotated[bool, typer.Option("--human-readable", metavar="", help="Sizes as 1.5 MiB")] = False,
    summarize: Annotated[bool, typer.Option("--summarize", metavar="",
                                            help="End with the object count and total size")] = False,
    where: Opts = WHERE_OPTS,
    json_output: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT,
                                              help="One JSON object per line")] = False,
    debug: Debug = False,
) -> None:
    def body() -> int:
        from ..jobs.ls import ls as ls_api
        from ..ui.listing import print_listing
        from .config import config_from

        entries = ls_api(url, config_from(where), recursive=recursive, embedded=where.embedded)
        count = print_listing(entries, json_output=json_output, human_readable=human_readable, summarize=summarize)
        has_key = bool(url and url.startswith("s3://") and "/" in url[5:] and url[5:].split("/", 1)[1])
        return 1 if has_key and count == 0 else 0  # as aws: a key or prefix that matches nothing

    run(debug, body)
