"""The ``s3pump`` command line: the app, its root options, and its verbs (one module each in
:mod:`s3pump.commands`).

Each verb parses its flags into a config (:func:`s3pump.commands.config.config_from`), builds the
views of its run (:class:`s3pump.ui.views.Views`), calls its job with ``handle_signals=True`` (the
first Ctrl-C/SIGTERM stops at a safe point, a second at once) and prints the summary.

Exit codes: 0 everything done; 1 some items failed (they are listed); 2 usage or
configuration error (bad flag, bad URL, missing bucket, bad credentials); 130 cancelled by
Ctrl-C or SIGTERM. Errors are one line on stderr, never a traceback (``--debug`` adds one).

Start-up: this module imports only Typer and s3pump's light modules; a verb imports its job
(awscrt, pyarrow, ...) and rich when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from . import __version__, clicoerce
from .cliargs import OrderedArgsCommand
from .commands import buckets, cleanup, export, generate, lifecycle, ls, serve, stream, sync, upload, verify
from .commands.base import Command, Group
from .commands.groups import spliced

__all__ = ["app", "main"]

clicoerce.install()  # plain option values without pydantic (Typer's coercion for everything else)

app = typer.Typer(
    name="s3pump",
    cls=Group,
    help="Move data into S3 and S3-compatible object stores: fast, in bounded memory, without losing a byte.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120},
)


def _version(value: bool) -> None:
    if value:
        print(f"s3pump {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool | None, typer.Option("--version", "-V", callback=_version, is_eager=True, metavar="",
                                                 help="Print the version and exit")] = None,
) -> None:
    """Move data into S3 and S3-compatible object stores: fast, in bounded memory, without losing a byte.

    Exit codes: 0 done; 1 some items failed (listed, and written to a failed-list); 2 usage or
    configuration error; 130 cancelled.
    """


#: (name, function, help, command class), in the order of ``s3pump --help``
_VERBS: list[tuple[str, Callable[..., Any], str, type[Command]]] = [
    ("upload", upload.upload, upload.HELP, OrderedArgsCommand),
    ("sync", sync.sync, sync.HELP, OrderedArgsCommand),
    ("stream", stream.stream, stream.HELP, Command),
    ("export", export.export, export.HELP, Command),
    ("cleanup", cleanup.cleanup, cleanup.HELP, Command),
    ("generate", generate.generate, generate.HELP, Command),
    ("serve", serve.serve, serve.HELP, Command),
    ("ls", ls.ls_command, ls.HELP, Command),
    ("verify", verify.verify, verify.HELP, Command),
    ("lifecycle", lifecycle.lifecycle, lifecycle.HELP, Command),
    ("mb", buckets.mb, buckets.MB_HELP, Command),
    ("rb", buckets.rb, buckets.RB_HELP, Command),
    ("versioning", buckets.versioning, buckets.VERSIONING_HELP, Command),
]
for _name, _function, _help, _cls in _VERBS:
    app.command(_name, help=_help, cls=_cls)(spliced(_function))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
