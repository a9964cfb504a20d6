"""Profile W1 (``s3pump upload`` of small files) with py-spy against its own SeaweedFS.

Records the whole CLI run (every thread, native frames, 250 samples a second; py-spy leaves idle
threads out) as collapsed stacks and prints ``pyspy_top.py``'s summary of them, then the CLI's client
CPU seconds per 1,000 objects of one more run without the profiler.

Usage:
  python benchmarks/profile_upload.py --files 20000 --out /tmp/w1.raw
  python benchmarks/pyspy_top.py /tmp/w1.raw --under "Scheduler"     # an earlier profile, one function
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import Bench, s3pump_cli

from s3pump.jobs.generate import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=20_000, help="files of --size bytes [20000]")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--out", type=Path, default=Path("/tmp/w1.raw"), help="py-spy's raw output")
    ap.add_argument("--no-profile", action="store_true", help="only the timed runs")
    ap.add_argument("--runs", type=int, default=1, help="timed runs without the profiler")
    args = ap.parse_args()
    bench = Bench()
    data = Path(tempfile.mkdtemp(prefix="s3pump-prof-w1-"))
    try:
        generate(data / "w1", count=args.files, size_bytes=args.size, seed=42)
        bucket = bench.bucket("prof-w1")
        argv = [*s3pump_cli(), "upload", str(data / "w1"), f"s3://{bucket}/p/", "--no-progress"]
        if not args.no_profile:
            pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            subprocess.run([pyspy, "record", "--native", "-r", "250", "--format", "raw", "-o", str(args.out),
                            "--", *argv], env=bench.env, check=True, capture_output=True)
            assert bench.count(bucket, "p/") == (args.files, args.files * args.size)
            subprocess.run([sys.executable, str(Path(__file__).parent / "pyspy_top.py"), str(args.out)], check=True)
        for r in range(args.runs):
            argv[-2] = f"s3://{bucket}/t{r}/"
            s = bench.time(argv)
            assert bench.count(bucket, f"t{r}/") == (args.files, args.files * args.size)
            print(f"run {r + 1}: wall {s.wall_s:.2f} s, client CPU {s.cpu_s:.2f} s = "
                  f"{s.cpu_s / args.files * 1000:.3f} CPU-s per 1,000 objects, peak RSS {s.peak_rss_mb:.0f} MB")
    finally:
        bench.close()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
