"""``python -m s3pump`` and the ``s3pump`` console script.

``s3pump --version`` (``-V``) is answered here, before the command line's modules (Typer, ~40 ms)
are imported; everything else goes to :func:`s3pump.cli.main`.
"""

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from . import __version__

        print(f"s3pump {__version__}")
        return
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
