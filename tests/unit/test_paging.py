"""store/paging.py: what every paginated listing checks of the server's pages (issue 24)."""

from __future__ import annotations

import pytest

from s3pump.errors import BrokenListingError
from s3pump.store.paging import PageGuard


def _guard(prefix: str = "p/") -> PageGuard:
    return PageGuard("s3://b/p/", "ListObjectsV2", "NextContinuationToken", prefix)


def test_a_chain_of_new_tokens_is_followed_to_the_untruncated_page() -> None:
    g = _guard()
    assert [g.next(True, "a"), g.next(True, "b"), g.next(False, None)] == ["a", "b", None]


@pytest.mark.parametrize("token", [None, "", ("", "")])
def test_truncated_without_a_continuation_stops_with_one_line_naming_the_listing(token: object) -> None:
    g = _guard()
    g.next(True, "a")
    with pytest.raises(BrokenListingError) as e:
        g.next(True, token)  # type: ignore[arg-type]
    assert "s3://b/p/" in str(e.value) and "truncated" in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 1


@pytest.mark.parametrize("chain", [["a", "a"], ["a", "b", "a"], [("k", "u"), ("k2", "u2"), ("k", "u")]])
def test_a_token_seen_before_at_any_distance_stops(chain: list[object]) -> None:
    g = _guard()
    for token in chain[:-1]:
        g.next(True, token)  # type: ignore[arg-type]
    with pytest.raises(BrokenListingError, match="twice"):
        g.next(True, chain[-1])  # type: ignore[arg-type]


def test_keys_outside_the_prefix_are_dropped() -> None:
    g = _guard("cl/")
    keys = ["cl/a", "clkeep/b", "cl", "cl/", "other/c", "cl/d/e"]
    assert [k for k in keys if g.keep(k)] == ["cl/a", "cl/", "cl/d/e"]
    assert g.dropped == 3


def test_a_page_that_starts_where_an_earlier_one_started_stops_whatever_its_token() -> None:
    g = _guard()
    g.next(True, "t1", "p/a")
    g.next(True, "t2", "p/m")
    g.next(True, "t3", None)  # an empty page says nothing
    with pytest.raises(BrokenListingError, match="loops"):
        g.next(True, "t4", "p/a")
