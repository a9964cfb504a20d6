"""``python -m s3pump``: the CLI."""

from .cli import main

main()
