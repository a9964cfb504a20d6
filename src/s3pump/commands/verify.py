"""``s3pump verify``: prove a tree arrived intact (:func:`s3pump.jobs.verify.verify`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import examples, run
from .groups import Opts
from .options import OUTPUT, WHERE_OPTS, Debug, NormalizeKeys, PartSize

__all__ = ["HELP", "verify"]

HELP = ("Prove a tree arrived intact: every file's object exists with the same size and content "
        "(ETag, multipart ETag, md5 metadata or full-object CRC; --download: the bytes). Lists missing, "
        "different and extra objects. Exit 0 only when everything matches."
        + examples("s3pump verify ./dataset s3://bucket/dataset", "s3pump verify ./site s3://bucket/www "
                   "--download --json"))


def verify(
    directory: Annotated[Path, typer.Argument(help="Local directory that was uploaded", show_default=False)],
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix it was uploaded to", show_default=False)],
    download: Annotated[bool, typer.Option("--download", metavar="", help="Fetch every object and compare the bytes "
                                           "themselves")] = False,
    where: Opts = WHERE_OPTS,
    part_size: PartSize = None,
    normalize_keys: NormalizeKeys = None,
    json_output: Annotated[bool, typer.Option("--json", metavar="", rich_help_panel=OUTPUT, help="One JSON event per "
                                              "problem and a summary on stdout")] = False,
    debug: Debug = False,
) -> None:
    def body() -> int:
        from ..jobs.verify import verify as verify_api
        from ..ui.listing import print_verify
        from .config import config_from

        config = config_from(where, {"part_size": part_size, "normalize_keys": normalize_keys})
        report = verify_api(directory, destination, config, download=download, embedded=where.embedded)
        print_verify(report, destination, json_output=json_output)
        return 0 if report.ok else 1

    run(debug, body)
