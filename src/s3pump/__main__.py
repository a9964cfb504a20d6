"""``python -m s3pump`` and the ``s3pump`` console script.

``s3pump --version`` (``-V``) is answered here, before the command line's modules (Typer, ~40 ms)
are imported; everything else goes to :func:`s3pump.cli.main`, with the garbage collector tuned for
a command-line process (below).
"""

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from . import __version__

        print(f"s3pump {__version__}")
        return
    import gc

    # Start-up allocates much that lives as long as the process (modules, classes, Typer's command
    # tree): collecting while it grows is wasted work, and so is looking at it again in every later
    # full collection. A run then allocates many short-lived objects (events, items): collecting
    # every 10,000 allocations instead of every 700 cut a no-op sync's client CPU by ~14 % (issue 15).
    gc.disable()
    from .cli import main as cli_main

    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    gc.enable()
    cli_main()


if __name__ == "__main__":
    main()
