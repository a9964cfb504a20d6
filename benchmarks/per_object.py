"""s3pump's own CPU per uploaded object, without a server: the library's ``upload`` of ``--files`` small
files into a :class:`~s3pump.store.memory.MemoryStore` (which completes each PUT at once, on the
scheduler's thread), so what is measured is the per-object path of the walk, the engine, the events,
the resume journal's rows and the statistics, plus the memory store's MD5 and CRC32C of each body
(the same in every variant). Process CPU seconds (user + system, ``time.process_time``) of the
``upload`` call only, in a child process per run; imports and start-up are left out.

It is the A/B for changes to that path on a loaded machine, where W1's wall time and even its CPU
time move by ±15 % with the load: the child does no I/O but the tree's files and the journal.

Usage:
  git archive HEAD src | tar -x -C /tmp/base
  python benchmarks/per_object.py --base-src /tmp/base/src --files 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys, time
from s3pump.config import TransferConfig
from s3pump.jobs.upload import upload
from s3pump.store.memory import MemoryStore
store = MemoryStore(); store.create_bucket("per-object")
t0 = time.process_time()
report = upload([sys.argv[1]], "s3://per-object/" + sys.argv[2] + "/", TransferConfig(), store=store)
cpu = time.process_time() - t0
assert report.files_done == int(sys.argv[3]), report
print(cpu)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-src", help="the src/ of the 'before' s3pump (none: only this tree)")
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from s3pump.jobs.generate import generate

    work = Path(tempfile.mkdtemp(prefix="s3pump-per-object-"))
    here = str(Path(__file__).resolve().parent.parent / "src")
    variants = {"after": here} if not args.base_src else {"before": args.base_src, "after": here}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    try:
        generate(work / "tree", count=args.files, size_bytes=args.size, seed=42)
        for r in range(args.rounds):
            names = list(variants)
            for name in names[r % len(names):] + names[: r % len(names)]:
                env = dict(os.environ, PYTHONPATH=variants[name], S3PUMP_STATE_DIR=str(work / f"state-{name}"))
                out = subprocess.run([sys.executable, "-c", CHILD, str(work / "tree"), f"{name}-{r}", str(args.files)],
                                     env=env, capture_output=True, text=True, check=True).stdout
                cpu[name].append(float(out.strip().splitlines()[-1]) / args.files * 1000)
                print(f"round {r + 1} {name:6s} {cpu[name][-1]:.3f} CPU-s per 1,000 objects", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, values in cpu.items():
        print(f"{name}: median {statistics.median(values):.3f} CPU-s per 1,000 objects "
              f"(min {min(values):.3f}, max {max(values):.3f}, {len(values)} runs)")


if __name__ == "__main__":
    main()
