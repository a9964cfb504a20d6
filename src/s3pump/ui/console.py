"""The stderr console every human message goes to (progress, summaries, errors).

On a terminal (or with ``FORCE_COLOR`` set) that is a rich console; otherwise a plain writer that
prints the same lines without colour, so that a run whose stderr is a file or a pipe does not pay
rich's import (about 40 ms, a few per cent of a no-op sync).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["LineConsole", "PlainConsole", "print_failure", "rich_stderr_console", "say", "stderr_console"]


class LineConsole(Protocol):
    """What the summaries ask of a console: one line of text (``markup``: rich markup in it)."""

    def print(self, text: str, *, markup: bool = ..., highlight: bool = ...) -> None: ...


class PlainConsole:
    """Lines on stderr without rich: for a stderr that is not a terminal. Takes plain text only
    (``markup=True`` text goes through :func:`print_failure`, which sends none here)."""

    def print(self, text: str, *, markup: bool = False, highlight: bool = False, **_: Any) -> None:
        stream = sys.stderr
        stream.write(f"{text}\n")
        stream.flush()


_console: Console | PlainConsole | None = None
_rich: Console | None = None


def rich_stderr_console() -> Console:
    """One rich console on stderr (created on first use), for what only rich draws: the progress bar."""
    global _rich
    if _rich is None:
        from rich.console import Console

        _rich = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # a key is never an emoji
    return _rich


def stderr_console() -> Console | PlainConsole:
    """The console of this run's human lines: rich on a terminal, :class:`PlainConsole` otherwise."""
    global _console
    if _console is None:
        terminal = sys.stderr.isatty() or bool(os.environ.get("FORCE_COLOR"))
        _console = rich_stderr_console() if terminal else PlainConsole()
    return _console


def print_failure(console: LineConsole, label: str, detail: str) -> None:
    """``label`` (e.g. ``failed``) in red where the console has colour, then ``detail`` as given
    (a path, a key, an error: never read as markup)."""
    if isinstance(console, PlainConsole):
        console.print(f"{label} {detail}")
        return
    from rich.markup import escape

    console.print(f"[red]{escape(label)}[/] {escape(detail)}", markup=True)


def say(text: str) -> None:
    """One plain line on stderr (no markup)."""
    stderr_console().print(text, markup=False, highlight=False)
