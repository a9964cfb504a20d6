"""Lifecycle rules: the model of one s3pump rule, S3's validation, and the merge into a bucket's rules.

Pure logic, no I/O (``lifecycle_update.py`` reads and writes the bucket's configuration).

A bucket has ONE lifecycle configuration, and PutBucketLifecycleConfiguration replaces all of it
(S3 API reference). s3pump therefore never writes a configuration it did not read first:
:func:`merge` returns the bucket's rules with only the rule of one ID (or one prefix) added,
replaced or removed, every other rule byte-for-byte as the server returned it.

Rules are kept in the shape of the S3 API (and of boto3): a ``dict`` with ``ID``, ``Status``,
``Filter`` (``{"Prefix": …}``), ``Expiration`` (``{"Days": n}``), ``Transitions``
(``[{"Days": n, "StorageClass": c}]``), ``NoncurrentVersionExpiration``
(``{"NoncurrentDays": n}``) and ``AbortIncompleteMultipartUpload``
(``{"DaysAfterInitiation": n}``). Days are whole days after the object's creation (after it
became noncurrent; after the upload was initiated), as S3 counts them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import UsageError

__all__ = [
    "MAX_RULES",
    "TRANSITION_CLASSES",
    "LifecycleRule",
    "RuleOptions",
    "Transition",
    "applies_to",
    "canonical",
    "default_rule_id",
    "describe",
    "find_rule",
    "merge",
    "parse_days",
    "parse_rule_items",
    "parse_transition",
    "rule_prefix",
    "same_rules",
]

#: Storage classes a Transition may name (S3 API reference, Transition: StorageClass), in the
#: order S3 allows objects to move down ("waterfall": a rule may only go to a later class).
TRANSITION_CLASSES = ("STANDARD_IA", "INTELLIGENT_TIERING", "ONEZONE_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
#: Classes S3 refuses to transition to before 30 days, and after which the next transition must
#: wait 30 more days (S3 User Guide, "Constraints and considerations for transitions").
_IA_CLASSES = ("STANDARD_IA", "ONEZONE_IA")
_IA_MIN_DAYS = 30
#: At most 1,000 rules in a configuration; an ID has at most 255 characters (S3 API reference).
MAX_RULES = 1000
_MAX_ID = 255
_DAYS_RE = re.compile(r"^\s*(\d+)\s*(d|day|days)?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Transition:
    """Move objects to ``storage_class`` ``days`` days after creation."""

    storage_class: str
    days: int


@dataclass(frozen=True, slots=True)
class LifecycleRule:
    """The rule s3pump writes: one prefix, any of four actions. ``None`` means "no such action"."""

    id: str
    prefix: str
    expire_days: int | None = None
    transitions: tuple[Transition, ...] = ()
    noncurrent_expire_days: int | None = None
    abort_multipart_days: int | None = None

    def has_action(self) -> bool:
        return bool(self.transitions) or any(d is not None for d in (
            self.expire_days, self.noncurrent_expire_days, self.abort_multipart_days))

    def to_s3(self) -> dict[str, Any]:
        """The rule as PutBucketLifecycleConfiguration's ``Rule`` (boto3 shape)."""
        rule: dict[str, Any] = {"ID": self.id, "Status": "Enabled", "Filter": {"Prefix": self.prefix}}
        if self.expire_days is not None:
            rule["Expiration"] = {"Days": self.expire_days}
        if self.transitions:
            rule["Transitions"] = [{"Days": t.days, "StorageClass": t.storage_class}
                                   for t in sorted(self.transitions, key=lambda t: t.days)]
        if self.noncurrent_expire_days is not None:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": self.noncurrent_expire_days}
        if self.abort_multipart_days is not None:
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": self.abort_multipart_days}
        return rule

    def validate(self) -> None:
        """Refuse what S3 would refuse, before anything is sent.

        Raises:
            UsageError: no action; a day count below 1; a transition to a class S3 does not accept,
                to STANDARD_IA/ONEZONE_IA before 30 days, twice to one class, to a class above an
                earlier one, less than 30 days after an IA transition, or not before the expiry;
                an ID longer than 255 characters.
        """
        if not self.has_action():
            raise UsageError("lifecycle: give at least one of --expire-after, --transition, "
                             "--abort-incomplete-multipart-after, --noncurrent-expire-after (or --remove)")
        if len(self.id) > _MAX_ID or not self.id:
            raise UsageError(f"--id {self.id!r}: a rule ID has 1 to {_MAX_ID} characters")
        for name, days in (("--expire-after", self.expire_days), ("--noncurrent-expire-after",
                           self.noncurrent_expire_days), ("--abort-incomplete-multipart-after",
                           self.abort_multipart_days)):
            if days is not None and days < 1:
                raise UsageError(f"{name} {days}d: S3 needs at least 1 day")
        seen: dict[str, int] = {}
        for t in self.transitions:
            if t.storage_class not in TRANSITION_CLASSES:
                raise UsageError(f"--transition {t.storage_class}:{t.days}d: S3 transitions only to "
                                 f"{', '.join(TRANSITION_CLASSES)}")
            if t.storage_class in seen:
                raise UsageError(f"--transition {t.storage_class}: given twice; one transition per storage class")
            seen[t.storage_class] = t.days
            if t.storage_class in _IA_CLASSES and t.days < _IA_MIN_DAYS:
                raise UsageError(f"--transition {t.storage_class}:{t.days}d: S3 moves objects to "
                                 f"{t.storage_class} only after at least {_IA_MIN_DAYS} days")
        ordered = sorted(self.transitions, key=lambda t: t.days)
        for a, b in itertools.pairwise(ordered):
            if a.days == b.days:
                raise UsageError(f"--transition {a.storage_class}:{a.days}d and {b.storage_class}:{b.days}d: "
                                 "two transitions on the same day; give them different days")
            if TRANSITION_CLASSES.index(b.storage_class) < TRANSITION_CLASSES.index(a.storage_class):
                raise UsageError(f"--transition {b.storage_class}:{b.days}d comes after {a.storage_class}:"
                                 f"{a.days}d, but S3 moves objects only down the order "
                                 f"{' > '.join(TRANSITION_CLASSES)}")
            if a.storage_class in _IA_CLASSES and b.days - a.days < _IA_MIN_DAYS:
                raise UsageError(f"--transition {b.storage_class}:{b.days}d: S3 needs it at least "
                                 f"{_IA_MIN_DAYS} days after {a.storage_class}:{a.days}d")
        if ordered and self.expire_days is not None and self.expire_days <= ordered[-1].days:
            last = ordered[-1]
            raise UsageError(f"--expire-after {self.expire_days}d: must be later than the last transition "
                             f"({last.storage_class}:{last.days}d)")


def parse_days(text: str | int, *, what: str) -> int:
    """``"365d"``, ``"365 days"`` or ``"365"`` -> 365. Lifecycle actions count whole days.

    Raises:
        UsageError: anything else (``"12h"``, ``"-1d"``, ``"1.5d"``).
    """
    if isinstance(text, int):
        return text
    m = _DAYS_RE.match(text)
    if m is None:
        raise UsageError(f"{what} {text!r}: give whole days, e.g. 30d (S3 lifecycle rules count days)")
    return int(m.group(1))


def parse_transition(text: str) -> Transition:
    """``"STANDARD_IA:30d"`` -> ``Transition("STANDARD_IA", 30)``. The class is upper-cased.

    Raises:
        UsageError: no ``CLASS:DAYS`` form, or bad days.
    """
    cls, sep, days = text.partition(":")
    if not sep or not cls.strip():
        raise UsageError(f"--transition {text!r}: use STORAGE_CLASS:DAYS, e.g. STANDARD_IA:30d")
    return Transition(cls.strip().upper(), parse_days(days, what=f"--transition {cls}:"))


def default_rule_id(prefix: str) -> str:
    """The ID s3pump gives a rule without ``--id``: ``s3pump:<prefix>`` (shortened with a hash
    when longer than S3's 255 characters)."""
    rule_id = f"s3pump:{prefix}"
    if len(rule_id) <= _MAX_ID:
        return rule_id
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:16]
    return f"{rule_id[: _MAX_ID - 17]}~{digest}"


@dataclass(frozen=True, slots=True)
class RuleOptions:
    """The rule options as given (``lifecycle`` flags, or ``export --lifecycle k=v``), before the
    prefix is known. :meth:`rule` builds and validates the rule for a prefix."""

    rule_id: str | None = None
    expire_after: str | None = None
    transitions: tuple[str, ...] = ()
    noncurrent_expire_after: str | None = None
    abort_incomplete_multipart_after: str | None = None

    def any_action(self) -> bool:
        return bool(self.transitions) or any(v is not None for v in (
            self.expire_after, self.noncurrent_expire_after, self.abort_incomplete_multipart_after))

    def rule(self, prefix: str) -> LifecycleRule:
        """The validated rule for keys under ``prefix``.

        Raises:
            UsageError: see :meth:`LifecycleRule.validate`.
        """
        def days(text: str | None, what: str) -> int | None:
            return parse_days(text, what=what) if text is not None else None

        rule = LifecycleRule(
            id=self.rule_id if self.rule_id is not None else default_rule_id(prefix),
            prefix=prefix,
            expire_days=days(self.expire_after, "--expire-after"),
            transitions=tuple(parse_transition(t) for t in self.transitions),
            noncurrent_expire_days=days(self.noncurrent_expire_after, "--noncurrent-expire-after"),
            abort_multipart_days=days(self.abort_incomplete_multipart_after, "--abort-incomplete-multipart-after"),
        )
        rule.validate()
        return rule


_ITEM_FIELDS = {
    "id": "rule_id",
    "expire-after": "expire_after",
    "noncurrent-expire-after": "noncurrent_expire_after",
    "abort-incomplete-multipart-after": "abort_incomplete_multipart_after",
}


def parse_rule_items(items: Sequence[str]) -> RuleOptions:
    """``export --lifecycle`` items: ``expire-after=365d``, ``transition=STANDARD_IA:30d``
    (repeatable), ``noncurrent-expire-after=30d``, ``abort-incomplete-multipart-after=7d``, ``id=NAME``.

    Raises:
        UsageError: an item that is not one of these.
    """
    fields: dict[str, Any] = {}
    transitions: list[str] = []
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().lstrip("-")
        if not sep or not value:
            raise UsageError(f"--lifecycle {item!r}: use NAME=VALUE, e.g. expire-after=365d")
        if name == "transition":
            transitions.append(value)
        elif name in _ITEM_FIELDS:
            fields[_ITEM_FIELDS[name]] = value
        else:
            raise UsageError(f"--lifecycle {item!r}: use expire-after, transition, noncurrent-expire-after, "
                             "abort-incomplete-multipart-after or id")
    return RuleOptions(transitions=tuple(transitions), **fields)


# ---------------------------------------------------------------------------- rules as S3 returns them
def rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a rule filters on (``Filter.Prefix``, ``Filter.And.Prefix`` or the legacy
    top-level ``Prefix``); ``""`` for the whole bucket; None when it filters on more than a prefix
    (tags or object sizes) and so may not apply to every key under it."""
    filt = rule.get("Filter")
    if filt is None:
        return str(rule.get("Prefix", ""))
    if set(filt) <= {"Prefix"}:
        return str(filt.get("Prefix", ""))
    return None


def _filter_prefix(rule: dict[str, Any]) -> str:
    filt = rule.get("Filter")
    if filt is None:
        return str(rule.get("Prefix", ""))
    if "And" in filt:
        return str(filt["And"].get("Prefix", ""))
    return str(filt.get("Prefix", ""))


def applies_to(rule: dict[str, Any], prefix: str) -> str | None:
    """Whether ``rule`` acts on keys under ``prefix``: ``"all"`` (its prefix covers ``prefix``),
    ``"some"`` (it covers part of it, or filters on tags/sizes too), or None."""
    p = _filter_prefix(rule)
    if prefix.startswith(p):
        return "all" if rule_prefix(rule) is not None else "some"
    if p.startswith(prefix):
        return "some"
    return None


def canonical(rule: dict[str, Any]) -> str:
    """A stable text of a rule for comparisons: keys sorted, empty lists dropped, and the legacy
    top-level ``Prefix``, an empty ``Filter`` and no filter all read as ``Filter.Prefix``."""
    r = {k: v for k, v in rule.items() if v not in ([], None, {})}
    if "Filter" not in r:
        r["Filter"] = {"Prefix": r.pop("Prefix", "")}
    return json.dumps(r, sort_keys=True, default=str)


def same_rules(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]]) -> bool:
    """The same set of rules, whatever their order."""
    return sorted(map(canonical, a)) == sorted(map(canonical, b))


def find_rule(rules: Sequence[dict[str, Any]], *, rule_id: str | None, prefix: str) -> int | None:
    """Index of the rule s3pump manages for this ID or prefix, or None.

    With ``rule_id``: the rule with that ID. Without: the rule with :func:`default_rule_id`, else
    the one rule whose only filter is exactly ``prefix``.

    Raises:
        UsageError: no ``rule_id`` and several rules filter on exactly ``prefix``.
    """
    wanted = rule_id if rule_id is not None else default_rule_id(prefix)
    for i, r in enumerate(rules):
        if r.get("ID") == wanted:
            return i
    if rule_id is not None:
        return None
    same = [i for i, r in enumerate(rules) if rule_prefix(r) == prefix]
    if len(same) > 1:
        ids = ", ".join(repr(rules[i].get("ID", "")) for i in same)
        raise UsageError(f"prefix {prefix!r}: {len(same)} lifecycle rules ({ids}) filter on it; "
                         "name the one to change with --id")
    return same[0] if same else None


def merge(rules: Sequence[dict[str, Any]], rule: LifecycleRule | None, *, rule_id: str | None,
          prefix: str) -> list[dict[str, Any]]:
    """``rules`` with the managed rule (:func:`find_rule`) replaced by ``rule``, added if absent,
    or removed when ``rule`` is None. Every other rule is returned unchanged, in its place.

    A replaced rule keeps its ID (a rule found by prefix is updated, not duplicated).

    Raises:
        UsageError: the result would exceed S3's 1,000 rules, or two rules would share an ID.
    """
    out = [dict(r) for r in rules]
    at = find_rule(out, rule_id=rule_id, prefix=prefix)
    if rule is None:
        if at is not None:
            del out[at]
        return out
    new = rule.to_s3()
    if at is not None:
        if out[at].get("ID"):
            new["ID"] = out[at]["ID"]
        out[at] = new
    else:
        if any(r.get("ID") == new["ID"] for r in out):
            raise UsageError(f"--id {new['ID']!r}: another rule already has this ID")
        out.append(new)
    if len(out) > MAX_RULES:
        raise UsageError(f"lifecycle: the bucket would have {len(out)} rules; S3 allows {MAX_RULES}")
    return out


def describe(rule: dict[str, Any]) -> str:
    """One line: ``ID  prefix 'p/'  expire 365d, STANDARD_IA 30d, noncurrent 30d, abort MPU 7d``."""
    parts: list[str] = []
    exp = rule.get("Expiration") or {}
    if "Days" in exp:
        parts.append(f"expire {exp['Days']}d")
    if "Date" in exp:
        parts.append(f"expire on {exp['Date']}")
    if exp.get("ExpiredObjectDeleteMarker"):
        parts.append("remove expired delete markers")
    for t in rule.get("Transitions") or []:
        when = f"{t['Days']}d" if "Days" in t else f"on {t.get('Date')}"
        parts.append(f"{t.get('StorageClass')} {when}")
    for t in rule.get("NoncurrentVersionTransitions") or []:
        parts.append(f"noncurrent {t.get('StorageClass')} {t.get('NoncurrentDays')}d")
    nve = rule.get("NoncurrentVersionExpiration") or {}
    if "NoncurrentDays" in nve:
        parts.append(f"noncurrent expire {nve['NoncurrentDays']}d")
    abort = rule.get("AbortIncompleteMultipartUpload") or {}
    if "DaysAfterInitiation" in abort:
        parts.append(f"abort incomplete multipart {abort['DaysAfterInitiation']}d")
    filt = rule.get("Filter")
    where = f"prefix {_filter_prefix(rule)!r}"
    if filt is not None and rule_prefix(rule) is None:
        where += " (+ tag/size filter)"
    status = "" if rule.get("Status", "Enabled") == "Enabled" else f" [{rule.get('Status')}]"
    return f"{rule.get('ID', '(no ID)')}{status}  {where}  {', '.join(parts) or '(no action)'}"
