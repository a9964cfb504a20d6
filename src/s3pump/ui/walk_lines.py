"""The lines a walk's events add to a tree's upload: the entries it skipped, and a dry run's plan.

:class:`SkipCounter` counts the walk's ``EntrySkipped`` events and says them in one line on stderr
at the end; :class:`DryRunLines` prints each file a dry run would upload on stdout, as the aws cli does
(``(dryrun) upload: ./a to s3://b/a``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DryRunLines", "SkipCounter"]


class SkipCounter:
    """Counts the walk's EntrySkipped events; :meth:`print` says them in one line on stderr."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, event: Any) -> None:
        kind = getattr(event, "kind", None)
        if kind is not None and type(event).__name__ == "EntrySkipped":
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def print(self) -> None:
        from ..sources.walk import skipped_line
        from .console import say

        line = skipped_line(self.counts)
        if line:
            say(line)


class DryRunLines:
    """A subscriber: ``(dryrun) upload: SOURCE to s3://BUCKET/KEY`` on stdout per file a dry run skips."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def __call__(self, event: Any) -> None:
        if getattr(event, "reason", None) == "dry-run":
            print(f"(dryrun) upload: {event.source} to s3://{self.bucket}/{event.key}")
