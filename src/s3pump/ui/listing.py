"""What ``s3pump ls`` and ``s3pump verify`` print on stdout: listing lines as aws s3 ls (or JSON lines),
and verify's problems, one per line (or JSON events), with its count line on stderr."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..jobs.ls import LsEntry
    from ..jobs.verify import VerifyReport

__all__ = ["print_listing", "print_verify"]


def print_listing(entries: Iterable[LsEntry], *, json_output: bool, human_readable: bool, summarize: bool) -> int:
    """Print each entry (a line as aws s3 ls, or a JSON object), then with ``summarize`` the object count
    and total size. Returns how many entries there were (prefixes, buckets and objects)."""
    from ..jobs.ls import format_entry, format_summary

    count = objects = size = 0
    for entry in entries:
        count += 1
        if entry.kind == "object":
            objects += 1
            size += entry.size_bytes
        print(json.dumps(entry.to_json()) if json_output else format_entry(entry, human_readable=human_readable))
    if json_output and summarize:
        print(json.dumps({"event": "summary", "objects": objects, "bytes": size}))
    elif summarize:
        print(format_summary(objects, size, human_readable=human_readable))
    return count


def print_verify(report: VerifyReport, destination: str, *, json_output: bool) -> None:
    """Each missing, different, unverified or extra object on stdout (``--json``: its event, then the
    report), and the counts in one line on stderr."""
    from .console import say

    bucket = destination[5:].split("/", 1)[0]
    for event in report.events(bucket):
        if json_output:
            print(json.dumps(event))
        else:
            reason = f": {event['reason']}" if "reason" in event else ""
            print(f"{event['event']}: {event['url']}{reason}")
    if json_output:
        print(json.dumps(report.to_json()))
    say(f"verify {destination}: {report.matched} match, {len(report.missing)} missing, "
        f"{len(report.different)} different, {len(report.unverified)} unverified, {len(report.extra)} extra")
