"""What ``s3pump ls`` and ``s3pump verify`` print on stdout: listing lines as aws s3 ls (or JSON lines),
and verify's problems, one per line (or JSON events), with its count line on stderr."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..reports import LsEntry, VerifyReport

__all__ = ["format_entry", "format_summary", "human_readable_size", "print_listing", "print_verify"]

_HUMAN_SUFFIXES = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_readable_size(value: int) -> str:
    """The aws cli's ``--human-readable`` size: ``1 Byte``, ``10 Bytes``, ``1.0 KiB``, ``1.5 MiB``."""
    if value == 1:
        return "1 Byte"
    if value < 1024:
        return f"{value} Bytes"
    for i, suffix in enumerate(_HUMAN_SUFFIXES):
        unit = 1024 ** (i + 2)
        if round(value / unit * 1024) < 1024:
            return f"{1024 * value / unit:.1f} {suffix}"
    return f"{value / 1024 ** 6:.1f} EiB"


def _local_time(when: dt.datetime | None) -> str:
    return (when.astimezone().strftime("%Y-%m-%d %H:%M:%S") if when else "").ljust(19)


def format_entry(entry: LsEntry, *, human_readable: bool = False) -> str:
    """The line ``aws s3 ls`` prints for ``entry`` (no newline)."""
    if entry.kind == "prefix":
        return f"{'PRE':>30} {entry.name}"
    if entry.kind == "bucket":
        return f"{_local_time(entry.time)} {entry.name}"
    size = human_readable_size(entry.size_bytes) if human_readable else str(entry.size_bytes)
    return f"{_local_time(entry.time)} {size:>10} {entry.name}"


def format_summary(objects: int, size_bytes: int, *, human_readable: bool = False) -> str:
    """``aws s3 ls --summarize``'s two lines (after an empty line)."""
    size = human_readable_size(size_bytes) if human_readable else str(size_bytes)
    return f"\nTotal Objects: {objects}\n{'Total Size: ':>15}{size}"


def print_listing(entries: Iterable[LsEntry], *, json_output: bool, human_readable: bool, summarize: bool) -> int:
    """Print each entry (a line as aws s3 ls, or a JSON object), then with ``summarize`` the object count
    and total size. Returns how many entries there were (prefixes, buckets and objects)."""
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
