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
    # full collection. A run then allocates many short-lived objects (events, items, listing
    # entries): a young collection walks the ones still alive, so the rarer it runs, the more of them
    # have died first. Every 10,000 allocations instead of 700 cut a no-op sync's client CPU by ~14 %;
    # every 100,000 cut the collector's own time in a no-op sync of 25,000 files from ~0.13 s (about
    # 6 % of the run) to ~3 ms (issue 15; gc.callbacks timing). Only objects in reference cycles wait
    # for a collection, and a run makes few.
    gc.disable()
    from .cli import main as cli_main

    gc.freeze()
    gc.set_threshold(100_000, 10, 10)
    gc.enable()
    cli_main()


if __name__ == "__main__":
    main()
