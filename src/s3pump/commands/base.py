"""What every command shares: its Typer classes, its help's Examples, and how its body runs.

:func:`run` runs a command body and maps what it raises onto one line on stderr and an exit code
(0 done; 1 some items failed; 2 usage or configuration error; 130 cancelled; ``--debug`` adds the
traceback to the log). :class:`Command` and :class:`Group` are Typer's classes with a help option
that shows no type column (Typer would print ``<bool>`` beside ``-h, --help``), and arguments whose
name (their metavar) is their whole description (Typer would print ``<list[str]>`` beside ``PATH``).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from ..errors import EXIT_CANCELLED, CancelledError, S3PumpError, UsageError

if TYPE_CHECKING:
    from ..ui.views import Views
    from .groups import Opts

__all__ = ["Command", "Group", "bucket_name", "examples", "need", "run", "views"]


def _help_option_without_type(option: Any) -> Any:
    if option is not None and option.metavar is None:
        option.metavar = ""  # a flag: Typer would print "<bool>" beside -h, --help
    return option


def _no_type_column(self: Any, ctx: Any) -> str | None:
    return None


class Command(TyperCommand):
    """A Typer command whose help shows no Python types (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and hasattr(param, "display_type_rich"):  # Typer >= 0.16
                param.display_type_rich = types.MethodType(_no_type_column, param)  # type: ignore[method-assign]

    def get_help_option(self, ctx: Any) -> Any:
        return _help_option_without_type(super().get_help_option(ctx))


class Group(TyperGroup):
    """The root command: its help option shows no type either."""

    def get_help_option(self, ctx: Any) -> Any:
        return _help_option_without_type(super().get_help_option(ctx))


def examples(*lines: str) -> str:
    """An Examples section for a command's help (rich markup: each line on its own)."""
    return "\n\n[bold]Examples[/bold]\n\n" + "\n\n".join(f"  [cyan]{line}[/cyan]" for line in lines)


def run(debug: bool, body: Callable[[], int | None]) -> NoReturn:
    """Run a command body and exit with its code (None: 0); map s3pump errors to one line and an exit code."""
    from ..logs import configure_logging
    from ..ui.console import say

    configure_logging(debug)
    try:
        code = body() or 0
    except S3PumpError as e:
        _log_traceback(debug)
        hint = ""
        if isinstance(e, CancelledError) and e.kept_uploads:
            hint = "; rerun the same command to resume, or add --no-resume to start over"
        for line in f"{e}{hint}".splitlines() or [""]:  # one line per problem (e.g. one per clashing key)
            say(f"s3pump: error: {line}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        say("s3pump: cancelled")
        raise typer.Exit(EXIT_CANCELLED) from None
    except Exception as e:  # out of file descriptors wherever it struck: one line naming the limit
        from ..errors import is_out_of_files, open_files_error

        if not is_out_of_files(e):
            raise
        _log_traceback(debug)
        error = open_files_error(e if isinstance(e, OSError) else None)
        say(f"s3pump: error: {error}")
        raise typer.Exit(error.exit_code) from None
    raise typer.Exit(code)


def _log_traceback(debug: bool) -> None:
    if debug:
        import logging

        logging.getLogger("s3pump").exception("failed")


def views(kind: str, label: str, out: Opts, *, no_progress: bool = False, **kw: Any) -> Views:
    """The views of a run (progress, ``--json``, metrics) from its output options (``OUTPUT_OPTS``, or
    ``METRICS_OPTS`` and single ``json_output``/``no_progress`` options); ``no_progress`` adds to
    ``--no-progress``."""
    from ..ui.views import Views

    return Views(kind=kind, label=label, json_output=out.json_output, progress=out.progress,
                 no_progress=out.no_progress or no_progress, metrics_port=out.metrics_port,
                 metrics_file=out.metrics_file, **kw)


def need(module: str, extra: str, what: str) -> None:
    """Raise a one-line UsageError (exit 2) when ``module`` of the ``extra`` is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise UsageError(f"{what} needs the '{extra}' extra: pip install 's3pump[{extra}]'")


def bucket_name(url: str, verb: str) -> str:
    """The bucket of ``s3://bucket`` (or ``bucket``).

    Raises:
        UsageError: the URL names a prefix, or is malformed.
    """
    from ..urls import parse_s3_url

    dest = parse_s3_url(url if url.startswith("s3://") else f"s3://{url}")
    if dest.prefix.strip("/"):
        raise UsageError(f"{verb} {url}: give a bucket (s3://bucket), not a prefix")
    return dest.bucket
