"""``s3pump generate``: test files, fast (:func:`s3pump.jobs.generate.generate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .base import examples, run
from .options import note

__all__ = ["HELP", "generate"]

HELP = ("Write test files fast (fixed size, or a log-uniform size distribution)."
        + examples("s3pump generate ./demo-data --count 1000 --size 4KiB",
                   "s3pump generate ./mixed --count 2000 --size-min 0 --size-max 40MiB --seed 7"))


def generate(
    directory: Annotated[Path, typer.Argument(help="Directory to write into", metavar="DIR", show_default=False)],
    count: Annotated[int, typer.Option("--count", "-n", metavar="N", show_default=False, help=note("Number of files",
                                                                              default=100))] = 100,
    size: Annotated[str | None, typer.Option("--size", metavar="SIZE", help=note(
        "Size of every file, e.g. 4KiB", default="4KiB"))] = None,
    size_min: Annotated[str | None, typer.Option("--size-min", metavar="SIZE",
                                                 help="Smallest size (log-uniform)")] = None,
    size_max: Annotated[str | None, typer.Option("--size-max", metavar="SIZE",
                                                 help="Largest size (log-uniform)")] = None,
    files_per_dir: Annotated[int, typer.Option("--files-per-dir", metavar="N", show_default=False, help=note(
        "Files per subdirectory", default=1000))] = 1000,
    seed: Annotated[int, typer.Option("--seed", metavar="N", show_default=False,
                                      help=note("Random seed", default=0))] = 0,
) -> None:
    def body() -> None:
        import time

        from ..jobs.generate import generate as generate_api
        from ..ui.console import say
        from ..units import format_bytes, parse_size_bytes

        if size is None and size_min is None and size_max is None:
            size_bytes: int | None = 4096
        else:
            size_bytes = parse_size_bytes(size, what="--size") if size is not None else None
        t0 = time.monotonic()
        rep = generate_api(
            directory, count=count, size_bytes=size_bytes,
            size_min_bytes=parse_size_bytes(size_min, what="--size-min") if size_min else None,
            size_max_bytes=parse_size_bytes(size_max, what="--size-max") if size_max else None,
            files_per_dir=files_per_dir, seed=seed,
        )
        say(f"wrote {rep.files} files, {format_bytes(rep.bytes)} to {rep.directory} in {time.monotonic() - t0:.1f} s")

    run(False, body)
