"""The stderr console every human message goes to (progress, summaries, errors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["stderr_console"]

_console: Console | None = None


def stderr_console() -> Console:
    """One rich console on stderr (created on first use: rich costs ~20 ms to import)."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True, highlight=False, soft_wrap=True)
    return _console


def say(text: str) -> None:
    """One plain line on stderr (no markup)."""
    stderr_console().print(text, markup=False, highlight=False)
