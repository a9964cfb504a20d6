"""Which paths of a tree a walk takes: ``--include``/``--exclude``.

Filters (the aws cli's rule): ``--include``/``--exclude`` globs (fnmatch, ``*`` crosses ``/``)
match the path relative to its root, and apply in the order given: every file starts taken,
and the last filter that matches decides. So ``--exclude '*' --include '*.txt'`` takes only
``.txt`` files, and ``--include '*.txt' --exclude 'tmp/*'`` takes everything but ``tmp/``.
One difference from the aws cli: when every filter is an include, they start from nothing
taken (``--include '*.txt'`` alone takes only ``.txt`` files; in the aws cli it would be a
no-op). Built from two separate lists (``PathFilter(include, exclude)``), the excludes come
first, so an include wins over an exclude.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from ..errors import UsageError

__all__ = ["FilterRule", "PathFilter"]


FilterRule = tuple[str, str]
"""``("include" | "exclude", glob)``."""


class PathFilter:
    """The include/exclude rule described in the module docstring: ``filter(relpath)`` says whether the path
    (relative to its root) is taken."""

    __slots__ = ("_rules", "_start")

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = (), *,
                 rules: Sequence[FilterRule] | None = None) -> None:
        """``rules``: the filters in command-line order; without it, ``exclude`` then ``include``.

        Raises:
            UsageError: a rule's kind is neither ``include`` nor ``exclude``.
        """
        ordered = list(rules) if rules is not None else [
            *(("exclude", p) for p in exclude), *(("include", p) for p in include)]
        for kind, _ in ordered:
            if kind not in ("include", "exclude"):
                raise UsageError(f"filter kind {kind!r}: use 'include' or 'exclude'")
        self._rules = tuple(ordered)
        self._start = not ordered or any(kind == "exclude" for kind, _ in ordered)

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def __call__(self, relpath: str) -> bool:
        taken = self._start
        for kind, pattern in self._rules:
            if fnmatch.fnmatchcase(relpath, pattern):
                taken = kind == "include"
        return taken
