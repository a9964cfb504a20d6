"""What counting ahead costs (issue 26): the names-and-sizes walk that gives the progress view its total
early (src/s3pump/sources/countahead.py), against the upload it runs beside.

One tree of ``--files`` W1-like files (4 KiB, 1,000 a directory), one SeaweedFS. Measured:

* the count alone, in this thread: wall and CPU seconds (the tree was just written: its metadata is
  in the page cache, as it is for the upload's own walk a moment later), and when its first pass (names
  only) says the files' total;
* the upload of the tree (the library's ``upload``, the CLI's job, no progress view) with the count
  beside it and without it (the count replaced by nothing), alternating, ``--rounds`` each.

The target: the count's cost is at most 3 % of the walk+upload's time.

Usage:
  python benchmarks/count_ahead.py                      # 100,000 files, 1 round
  python benchmarks/count_ahead.py --files 20000 --rounds 3
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

from harness import Bench

import s3pump.jobs.upload as upload_job
from s3pump.config import TransferConfig
from s3pump.events import Discovered
from s3pump.jobs.generate import generate
from s3pump.sources.countahead import CountAhead, count_tree


def _no_count(items, *_args, **_kwargs):  # type: ignore[no-untyped-def]
    return items


def _names_pass_s(src: Path) -> float:
    """Seconds until a count ahead of ``src`` says its files' total (the first pass: names only)."""
    t0 = time.perf_counter()
    at: list[float] = []

    def emit(event: Discovered) -> None:
        if event.files_final and not at:
            at.append(time.perf_counter() - t0)

    counter = CountAhead([str(src)], emit).start()
    counter._thread.join()
    return at[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()

    bench = Bench()
    os.environ["S3PUMP_STATE_DIR"] = str(bench.dir / "state")  # the journals: the benchmark's, not the user's
    data = Path(tempfile.mkdtemp(prefix="s3pump-bench-count-"))
    try:
        src = data / "tree"
        generate(src, count=args.files, size_bytes=4096, seed=7)
        counts = []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.thread_time()
            found = count_tree([str(src)])
            counts.append((time.perf_counter() - t0, time.thread_time() - c0))
        assert found == (args.files, args.files * 4096), found
        count_wall_s = statistics.median(w for w, _ in counts)
        count_cpu_s = statistics.median(c for _, c in counts)
        names_s = statistics.median(_names_pass_s(src) for _ in range(3))
        print(f"count: {found[0]:,} files, {count_wall_s:.3f} s wall, {count_cpu_s:.3f} s CPU "
              f"({found[0] / count_wall_s:,.0f} files/s); the files' total (names only) after {names_s:.3f} s",
              file=sys.stderr)

        bucket = bench.bucket("bench-count-ahead")
        config = TransferConfig(endpoint_url=bench.endpoint, region=bench.server.region,
                                access_key_id=bench.server.access_key_id,
                                secret_access_key=bench.server.secret_access_key)
        real = upload_job.counted_ahead
        walls: dict[str, list[float]] = {"with count": [], "without": []}
        for r in range(args.rounds):
            for name in ("with count", "without"):
                upload_job.counted_ahead = real if name == "with count" else _no_count  # type: ignore[assignment]
                t0 = time.perf_counter()
                report = upload_job.upload([src], f"s3://{bucket}/{name.split()[0]}-{r}/", config,
                                           failed_list=bench.dir / "failed.jsonl")
                walls[name].append(time.perf_counter() - t0)
                assert report.files_done == args.files, report
                print(f"round {r + 1}: upload {name}: {walls[name][-1]:.2f} s", file=sys.stderr)
        upload_job.counted_ahead = real
        with_s, without_s = statistics.median(walls["with count"]), statistics.median(walls["without"])
        print(f"\n| files | count wall s | count CPU s | upload with count s | upload without s | "
              f"count / upload | with / without |\n|---|---|---|---|---|---|---|\n"
              f"| {args.files:,} | {count_wall_s:.3f} | {count_cpu_s:.3f} | {with_s:.2f} | {without_s:.2f} | "
              f"{count_wall_s / without_s:.2%} | {with_s / without_s:.3f} |")
    finally:
        bench.close()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
