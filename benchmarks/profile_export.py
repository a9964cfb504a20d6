"""Profile ``s3pump export`` with py-spy against its own SeaweedFS, and group the samples into steps.

py-spy (``pip install py-spy``, in the ``bench`` extra) samples the CLI process 100 times a second
with native frames (``--native``) and leaves idle threads out, so the shares are of CPU time, not of
wall time. The samples are grouped by the first step each stack belongs to (GC first, wherever it
runs), and the top self and inclusive frames are printed.

Usage:
  python benchmarks/profile_export.py --format jsonl --rows 2000000
  python benchmarks/profile_export.py --format parquet --rows 2000000 --out /tmp/parquet.txt
  python benchmarks/profile_export.py --summarize /tmp/parquet.txt     # an earlier profile
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from export import make_events_db
from harness import Bench, s3pump_cli

STEPS: list[tuple[str, Callable[[list[str]], bool]]] = [
    ("cyclic GC (`gc_collect_main`)", lambda fr: any("gc_collect_main" in f for f in fr)),
    ("SQLite `fetchall` (row tuples)", lambda fr: any("_SqliteTable._execute" in f for f in fr)),
    ("rows → Arrow (`to_arrow`)", lambda fr: any(f.startswith("to_arrow ") for f in fr)),
    ("partitioning (`split`)", lambda fr: any(f.startswith("split ") for f in fr)),
    ("gzip", lambda fr: any(("GzipFile." in f or "gzip_compress" in f) for f in fr)),
    ("JSON text", lambda fr: any("JsonLinesSerializer.serialize" in f for f in fr)),
    ("Parquet writing (zstd)", lambda fr: any("ParquetSerializer.serialize" in f for f in fr)),
    ("start-up (imports, configuration)", lambda fr: any("_find_and_load" in f or "config_from" in f for f in fr)),
    ("upload (engine, store, awscrt)", lambda fr: any("s3pump/store" in f or "scheduler.py" in f or "awscrt" in f
                                                      for f in fr)),
]


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: one ``frame;frame;... count`` line per distinct stack."""
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        out.append(([re.sub(r":\d+\)$", ")", f) for f in stack.split(";")], int(count)))
    return out


def summarize(path: Path, top: int = 12) -> str:
    """A Markdown table of the steps' shares, then the top self and inclusive frames."""
    stacks = read_stacks(path)
    total = sum(n for _, n in stacks) or 1
    steps: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for frames, n in stacks:
        steps[next((name for name, rule in STEPS if rule(frames)), "other")] += n
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    lines = [f"{path}: {total} samples", "", "| step | share of CPU samples |", "|---|---:|"]
    lines += [f"| {name} | {100 * steps[name] / total:.0f} % |" for name, _ in [*STEPS, ("other", None)]]
    lines += ["", "top self:"] + [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)]
    skip = ("typer", "runpy", "__main__", "cli.py", "<module>", "_run_code")
    shown = [(f, n) for f, n in inclusive.most_common() if not any(s in f for s in skip)]
    lines += ["", "top inclusive:"] + [f"  {100 * n / total:5.1f} %  {f}" for f, n in shown[:top * 2]]
    return "\n".join(lines)


def profile(db: str, fmt: str, out: Path, extra: list[str], table: str = "events",
            spy_args: tuple[str, ...] = ("--native",)) -> None:
    """Run ``s3pump export`` under ``py-spy record`` against a fresh SeaweedFS; raw samples to ``out``
    (``db``: a SQLite file, partitioned by day, or a PostgreSQL URL, not partitioned)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    bench = Bench()
    try:
        bucket = bench.bucket("bench-profile")
        argv = [spy, "record", "-r", "100", *spy_args, "-f", "raw", "-o", str(out), "--",
                *s3pump_cli(), "export", db, f"s3://{bucket}/p", "--table", table,
                *([] if "://" in db else ["--partition-by", "time:ts:day"]), "--format", fmt, "--no-progress",
                *extra]
        subprocess.run(argv, env=bench.env, check=True)
    finally:
        bench.close()


def profile_postgres(args: argparse.Namespace) -> None:
    """The PostgreSQL workload of ``export.py --source postgres`` under py-spy."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.pgserver
    from export_pg import make_pg_events

    from tests.pgserver import start_postgres, stop_postgres

    pg = start_postgres()
    work = Path(tempfile.mkdtemp(prefix="s3pump-profile-"))
    try:
        make_pg_events(pg.url, args.rows)
        out = args.out or work / f"{args.format}.txt"
        profile(pg.url, args.format, out, args.s3pump_args.split(), table="pgevents")
        print(summarize(out))
    finally:
        stop_postgres(pg)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--format", default="jsonl", choices=("parquet", "jsonl"))
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--out", type=Path, help="where py-spy's raw samples go (default: a temporary file)")
    ap.add_argument("--summarize", type=Path, help="only summarize this earlier profile")
    ap.add_argument("--s3pump-args", default="", help="extra flags for s3pump export")
    ap.add_argument("--spy-args", default="--native", help="py-spy's sampling flags (--gil: only the GIL's holder)")
    ap.add_argument("--source", default="sqlite", choices=("sqlite", "postgres"),
                    help="postgres: export.py's PostgreSQL table (pgevents) from a PostgreSQL of its own")
    args = ap.parse_args()
    if args.summarize:
        print(summarize(args.summarize))
        return
    if args.source == "postgres":
        profile_postgres(args)
        return
    work = Path(tempfile.mkdtemp(prefix="s3pump-profile-"))
    try:
        db = work / "events.db"
        t0 = time.monotonic()
        make_events_db(db, args.rows)
        print(f"generated {args.rows:,} rows in {time.monotonic() - t0:.1f} s", file=sys.stderr)
        out = args.out or work / f"{args.format}.txt"
        profile(str(db), args.format, out, args.s3pump_args.split(), spy_args=tuple(args.spy_args.split()))
        print(summarize(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
