"""Upload benchmark: s3pump vs s5cmd vs `aws s3 cp --recursive` vs `rclone copy`, same SeaweedFS, one run.

rclone runs with ``harness.rclone_argv``'s flags (its transfers, parts in flight and part size at s3pump's).

Workloads (as in the upload issue):
  W1  5,000 x 4 KiB files      -> objects/s
  W2  500 x 1 MiB files        -> MB/s
  W3  one 1 GiB file           -> MB/s, peak RSS

Usage:
  python benchmarks/upload.py                 # all workloads, 3 rounds, all tools
  python benchmarks/upload.py --rounds 5 --workloads W1
  python benchmarks/upload.py --scale 0.1     # quick check at a tenth of the size
  git archive REV src | tar -x -C /tmp/base && \
  python benchmarks/upload.py --workloads W2,W3 --tools s3pump,s3pump-base --base-src /tmp/base/src --rounds 5
                                              # A/B: this s3pump against another source tree's

Prints per tool: median wall, objects/s, MB/s, client CPU s, peak RSS; then s3pump / s5cmd ratios,
as a Markdown table ready for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness import (
    RCLONE_REMOTE,
    Bench,
    Sample,
    Series,
    alternate,
    aws_cli,
    precompile,
    rclone_argv,
    s3pump_cli,
    s5cmd_binary,
)

from s3pump.jobs.generate import generate

MIB = 2**20
WORKLOADS = {
    "W1": {"count": 5000, "size": 4096, "what": "5,000 x 4 KiB"},
    "W2": {"count": 500, "size": MIB, "what": "500 x 1 MiB"},
    "W3": {"count": 1, "size": 1024 * MIB, "what": "1 x 1 GiB"},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--tools", default="s3pump,s5cmd,aws,rclone")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply file counts (W1, W2) / size (W3)")
    ap.add_argument("--s3pump-args", default="", help="extra flags for s3pump upload")
    ap.add_argument("--base-src", help="the src/ directory of another s3pump (e.g. `git archive REV src`), run "
                    "with this interpreter as the tool s3pump-base (an A/B against this tree)")
    args = ap.parse_args()
    if args.base_src:
        precompile(args.base_src)

    bench = Bench()
    data = Path(tempfile.mkdtemp(prefix="s3pump-bench-data-"))
    rows: list[tuple[str, dict[str, Series], int, int]] = []
    try:
        for wl in args.workloads.split(","):
            spec = WORKLOADS[wl]
            count = max(1, int(spec["count"] * (args.scale if wl != "W3" else 1)))
            size = int(spec["size"] * (args.scale if wl == "W3" else 1))
            src = data / wl
            generate(src, count=count, size_bytes=size, seed=42)
            bucket = bench.bucket(f"bench-{wl.lower()}")
            print(f"{wl}: {count} x {size} bytes", file=sys.stderr)

            def s3pump(r: int, src: Path = src, bucket: str = bucket, wl: str = wl) -> Sample:
                return bench.time([*s3pump_cli(), "upload", str(src), f"s3://{bucket}/s3pump-{r}/",
                                   "--no-progress", *args.s3pump_args.split()])

            def s5cmd(r: int, src: Path = src, bucket: str = bucket) -> Sample:
                return bench.time([s5cmd_binary(), "--endpoint-url", bench.endpoint, "cp",
                                   f"{src}/*", f"s3://{bucket}/s5cmd-{r}/"])

            def aws(r: int, src: Path = src, bucket: str = bucket) -> Sample:
                return bench.time([*aws_cli(), "s3", "cp", "--recursive", "--only-show-errors",
                                   "--endpoint-url", bench.endpoint, str(src), f"s3://{bucket}/aws-{r}/"])

            def rclone(r: int, src: Path = src, bucket: str = bucket) -> Sample:
                return bench.time(rclone_argv("copy", str(src), f"{RCLONE_REMOTE}:{bucket}/rclone-{r}"))

            def s3pump_base(r: int, src: Path = src, bucket: str = bucket) -> Sample:
                env = bench.env
                bench.env = {**env, "PYTHONPATH": str(args.base_src)}
                try:
                    return bench.time([*s3pump_cli(), "upload", str(src), f"s3://{bucket}/s3pump-base-{r}/",
                                       "--no-progress", *args.s3pump_args.split()])
                finally:
                    bench.env = env

            tools = {"s3pump": s3pump, "s3pump-base": s3pump_base, "s5cmd": s5cmd, "aws": aws, "rclone": rclone}
            chosen = {k: v for k, v in tools.items() if k in args.tools.split(",")}
            series = alternate(args.rounds, chosen)
            for name in chosen:  # every run really wrote every object
                for r in range(args.rounds):
                    n, total = bench.count(bucket, f"{name}-{r}/")
                    assert (n, total) == (count, count * size), (name, r, n, total)
            rows.append((wl, series, count, size))
    finally:
        bench.close()
        import shutil

        shutil.rmtree(data, ignore_errors=True)
    report(rows, args)


def report(rows: list[tuple[str, dict[str, Series], int, int]], args: argparse.Namespace) -> None:
    print(f"\nmedian of {args.rounds} alternating rounds per tool\n")
    print("| workload | tool | wall s | objects/s | MB/s | client CPU s | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    ratios = []
    for wl, series, count, size in rows:
        for name, s in series.items():
            wall = s.median("wall_s")
            print(f"| {wl} {WORKLOADS[wl]['what']} | {name} | {wall:.2f} | {count / wall:,.0f} | "
                  f"{count * size / wall / 1e6:,.1f} | {s.median('cpu_s'):.2f} | {s.median('peak_rss_mb'):.0f} |")
        if "s3pump" in series and "s3pump-base" in series:
            a, b = series["s3pump"], series["s3pump-base"]
            print(f"| {wl} | s3pump / s3pump-base | wall {a.median('wall_s') / b.median('wall_s'):.3f} x | | "
                  f"| CPU {a.median('cpu_s') / b.median('cpu_s'):.3f} x | |")
        if "s3pump" in series and "s5cmd" in series:
            ratio = series["s5cmd"].median("wall_s") / series["s3pump"].median("wall_s")
            ratios.append((wl, ratio, series["s3pump"].median("peak_rss_mb")))
    if ratios:
        print("\n| workload | s3pump / s5cmd (throughput) | s3pump peak RSS MB |")
        print("|---|---:|---:|")
        for wl, ratio, rss in ratios:
            print(f"| {wl} | {ratio:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
