"""``s3pump mb``, ``rb`` and ``versioning``: make and remove a bucket, show or set its versioning
(:mod:`s3pump.jobs.buckets`, through a :class:`~s3pump.run.Run`'s store)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from .base import bucket_name, examples, run
from .groups import Opts
from .options import ENDPOINT_OPTS, Debug

__all__ = ["MB_HELP", "RB_HELP", "VERSIONING_HELP", "mb", "rb", "versioning"]

BucketUrl = Annotated[str, typer.Argument(help="s3://bucket", metavar="S3URL", show_default=False)]

MB_HELP = ("Make a bucket (in --region), as `aws s3 mb` does; prints `make_bucket: NAME`."
           + examples("s3pump mb s3://lake --versioning"))
RB_HELP = ("Remove a bucket, as `aws s3 rb` does; prints `remove_bucket: NAME`."
           + examples("s3pump rb s3://scratch", "s3pump rb s3://scratch --force"))
VERSIONING_HELP = ("Show a bucket's versioning status, or --enable / --suspend it."
                   + examples("s3pump versioning s3://lake", "s3pump versioning s3://lake --enable"))


def mb(
    bucket_url: BucketUrl,
    versioning: Annotated[bool, typer.Option("--versioning", metavar="", help="Enable versioning on the new "
                                             "bucket")] = False,
    endpoint: Opts = ENDPOINT_OPTS,
    debug: Debug = False,
) -> None:
    def body() -> int:
        from ..jobs.buckets import make_bucket
        from ..run import Run
        from ..ui.buckets_view import print_bucket_done
        from .config import config_from

        bucket = bucket_name(bucket_url, "mb")
        with Run("mb", config_from(endpoint), bucket, check_bucket=False) as r:
            make_bucket(r.store, bucket, versioning=versioning)
        print_bucket_done("make_bucket", bucket)
        return 0

    run(debug, body)


def rb(
    bucket_url: BucketUrl,
    force: Annotated[bool, typer.Option("--force", metavar="", help="First delete every object, version and "
                                        "multipart upload in it")] = False,
    endpoint: Opts = ENDPOINT_OPTS,
    debug: Debug = False,
) -> None:
    def body() -> int:
        from ..jobs.buckets import remove_bucket
        from ..run import Run
        from ..ui.buckets_view import print_bucket_done
        from .config import config_from

        bucket = bucket_name(bucket_url, "rb")
        with Run("rb", config_from(endpoint), bucket) as r:
            remove_bucket(r.store, bucket, force=force, policy=r.policy)
        print_bucket_done("remove_bucket", bucket)
        return 0

    run(debug, body)


def versioning(
    bucket_url: BucketUrl,
    enable: Annotated[bool, typer.Option("--enable", metavar="", help="Turn versioning on")] = False,
    suspend: Annotated[bool, typer.Option("--suspend", metavar="", help="Suspend versioning (old versions "
                                          "stay)")] = False,
    endpoint: Opts = ENDPOINT_OPTS,
    json_output: Annotated[bool, typer.Option("--json", metavar="", help="The status as JSON on stdout")] = False,
    debug: Debug = False,
) -> None:
    def body() -> int:
        from ..jobs.buckets import set_versioning
        from ..run import Run
        from ..ui.buckets_view import print_versioning
        from .config import config_from

        if enable and suspend:
            raise UsageError("versioning: give --enable or --suspend, not both")
        bucket = bucket_name(bucket_url, "versioning")
        with Run("versioning", config_from(endpoint), bucket) as r:
            status = set_versioning(r.store, bucket, True if enable else False if suspend else None)
        print_versioning(bucket, status, json_output=json_output)
        return 0

    run(debug, body)
