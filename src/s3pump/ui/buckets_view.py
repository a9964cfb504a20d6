"""What the bucket verbs print: ``lifecycle``'s rules and change, ``versioning``'s status, and the
line ``mb``/``rb`` end with (as the aws cli's).

Rules, changes and statuses go to stdout (``--json``: one JSON object), notes and outcomes to stderr.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..lifecycle_update import LifecycleChange
    from ..urls import S3Url

__all__ = ["print_bucket_done", "print_change", "print_rules", "print_versioning"]


def print_rules(rules: list[tuple[dict[str, Any], str]], dest: S3Url, *, json_output: bool) -> None:
    """The lifecycle rules that apply to ``dest`` (``scope`` "all": the whole prefix, else part of it),
    one described per line, or a ``lifecycle_rules`` JSON object; none: a line on stderr."""
    from ..lifecycle import describe
    from .console import say

    if json_output:
        print(json.dumps({"event": "lifecycle_rules", "bucket": dest.bucket, "prefix": dest.prefix,
                          "rules": [{"applies": scope, "rule": r} for r, scope in rules]}, default=str))
        return
    for r, scope in rules:
        print(describe(r) + ("" if scope == "all" else "  (part of this prefix)"))
    if not rules:
        say(f"no lifecycle rule applies to {dest}")


def print_change(change: LifecycleChange, dest: S3Url, *, json_output: bool) -> None:
    """A lifecycle change: its diff (or JSON) on stdout, its notes and whether it was written on stderr."""
    from .console import say

    if json_output:
        print(json.dumps(change.to_json(), default=str))
    else:
        for line in change.diff_lines():
            print(line)
    for text in change.notes:
        say(f"{dest}: {text}")
    if change.written:
        say(f"s3://{dest.bucket}: lifecycle configuration written ({len(change.after)} rules) and verified")
    elif change.changed:
        say(f"(dryrun) s3://{dest.bucket}: lifecycle configuration not written")
    else:
        say(f"s3://{dest.bucket}: lifecycle configuration unchanged")


def print_versioning(bucket: str, status: str | None, *, json_output: bool) -> None:
    """A bucket's versioning status (None: never enabled) on stdout, as a line or a JSON object."""
    if json_output:
        print(json.dumps({"event": "versioning", "bucket": bucket, "status": status}))
    else:
        print(f"s3://{bucket}: versioning {status or 'never enabled'}")


def print_bucket_done(action: str, bucket: str) -> None:
    """``make_bucket: NAME`` / ``remove_bucket: NAME`` on stdout, as ``aws s3 mb``/``rb`` print."""
    print(f"{action}: {bucket}")
