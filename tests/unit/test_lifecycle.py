"""Lifecycle rules (validation, merge, read-merge-verify) and version IDs, on the MemoryStore."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3pump.config import TransferConfig
from s3pump.errors import ConcurrentChangeError, UsageError
from s3pump.events import Event, FileDone
from s3pump.jobs.buckets import make_bucket, remove_bucket, set_versioning
from s3pump.jobs.export import export_table
from s3pump.lifecycle import (
    RuleOptions,
    default_rule_id,
    describe,
    merge,
    parse_days,
    parse_rule_items,
    same_rules,
)
from s3pump.lifecycle_update import apply_rule, rules_for_prefix
from s3pump.store.base import ObjectAttributes
from s3pump.store.memory import MemoryStore

CONFIG = TransferConfig(max_attempts=1, backoff_base_s=0.0)
UNRELATED = [
    {"ID": "logs-expiry", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 90}},
    {"ID": "tmp-tagged", "Status": "Disabled",
     "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "k", "Value": "v"}]}},
     "Transitions": [{"Days": 0, "StorageClass": "GLACIER"}]},
]


def bucket_with_rules(rules: list[dict[str, Any]] = UNRELATED) -> MemoryStore:
    s = MemoryStore()
    s.create_bucket("b")
    s.put_bucket_lifecycle("b", rules)
    s.request_log.clear()
    return s


def writes(s: MemoryStore) -> list[str]:
    return [op for op, _ in s.request_log if op in ("PutBucketLifecycleConfiguration", "DeleteBucketLifecycle")]


FULL = RuleOptions(expire_after="365d", transitions=("STANDARD_IA:30d", "GLACIER:90d"),
                   noncurrent_expire_after="30d", abort_incomplete_multipart_after="7d")


# ---------------------------------------------------------------------------- the merge
def test_adding_then_removing_a_rule_keeps_the_two_unrelated_ones() -> None:
    s = bucket_with_rules()
    change = apply_rule(s, "b", "exports/t/", FULL.rule("exports/t/"))
    assert change.written and writes(s) == ["PutBucketLifecycleConfiguration"]
    held = s.get_bucket_lifecycle("b")
    assert len(held) == 3 and [r for r in held if r["ID"] != "s3pump:exports/t/"] == UNRELATED
    mine = next(r for r in held if r["ID"] == "s3pump:exports/t/")
    assert mine == {
        "ID": "s3pump:exports/t/", "Status": "Enabled", "Filter": {"Prefix": "exports/t/"},
        "Expiration": {"Days": 365},
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    assert any(line.startswith("+ s3pump:exports/t/") for line in change.diff_lines())
    removed = apply_rule(s, "b", "exports/t/", None)
    assert removed.written and s.get_bucket_lifecycle("b") == UNRELATED
    assert any(line.startswith("- s3pump:exports/t/") for line in removed.diff_lines())


def test_removing_the_last_rule_deletes_the_configuration() -> None:
    s = bucket_with_rules([])
    apply_rule(s, "b", "p/", RuleOptions(expire_after="3d").rule("p/"))
    apply_rule(s, "b", "p/", None)
    assert writes(s)[-1] == "DeleteBucketLifecycle" and s.get_bucket_lifecycle("b") == []


def test_dry_run_and_a_rerun_write_nothing() -> None:
    s = bucket_with_rules()
    dry = apply_rule(s, "b", "p/", FULL.rule("p/"), dry_run=True)
    assert dry.changed and not dry.written and len(dry.after) == 3
    assert writes(s) == [] and s.get_bucket_lifecycle("b") == UNRELATED
    apply_rule(s, "b", "p/", FULL.rule("p/"))
    again = apply_rule(s, "b", "p/", FULL.rule("p/"))
    assert not again.changed and not again.written and writes(s) == ["PutBucketLifecycleConfiguration"]


def test_a_rule_is_replaced_by_id_or_by_its_exact_prefix() -> None:
    s = bucket_with_rules()
    apply_rule(s, "b", "p/", RuleOptions(rule_id="mine", expire_after="10d").rule("p/"), rule_id="mine")
    apply_rule(s, "b", "p/", RuleOptions(rule_id="mine", expire_after="20d").rule("p/"), rule_id="mine")
    held = s.get_bucket_lifecycle("b")
    assert [r["Expiration"] for r in held if r["ID"] == "mine"] == [{"Days": 20}] and len(held) == 3
    # without --id, the one rule filtering on exactly "logs/" is the one updated (it keeps its ID)
    apply_rule(s, "b", "logs/", RuleOptions(expire_after="30d").rule("logs/"))
    held = s.get_bucket_lifecycle("b")
    assert [r["Expiration"] for r in held if r["ID"] == "logs-expiry"] == [{"Days": 30}] and len(held) == 3
    assert [r for r in held if r["ID"] == "tmp-tagged"] == UNRELATED[1:]


def test_two_rules_on_the_prefix_need_an_id() -> None:
    twins = [{"ID": i, "Status": "Enabled", "Filter": {"Prefix": "p/"}, "Expiration": {"Days": 9}} for i in "xy"]
    s = bucket_with_rules(twins)
    with pytest.raises(UsageError, match="--id"):
        apply_rule(s, "b", "p/", RuleOptions(expire_after="3d").rule("p/"))
    assert writes(s) == []


def test_show_lists_the_rules_acting_on_a_prefix() -> None:
    s = bucket_with_rules([*UNRELATED, {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""},
                                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}])
    scopes = {r["ID"]: scope for r, scope in rules_for_prefix(s, "b", "logs/2025/")}
    assert scopes == {"logs-expiry": "all", "all": "all"}
    scopes = {r["ID"]: scope for r, scope in rules_for_prefix(s, "b", "tmp/")}
    assert scopes == {"tmp-tagged": "some", "all": "all"}  # a tag filter acts on some keys only
    assert "abort incomplete multipart 7d" in describe(s.get_bucket_lifecycle("b")[2])


# ---------------------------------------------------------------------------- a concurrent writer
class _Meddler(MemoryStore):
    """Another writer: changes the configuration right after s3pump reads it (``on_get``) or
    right after s3pump writes it (``after_put``)."""

    def __init__(self, *, on_get: int | None = None, after_put: bool = False) -> None:
        super().__init__()
        self.gets = 0
        self.on_get, self.after_put = on_get, after_put

    def _other_writer(self, bucket: str) -> None:
        rules = MemoryStore.get_bucket_lifecycle(self, bucket)
        rules.append({"ID": f"theirs-{len(rules)}", "Status": "Enabled", "Filter": {"Prefix": "t/"},
                      "Expiration": {"Days": 1}})
        MemoryStore.put_bucket_lifecycle(self, bucket, rules)

    def get_bucket_lifecycle(self, bucket: str) -> list[dict[str, Any]]:
        rules = super().get_bucket_lifecycle(bucket)
        self.gets += 1
        if self.on_get is not None and self.gets == self.on_get:
            self._other_writer(bucket)
        return rules

    def put_bucket_lifecycle(self, bucket: str, rules: Any) -> None:
        super().put_bucket_lifecycle(bucket, rules)
        if self.after_put:
            self._other_writer(bucket)


def test_a_change_between_read_and_write_is_merged_not_lost() -> None:
    s = _Meddler(on_get=1)  # another rule appears right after s3pump's first read
    s.create_bucket("b")
    change = apply_rule(s, "b", "p/", RuleOptions(expire_after="5d").rule("p/"))
    assert change.written
    assert sorted(r["ID"] for r in s.get_bucket_lifecycle("b")) == ["s3pump:p/", "theirs-0"]


def test_a_change_right_after_the_write_is_reported() -> None:
    s = _Meddler(after_put=True)
    s.create_bucket("b")
    with pytest.raises(ConcurrentChangeError, match="another writer"):
        apply_rule(s, "b", "p/", RuleOptions(expire_after="5d").rule("p/"), verify_s=0.0)


# ---------------------------------------------------------------------------- validation, before any request
@pytest.mark.parametrize(("options", "message"), [
    (RuleOptions(), "at least one of"),
    (RuleOptions(expire_after="0d"), "at least 1 day"),
    (RuleOptions(expire_after="12h"), "whole days"),
    (RuleOptions(noncurrent_expire_after="-3d"), "whole days"),
    (RuleOptions(abort_incomplete_multipart_after="0"), "at least 1 day"),
    (RuleOptions(transitions=("REDUCED_REDUNDANCY:40d",)), "transitions only to"),
    (RuleOptions(transitions=("STANDARD:40d",)), "transitions only to"),
    (RuleOptions(transitions=("STANDARD_IA",)), "STORAGE_CLASS:DAYS"),
    (RuleOptions(transitions=("STANDARD_IA:10d",)), "at least 30 days"),
    (RuleOptions(transitions=("ONEZONE_IA:29d",)), "at least 30 days"),
    (RuleOptions(transitions=("GLACIER:30d", "STANDARD_IA:60d")), "only down the order"),
    (RuleOptions(transitions=("GLACIER:30d", "GLACIER:60d")), "given twice"),
    (RuleOptions(transitions=("GLACIER_IR:30d", "GLACIER:30d")), "same day"),
    (RuleOptions(transitions=("STANDARD_IA:30d", "GLACIER:45d")), "at least 30 days after"),
    (RuleOptions(expire_after="60d", transitions=("GLACIER:60d",)), "later than the last transition"),
    (RuleOptions(rule_id="x" * 256, expire_after="1d"), "1 to 255"),
])
def test_invalid_rules_are_refused_before_any_request(options: RuleOptions, message: str) -> None:
    s = bucket_with_rules()
    with pytest.raises(UsageError, match=message):
        apply_rule(s, "b", "p/", options.rule("p/"))
    assert s.request_log == []  # nothing was asked of the store


def test_valid_edge_cases() -> None:
    rule = RuleOptions(expire_after="1d").rule("")
    assert rule.to_s3()["Filter"] == {"Prefix": ""}
    ok = RuleOptions(expire_after="400 days", transitions=("standard_ia:30d", "glacier:60d", "DEEP_ARCHIVE:240d"))
    assert [t["StorageClass"] for t in ok.rule("p/").to_s3()["Transitions"]] == [
        "STANDARD_IA", "GLACIER", "DEEP_ARCHIVE"]
    assert RuleOptions(transitions=("GLACIER:0d",)).rule("p/").transitions[0].days == 0  # S3 allows 0 here
    assert parse_days("7", what="x") == 7
    long_id = default_rule_id("k" * 600)
    assert len(long_id) <= 255 and long_id != default_rule_id("k" * 599)


def test_the_spellings_of_a_bucket_wide_filter_compare_equal() -> None:
    ours = RuleOptions(expire_after="3d").rule("").to_s3()
    for theirs in ({**ours, "Filter": {}}, {k: v for k, v in ours.items() if k != "Filter"},
                   {**{k: v for k, v in ours.items() if k != "Filter"}, "Prefix": ""}):
        assert same_rules([ours], [theirs])
    assert not same_rules([ours], [{**ours, "Filter": {"Prefix": "p/"}}])


def test_export_lifecycle_items_parse_like_the_flags() -> None:
    opts = parse_rule_items(["expire-after=365d", "transition=STANDARD_IA:30d", "transition=GLACIER:90d",
                             "abort-incomplete-multipart-after=7d", "noncurrent-expire-after=30d", "id=n"])
    assert opts == RuleOptions("n", "365d", ("STANDARD_IA:30d", "GLACIER:90d"), "30d", "7d")
    with pytest.raises(UsageError, match="NAME=VALUE"):
        parse_rule_items(["expire-after"])
    with pytest.raises(UsageError, match="use expire-after"):
        parse_rule_items(["expires=3d"])


_ids = st.text("abcdefgh-", min_size=1, max_size=6)
_foreign = st.fixed_dictionaries({
    "ID": _ids, "Status": st.sampled_from(["Enabled", "Disabled"]),
    "Filter": st.fixed_dictionaries({"Prefix": st.sampled_from(["", "a/", "a/b/", "p/", "p/q/", "z"])}),
    "Expiration": st.fixed_dictionaries({"Days": st.integers(1, 999)}),
})


@settings(max_examples=150, deadline=None)
@given(foreign=st.lists(_foreign, max_size=6, unique_by=lambda r: r["ID"]),
       ops=st.lists(st.tuples(st.sampled_from(["p/", "a/", "q/", ""]), st.booleans(), st.integers(1, 99)),
                    min_size=1, max_size=6))
def test_merge_never_touches_a_rule_it_does_not_manage(foreign: list[dict[str, Any]],
                                                       ops: list[tuple[str, bool, int]]) -> None:
    """Whatever sequence of adds and removes by --id: every other rule stays exactly as it was."""
    rules = [dict(r) for r in foreign]
    mine: dict[str, int] = {}
    for prefix, remove, days in ops:
        rid = f"mine:{prefix}"
        rule = None if remove else RuleOptions(rule_id=rid, expire_after=f"{days}d").rule(prefix)
        rules = merge(rules, rule, rule_id=rid, prefix=prefix)
        if remove:
            mine.pop(rid, None)
        else:
            mine[rid] = days
    assert [r for r in rules if not r["ID"].startswith("mine:")] == foreign
    assert {r["ID"]: r["Expiration"]["Days"] for r in rules if r["ID"].startswith("mine:")} == mine
    assert same_rules(merge(rules, None, rule_id="absent", prefix="nowhere/"), rules)


# ---------------------------------------------------------------------------- buckets and versions
def test_mb_rb_and_versioning_on_memory() -> None:
    s = MemoryStore()
    make_bucket(s, "vvv", versioning=True)
    assert set_versioning(s, "vvv", None) == "Enabled"
    with pytest.raises(Exception, match="BucketAlreadyExists"):
        make_bucket(s, "vvv")
    s.put_bytes("vvv", "k", b"1", ObjectAttributes(), lambda r: None)
    with pytest.raises(Exception, match="BucketNotEmpty"):
        remove_bucket(s, "vvv")
    assert remove_bucket(s, "vvv", force=True) >= 1
    assert "vvv" not in s.buckets


def make_db(path: Path, rows: list[tuple[int, str, str]]) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, kind TEXT, note TEXT)")
    conn.executemany("INSERT OR REPLACE INTO t VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def test_reexport_of_a_changed_partition_keeps_two_versions_and_records_them(tmp_path: Path) -> None:
    """Versioned bucket: --dedup rewrites only the partition whose rows changed; both versions
    stay, the done events name both version IDs, and the checkpoint holds the latest."""
    s = MemoryStore()
    make_bucket(s, "bkt", versioning=True)
    db = make_db(tmp_path / "db.sqlite", [(1, "a", "x"), (2, "b", "y"), (3, "a", "z")])
    events: list[Event] = []
    kw: dict[str, Any] = dict(partition_by=["column:kind"], format="jsonl", dedup=True, store=s,
                              subscribers=[events.append], lifecycle=RuleOptions(expire_after="30d"))
    export_table(str(db), "t", "s3://bkt/exp", CONFIG, **kw)
    make_db(db, [(3, "a", "changed")])
    export_table(str(db), "t", "s3://bkt/exp", CONFIG, **kw)
    done = [e for e in events if isinstance(e, FileDone) and "/kind=a/" in e.key]
    assert len(done) == 2 and done[0].key == done[1].key
    assert all(e.version_id for e in done) and done[0].version_id != done[1].version_id
    versions = [v for v in s.list_object_versions("bkt", done[0].key)]
    assert {v.version_id for v in versions} == {e.version_id for e in done}
    checkpoint = json.loads(s.get_object("bkt", "exp/_s3pump/state/t.json"))
    assert checkpoint["versions"][done[1].key] == done[1].version_id
    # the rule was installed once, for the table's objects only (not the checkpoint under _s3pump/)
    assert [r["Filter"] for r in s.get_bucket_lifecycle("bkt")] == [{"Prefix": "exp/t/"}]
    assert [op for op, _ in s.request_log].count("PutBucketLifecycleConfiguration") == 1
