"""--concurrency auto against a sweep of fixed settings, on plain SeaweedFS (W1 and W2 of upload.py).

Usage:
  python benchmarks/adaptive.py                      # W1 and W2, fixed 16/32/64/128/256 and auto, 3 rounds
  python benchmarks/adaptive.py --workloads W1 --rounds 5

Prints median wall and throughput per setting, then auto / best fixed (target: >= 0.9).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from harness import Bench, Sample, alternate, s3pump_cli
from upload import WORKLOADS

from s3pump.jobs.generate import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads", default="W1,W2")
    ap.add_argument("--fixed", default="16,32,64,128,256")
    args = ap.parse_args()
    bench = Bench()
    data = Path(tempfile.mkdtemp(prefix="s3pump-adaptive-"))
    rows = []
    try:
        for wl in args.workloads.split(","):
            spec = WORKLOADS[wl]
            src = data / wl
            generate(src, count=int(spec["count"]), size_bytes=int(spec["size"]), seed=42)
            bucket = bench.bucket(f"adaptive-{wl.lower()}")

            def run(setting: str, src: Path = src, bucket: str = bucket) -> object:
                def one(r: int) -> Sample:
                    return bench.time([*s3pump_cli(), "upload", str(src), f"s3://{bucket}/{setting}-{r}/",
                                       "--no-progress", "--concurrency", setting])
                return one

            settings = [*args.fixed.split(","), "auto"]
            series = alternate(args.rounds, {s: run(s) for s in settings})  # type: ignore[misc]
            rows.append((wl, series, int(spec["count"]), int(spec["size"])))
    finally:
        bench.close()
        shutil.rmtree(data, ignore_errors=True)
    print(f"\nmedian of {args.rounds} alternating rounds\n")
    print("| workload | concurrency | wall s | objects/s | MB/s |")
    print("|---|---|---:|---:|---:|")
    for wl, series, count, size in rows:
        for name, s in series.items():
            wall = s.median("wall_s")
            print(f"| {wl} | {name} | {wall:.2f} | {count / wall:,.0f} | {count * size / wall / 1e6:.1f} |")
    print("\n| workload | best fixed | auto / best fixed (throughput) |")
    print("|---|---|---:|")
    for wl, series, _, _ in rows:
        fixed = {k: v.median("wall_s") for k, v in series.items() if k != "auto"}
        best = min(fixed, key=lambda k: fixed[k])
        print(f"| {wl} | {best} | {fixed[best] / series['auto'].median('wall_s'):.2f} |")


if __name__ == "__main__":
    main()
