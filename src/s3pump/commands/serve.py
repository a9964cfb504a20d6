"""``s3pump serve``: a local S3 server (SeaweedFS) in the foreground, or the embedded one's keys
(:mod:`s3pump.devserver`)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from .base import examples, run
from .options import note

__all__ = ["HELP", "serve"]

HELP = ("Run a local S3 server (SeaweedFS) on 127.0.0.1 in the foreground, until Ctrl-C. While it runs, "
        "commands with --embedded use it."
        + examples("s3pump serve --port 8333", "eval \"$(s3pump serve --env)\"", "s3pump serve --stop-embedded"))


def _interrupt_on(*signals: signal.Signals) -> None:
    """These signals raise KeyboardInterrupt, as SIGINT does (serve's way to stop its server)."""
    for sig in signals:
        signal.signal(sig, signal.default_int_handler)


def serve(
    port: Annotated[int | None, typer.Option("--port", metavar="PORT", help=note("S3 port",
                                                                                default="a free port"))] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", metavar="DIR", help=note(
        "Data directory", default="the embedded server's, shared with --embedded"))] = None,
    info: Annotated[bool, typer.Option("--info", metavar="", help="Print the running embedded server's endpoint "
                                       "and keys, then exit")] = False,
    env: Annotated[bool, typer.Option("--env", metavar="", help="Print them as export AWS_...=... lines (for eval), "
                                      "then exit")] = False,
    stop_embedded: Annotated[bool, typer.Option("--stop-embedded", metavar="", help="Stop the background server that "
                                                "--embedded started (its data is kept), then exit")] = False,
) -> None:
    def body() -> int:
        from ..devserver import embedded_dir, record_server, running_embedded, start_server, state_file, stop_server
        from ..devserver import stop_embedded as stop_embedded_server
        from ..errors import UsageError
        from ..ui.console import say
        from ..ui.server_view import print_server, print_server_env

        if stop_embedded:
            if stop_embedded_server(say) is None:
                say("no embedded server is running")
            return 0
        if info or env:
            running = running_embedded()
            if running is None:
                say("no embedded server is running; start one with: s3pump serve (or any command with --embedded)")
                return 1
            if env:
                print_server_env(running)
            else:
                print_server(running, pid=running.pid)
            return 0
        directory = data_dir or embedded_dir()
        shared = directory.resolve() == embedded_dir().resolve()
        already = running_embedded() if shared else None
        if already is not None:
            raise UsageError(f"the embedded server already runs on {directory} ({already.endpoint_url}); use it "
                             "(s3pump serve --info), or stop it first: s3pump serve --stop-embedded")
        # SeaweedFS runs in its own process group: SIGTERM and SIGHUP here, as Ctrl-C, stop it and all it
        # started (a second one kills it at once), instead of leaving it running with its ports and data dir
        _interrupt_on(signal.SIGTERM, signal.SIGHUP)
        server, proc = start_server(directory, s3_port=port)
        try:
            if shared:
                record_server(server)  # --embedded and serve --info see it while it runs
            print_server(server)
            say("s3pump serve --env prints export lines for these; Ctrl-C stops the server")
            proc.wait()
        finally:
            if proc.poll() is None:
                say("stopping the server ...")
            stop_server(proc)
            if shared:
                state_file().unlink(missing_ok=True)
        return 0

    run(False, body)
