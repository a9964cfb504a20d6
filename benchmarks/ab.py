"""Before/after: s3pump from another source tree vs this one vs s5cmd, on W1 and the no-op sync.

One SeaweedFS (``harness.Bench``); W1 is ``--files`` x 4 KiB uploaded to a new prefix each run; the
no-op sync runs over a ``--sync-files`` tree synced once before (files older than their objects).
Each round runs every tool once per workload, the order rotated round by round; medians. The
"before" s3pump is this interpreter with ``PYTHONPATH`` set to ``--base-src`` (e.g. a
``git archive <commit> src | tar -x -C /tmp/base`` export), so both use the same dependencies.

Usage:
  git archive main src | tar -x -C /tmp/base && python benchmarks/ab.py --base-src /tmp/base/src --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import Bench, Sample, precompile, s3pump_cli, s5cmd_binary

from s3pump.jobs.generate import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-src", required=True, help="the src/ directory of the 'before' s3pump")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--files", type=int, default=5000, help="W1 files of 4 KiB")
    ap.add_argument("--sync-files", type=int, default=25_000, help="files of the no-op sync")
    args = ap.parse_args()
    if args.base_src:
        precompile(args.base_src)
    bench = Bench()
    work = Path(tempfile.mkdtemp(prefix="s3pump-ab-"))
    results: dict[tuple[str, str], list[Sample]] = {}
    try:
        w1 = work / "w1"
        generate(w1, count=args.files, size_bytes=4096, seed=42)
        tree = work / "tree"
        generate(tree, count=args.sync_files, size_bytes=4096, files_per_dir=1000)
        past = time.time() - 3600
        for dirpath, _, names in os.walk(tree):
            for name in names:
                os.utime(os.path.join(dirpath, name), (past, past))
        w1_bucket = bench.bucket("ab-w1")
        sync_bucket = bench.bucket("ab-sync")
        bench.time([*s3pump_cli(), "sync", str(tree), f"s3://{sync_bucket}/tree", "--no-progress"])

        def argv(tool: str, workload: str, r: int) -> list[str]:
            if tool == "s5cmd":
                if workload == "W1":
                    return [s5cmd_binary(), "--endpoint-url", bench.endpoint, "cp", f"{w1}/*",
                            f"s3://{w1_bucket}/s5cmd-{r}/"]
                return [s5cmd_binary(), "--endpoint-url", bench.endpoint, "sync", f"{tree}/",
                        f"s3://{sync_bucket}/tree/"]
            if workload == "W1":
                return [*s3pump_cli(), "upload", str(w1), f"s3://{w1_bucket}/{tool}-{r}/", "--no-progress"]
            return [*s3pump_cli(), "sync", str(tree), f"s3://{sync_bucket}/tree", "--no-progress"]

        tools = ["before", "after", "s5cmd"]
        base_env = dict(bench.env)
        for r in range(args.rounds):
            for workload in ("W1", "sync-noop"):
                for tool in tools[r % 3:] + tools[: r % 3]:
                    bench.env = dict(base_env, PYTHONPATH=args.base_src) if tool == "before" else base_env
                    s = bench.time(argv(tool, workload, r))
                    results.setdefault((workload, tool), []).append(s)
                    print(f"round {r + 1} {workload:9s} {tool:6s} wall {s.wall_s:6.2f} s  cpu {s.cpu_s:5.2f} s  "
                          f"rss {s.peak_rss_mb:4.0f} MB", file=sys.stderr, flush=True)
        for tool in ("before", "after", "s5cmd"):
            for r in range(args.rounds):
                assert bench.count(w1_bucket, f"{tool}-{r}/") == (args.files, args.files * 4096), (tool, r)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)

    def med(workload: str, tool: str, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in results[(workload, tool)])

    print(f"\nmedians of {args.rounds} rotating rounds\n")
    print("| workload | s3pump | wall s | client CPU s | CPU-s / 1000 objects | peak RSS MB | wall / s5cmd "
          "| CPU / s5cmd |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for workload, n in (("W1", args.files), ("sync-noop", args.sync_files)):
        for tool in tools:
            wall, cpu = med(workload, tool, "wall_s"), med(workload, tool, "cpu_s")
            print(f"| {workload} | {tool} | {wall:.2f} | {cpu:.2f} | {cpu / n * 1000:.3f} | "
                  f"{med(workload, tool, 'peak_rss_mb'):.0f} | {wall / med(workload, 's5cmd', 'wall_s'):.2f} | "
                  f"{cpu / med(workload, 's5cmd', 'cpu_s'):.2f} |")


if __name__ == "__main__":
    main()
