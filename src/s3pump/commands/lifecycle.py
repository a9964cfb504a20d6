"""``s3pump lifecycle``: show, or add, replace or remove ONE lifecycle rule of a bucket
(:mod:`s3pump.lifecycle_update`, through a :class:`~s3pump.run.Run`'s store)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from .base import examples, run
from .groups import Opts
from .options import ENDPOINT_OPTS, Debug, note

__all__ = ["HELP", "lifecycle"]

HELP = ("Show the lifecycle rules that apply to s3://bucket/prefix, or add, replace or remove ONE rule "
        "while keeping the bucket's other rules (read, merge, write, read back; see docs/lifecycle.md)."
        + examples("s3pump lifecycle s3://lake/raw/",
                   "s3pump lifecycle s3://lake/raw/ --transition STANDARD_IA:30d --expire-after 365d --dry-run",
                   "s3pump lifecycle s3://bucket --abort-incomplete-multipart-after 7d"))


def lifecycle(
    destination: Annotated[str, typer.Argument(help="s3://bucket/prefix the rule is for", metavar="S3URL",
                                               show_default=False)],
    expire_after: Annotated[str | None, typer.Option(
        "--expire-after", metavar="DAYS", help="Delete objects N days after creation, e.g. 365d (Expiration)")] = None,
    transition: Annotated[list[str] | None, typer.Option(
        "--transition", metavar="CLASS:DAYS", help="e.g. STANDARD_IA:30d (repeatable; Transitions)")] = None,
    abort_incomplete_multipart_after: Annotated[str | None, typer.Option(
        "--abort-incomplete-multipart-after", metavar="DAYS", help="Abort multipart uploads N days after they "
        "were started, e.g. 7d (AbortIncompleteMultipartUpload)")] = None,
    noncurrent_expire_after: Annotated[str | None, typer.Option(
        "--noncurrent-expire-after", metavar="DAYS", help="Delete old versions N days after they became "
        "noncurrent (NoncurrentVersionExpiration)")] = None,
    rule_id: Annotated[str | None, typer.Option("--id", metavar="NAME", help=note(
        "Rule ID", default="s3pump:<prefix>, or the one rule filtering on exactly this prefix"))] = None,
    remove: Annotated[bool, typer.Option("--remove", metavar="", help="Remove this rule (the others stay)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", metavar="", help="Show the change; write nothing")] = False,
    endpoint: Opts = ENDPOINT_OPTS,
    json_output: Annotated[bool, typer.Option("--json", metavar="", help="The rules (or the change) as JSON on "
                                              "stdout")] = False,
    debug: Debug = False,
) -> None:
    def body() -> int:
        from ..lifecycle import RuleOptions
        from ..lifecycle_update import apply_rule, rules_for_prefix
        from ..run import Run
        from ..ui.buckets_view import print_change, print_rules
        from ..urls import parse_s3_url
        from .config import config_from

        dest = parse_s3_url(destination)
        options = RuleOptions(rule_id, expire_after, tuple(transition or ()), noncurrent_expire_after,
                              abort_incomplete_multipart_after)
        if remove and options.any_action():
            raise UsageError("lifecycle: --remove takes no rule options (only --id)")
        rule = options.rule(dest.prefix) if options.any_action() else None  # validated before any request
        with Run("lifecycle", config_from(endpoint), dest.bucket) as r:
            if rule is None and not remove:
                print_rules(rules_for_prefix(r.store, dest.bucket, dest.prefix), dest, json_output=json_output)
                return 0
            change = apply_rule(r.store, dest.bucket, dest.prefix, rule, rule_id=rule_id, dry_run=dry_run)
        print_change(change, dest, json_output=json_output)
        return 0

    run(debug, body)
