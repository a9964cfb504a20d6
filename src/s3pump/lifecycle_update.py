"""Apply ONE lifecycle rule to a bucket (for `s3pump lifecycle` and `export --lifecycle`), keeping the others.

PutBucketLifecycleConfiguration replaces a bucket's whole configuration and has no conditional
form (no ETag, no If-Match: S3 API reference). So a change is a read-modify-write, made as safe
as S3 allows:

1. read the configuration (GetBucketLifecycleConfiguration) and merge the one rule
   (``s3pump.lifecycle.merge``: every other rule is written back exactly as read);
2. compare before write: read it again just before the write; if it changed meanwhile, merge
   again from the new one (up to 3 times);
3. write it, then read it back and verify that the server holds exactly the merged rules
   (retried for a few seconds, as AWS propagates lifecycle changes with a delay). Anything
   else means another writer changed it at the same moment: :class:`ConcurrentChangeError`.

The window between the last read and the write (milliseconds) cannot be closed on S3.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConcurrentChangeError, StoreError, UsageError
from .lifecycle import LifecycleRule, applies_to, canonical, describe, find_rule, merge, same_rules
from .store.base import Store

__all__ = ["LifecycleChange", "apply_rule", "rules_for_prefix"]

_ATTEMPTS = 3


@dataclass(slots=True)
class LifecycleChange:
    """What ``apply_rule`` did: the rules before and after, and whether it wrote them."""

    bucket: str
    prefix: str
    before: list[dict[str, Any]]
    after: list[dict[str, Any]]
    written: bool = False
    dry_run: bool = False
    removed: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return not same_rules(self.before, self.after)

    def diff_lines(self) -> list[str]:
        """``- rule`` / ``+ rule`` lines by rule ID, then a count of the rules left as they were."""
        before = {r.get("ID", f"#{i}"): r for i, r in enumerate(self.before)}
        after = {r.get("ID", f"#{i}"): r for i, r in enumerate(self.after)}
        lines: list[str] = []
        same = 0
        for rid, r in before.items():
            if rid not in after:
                lines.append(f"- {describe(r)}")
            elif canonical(after[rid]) != canonical(r):
                lines.append(f"- {describe(r)}")
                lines.append(f"+ {describe(after[rid])}")
            else:
                same += 1
        lines.extend(f"+ {describe(r)}" for rid, r in after.items() if rid not in before)
        if same:
            lines.append(f"  ({same} other rule{'s' if same != 1 else ''} unchanged)")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"event": "lifecycle", "bucket": self.bucket, "prefix": self.prefix, "before": self.before,
                "after": self.after, "changed": self.changed, "written": self.written,
                "dry_run": self.dry_run}


def rules_for_prefix(store: Store, bucket: str, prefix: str) -> list[tuple[dict[str, Any], str]]:
    """The bucket's rules that act on keys under ``prefix``, each with ``"all"`` or ``"some"``
    (see ``s3pump.lifecycle.applies_to``)."""
    out = []
    for rule in store.get_bucket_lifecycle(bucket):
        scope = applies_to(rule, prefix)
        if scope is not None:
            out.append((rule, scope))
    return out


def apply_rule(
    store: Store, bucket: str, prefix: str, rule: LifecycleRule | None, *, rule_id: str | None = None,
    dry_run: bool = False, verify_s: float = 10.0,
) -> LifecycleChange:
    """Add or replace ``rule`` in ``bucket``'s lifecycle configuration, or, with ``rule`` None,
    remove the rule of ``rule_id`` (default: the rule ``s3pump.lifecycle.find_rule`` finds for
    ``prefix``). Writes nothing when nothing changes (so a rerun is idempotent) or with ``dry_run``.

    Raises:
        UsageError: the server refuses the configuration (e.g. SeaweedFS answers NotImplemented to
            transitions), or several rules filter on ``prefix`` and no ``rule_id`` was given.
        ConcurrentChangeError: the configuration kept changing under us, or what the server holds
            after the write is not what was written.
        StoreError: a request failed.
    """
    where = f"s3://{bucket}"
    before = store.get_bucket_lifecycle(bucket)
    for _ in range(_ATTEMPTS):
        if rule is None and find_rule(before, rule_id=rule_id, prefix=prefix) is None:
            change = LifecycleChange(bucket, prefix, before, before, dry_run=dry_run, removed=True)
            change.notes.append(f"no rule {rule_id or prefix!r} to remove")
            return change
        after = merge(before, rule, rule_id=rule_id, prefix=prefix)
        change = LifecycleChange(bucket, prefix, before, after, dry_run=dry_run, removed=rule is None)
        if dry_run or not change.changed:
            return change
        current = store.get_bucket_lifecycle(bucket)  # compare before write
        if not same_rules(current, before):
            before = current
            continue
        _put(store, bucket, after)
        _verify(store, bucket, after, verify_s)
        change.written = True
        return change
    raise ConcurrentChangeError(f"{where}: the lifecycle configuration changed {_ATTEMPTS} times while s3pump "
                                "was merging its rule; another writer is busy with it: try again later")


def _put(store: Store, bucket: str, rules: Sequence[dict[str, Any]]) -> None:
    try:
        store.put_bucket_lifecycle(bucket, rules)
    except StoreError as e:
        if e.code == "NotImplemented":
            raise UsageError(f"{e}; this server does not implement part of the rule (SeaweedFS has no "
                             "transitions); nothing was changed") from None
        if e.code in ("MalformedXML", "InvalidArgument", "InvalidRequest"):
            raise UsageError(f"{e}; the server refused the lifecycle configuration; nothing was changed") from None
        raise


def _verify(store: Store, bucket: str, written: Sequence[dict[str, Any]], within_s: float) -> None:
    """Read the configuration back until it is what was written (AWS propagates it with a delay)."""
    deadline = time.monotonic() + within_s
    delay = 0.2
    while True:
        held = store.get_bucket_lifecycle(bucket)
        if same_rules(held, written):
            return
        if time.monotonic() >= deadline:
            ids = sorted(str(r.get("ID")) for r in held)
            raise ConcurrentChangeError(
                f"s3://{bucket}: after the write the lifecycle configuration holds rules {ids}, not what "
                "s3pump wrote; another writer changed it at the same moment: check it with `s3pump "
                f"lifecycle s3://{bucket}` and run again")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
