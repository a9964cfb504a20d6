"""Stream benchmark: `s3pump stream` vs `s5cmd pipe` vs `aws s3 cp - s3://...` vs `rclone rcat`, same SeaweedFS.

rclone runs with ``harness.rclone_argv``'s flags: 8 parts of 8 MiB in flight, as s3pump stream's defaults.

Every tool reads the same stream on stdin: a producer process (not measured) writes SIZE bytes, a
64 MiB block of seeded random bytes repeated, as fast as the pipe takes them. Rounds alternate
the tools; results are medians. Peak RSS is each tool's own VmHWM. Each object's size is checked
after the run. s3pump also runs with --spool-dir (tool "s3pump-spool").

Usage:
  python benchmarks/stream.py                       # 4 GiB, 3 rounds, all tools
  python benchmarks/stream.py --size 256MiB --rounds 1   # quick check
  python benchmarks/stream.py --tools s3pump,s5cmd --s3pump-args "--concurrency 32"

Prints a Markdown table for docs/benchmarks.md, with s3pump / s5cmd throughput, the memory
bound (concurrency x part size + 64 MiB) next to the measured peak, and CPU seconds per GiB of
each client and of the server during its run: on a 2-core machine shared with the server every
run is CPU-bound, so those decide the ratio (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness import RCLONE_REMOTE, Bench, Sample, Series, alternate, aws_cli, rclone_argv, s3pump_cli, s5cmd_binary

from s3pump.jobs.stream import STREAM_DEFAULT_CONCURRENCY
from s3pump.units import parse_size_bytes

MIB = 2**20
PRODUCER = (
    "import random, sys\n"
    "n = int(sys.argv[1]); block = random.Random(42).randbytes(64 * 2**20); out = sys.stdout.buffer\n"
    "while n > 0:\n"
    "    k = min(n, len(block)); out.write(block[:k] if k < len(block) else block); n -= k\n"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="4GiB", help="stream length [4GiB]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tools", default="s3pump,s3pump-spool,s5cmd,aws,rclone")
    ap.add_argument("--s3pump-args", default="", help="extra flags for s3pump stream")
    args = ap.parse_args()
    size = parse_size_bytes(args.size, what="--size")
    producer = [sys.executable, "-c", PRODUCER, str(size)]

    bench = Bench()
    spool = Path(tempfile.mkdtemp(prefix="s3pump-bench-spool-"))
    try:
        bucket = bench.bucket("bench-stream")

        def s3pump(r: int) -> Sample:
            return bench.time([*s3pump_cli(), "stream", f"s3://{bucket}/s3pump-{r}", "--no-progress",
                               *args.s3pump_args.split()], stdin_cmd=producer)

        def s3pump_spool(r: int) -> Sample:
            return bench.time([*s3pump_cli(), "stream", f"s3://{bucket}/s3pump-spool-{r}", "--no-progress",
                               "--spool-dir", str(spool), *args.s3pump_args.split()], stdin_cmd=producer)

        def s5cmd(r: int) -> Sample:
            return bench.time([s5cmd_binary(), "--endpoint-url", bench.endpoint, "pipe", f"s3://{bucket}/s5cmd-{r}"],
                              stdin_cmd=producer)

        def aws(r: int) -> Sample:
            return bench.time([*aws_cli(), "s3", "cp", "--only-show-errors", "--endpoint-url", bench.endpoint,
                               "-", f"s3://{bucket}/aws-{r}"], stdin_cmd=producer)

        def rclone(r: int) -> Sample:
            return bench.time(rclone_argv("rcat", f"{RCLONE_REMOTE}:{bucket}/rclone-{r}"), stdin_cmd=producer)

        tools = {"s3pump": s3pump, "s3pump-spool": s3pump_spool, "s5cmd": s5cmd, "aws": aws, "rclone": rclone}
        chosen = {k: v for k, v in tools.items() if k in args.tools.split(",")}
        print(f"stream of {size} bytes, {args.rounds} rounds", file=sys.stderr)
        series = alternate(args.rounds, chosen)
        for name in chosen:  # every run really wrote the whole stream
            for r in range(args.rounds):
                n, total = bench.count(bucket, f"{name}-{r}")
                assert (n, total) == (1, size), (name, r, n, total)
    finally:
        bench.close()
        import shutil

        shutil.rmtree(spool, ignore_errors=True)
    report(series, size, args)


def digest_cpu_s_per_gib() -> float:
    """CPU seconds per GiB of the whole-stream MD5 + SHA-256 that stream must store (hashlib: OpenSSL)."""
    import hashlib
    import os
    import time

    block = os.urandom(64 * MIB)
    t0 = time.process_time()
    for name in ("md5", "sha256"):
        h = hashlib.new(name)
        for _ in range(4):
            h.update(block)
    return (time.process_time() - t0) * 4  # 256 MiB hashed by each


def report(series: dict[str, Series], size: int, args: argparse.Namespace) -> None:
    bound_mb = (STREAM_DEFAULT_CONCURRENCY * 8 * MIB + 64 * MIB) / MIB
    gib = size / 2**30
    print(f"\nstream of {size / MIB:,.0f} MiB, median of {args.rounds} alternating rounds per tool\n")
    print("| tool | wall s | MB/s | client CPU s | peak RSS MB | client CPU-s/GiB | server CPU-s/GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, s in series.items():
        wall = s.median("wall_s")
        print(f"| {name} | {wall:.2f} | {size / wall / 1e6:,.1f} | {s.median('cpu_s'):.2f} | "
              f"{s.median('peak_rss_mb'):.0f} | {s.median('cpu_s') / gib:.2f} | {s.median('server_cpu_s') / gib:.2f} |")
    if "s3pump" in series and "s5cmd" in series:
        ratio = series["s5cmd"].median("wall_s") / series["s3pump"].median("wall_s")
        print(f"\ns3pump / s5cmd pipe throughput: {ratio:.2f} (target >= 1.10)")
        # every run is CPU-bound on shared cores: wall time follows client + server CPU per GiB
        s5_client = series["s5cmd"].median("cpu_s") / gib
        server = series["s5cmd"].median("server_cpu_s") / gib
        producer = series["s5cmd"].median("producer_cpu_s") / gib
        budget = (server + s5_client + producer) / 1.1 - server - producer
        print(f"CPU-s/GiB in s5cmd's runs: server {server:.2f}, s5cmd {s5_client:.2f}, producer {producer:.2f}; "
              f"a client reaching 1.1 x s5cmd may spend at most {budget:.2f}; the required MD5 + SHA-256 "
              f"alone cost {digest_cpu_s_per_gib():.2f} here")
    if "s3pump" in series and not args.s3pump_args:
        print(f"s3pump peak RSS {series['s3pump'].median('peak_rss_mb'):.0f} MB; bound at defaults "
              f"(concurrency {STREAM_DEFAULT_CONCURRENCY} x 8 MiB + 64 MiB) = {bound_mb:.0f} MiB")
    if "s3pump-spool" in series:
        print(f"s3pump --spool-dir peak RSS {series['s3pump-spool'].median('peak_rss_mb'):.0f} MB (target <= 128)")


if __name__ == "__main__":
    main()
