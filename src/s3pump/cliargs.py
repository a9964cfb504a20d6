"""What click does not keep of a command line: the order of ``--include`` and ``--exclude``.

click collects each repeatable option into its own list, so ``--exclude '*' --include '*.txt'``
and ``--include '*.txt' --exclude '*'`` would look the same. The aws cli's filter rule depends on
that order (the last matching filter wins), so commands with filters use
:class:`OrderedArgsCommand`, which keeps the raw arguments, and :func:`filter_rules` reads the
filters back from them in order.
"""

from __future__ import annotations

from typing import Any

import typer

from .commands.base import Command

__all__ = ["OrderedArgsCommand", "filter_rules"]

_META_KEY = "s3pump.raw_args"
_FILTERS = {"--include": "include", "--exclude": "exclude"}


class OrderedArgsCommand(Command):
    """A command (:class:`~s3pump.commands.base.Command`) that remembers its raw arguments in ``ctx.meta``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta[_META_KEY] = list(args)
        return super().parse_args(ctx, args)


def filter_rules(
    ctx: typer.Context, include: list[str] | None, exclude: list[str] | None
) -> list[tuple[str, str]] | None:
    """``[("include"|"exclude", glob), ...]`` in command-line order, or None without filters.

    ``include``/``exclude`` are click's parsed lists; the order comes from the raw arguments
    that ``ctx`` (of an :class:`OrderedArgsCommand`) kept. Should the two disagree (an option value that looks
    like ``--include``), the lists win, excludes first.
    """
    if not include and not exclude:
        return None
    raw: list[str] = ctx.meta.get(_META_KEY, [])
    rules: list[tuple[str, str]] = []
    i = 0
    while i < len(raw):
        token = raw[i]
        if token == "--":
            break
        name, eq, value = token.partition("=")
        if name in _FILTERS:
            if not eq:
                i += 1
                value = raw[i] if i < len(raw) else ""
            rules.append((_FILTERS[name], value))
        i += 1
    if [p for k, p in rules if k == "include"] != list(include or []) or \
            [p for k, p in rules if k == "exclude"] != list(exclude or []):
        return [*(("exclude", p) for p in exclude or []), *(("include", p) for p in include or [])]
    return rules
