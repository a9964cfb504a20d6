"""Start-up benchmark: what the CLI and an upload import before the first request, and `--version`.

Usage:
  python benchmarks/startup.py            # 10 runs each, medians

Prints:
  * ``import s3pump.cli``: the sum of ``python -X importtime`` top-level cumulative times (ms);
  * the same for ``import s3pump.cli`` plus every module ``s3pump upload`` imports before its first
    request (the job, the Run, the engine, the store and awscrt, the journal, the views);
  * ``s3pump --version`` wall time (ms), with plain ``python -c pass`` for the interpreter's own share.
Medians of ``--runs`` runs (the machine is shared, so single runs are noisy).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

#: What `s3pump upload` imports before its first request (checked against a real run's sys.modules).
UPLOAD_MODULES = ("s3pump.cli", "s3pump.jobs.upload", "s3pump.run", "s3pump.session", "s3pump.store.s3",
                  "s3pump.ui.views", "s3pump.logs")


def import_ms(modules: tuple[str, ...]) -> float:
    """Sum of the top-level cumulative import times, in ms, of importing ``modules`` in a fresh interpreter."""
    code = "; ".join(f"import {m}" for m in modules)
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True).stderr
    total = 0
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part for part in line[len("import time:"):].split("|"))
        if not name.startswith("  "):  # a top-level import (the interpreter's own, e.g. site, excluded)
            if name.strip() in ("site", "encodings", "_frozen_importlib_external", "zipimport"):
                continue
            total += int(cumulative)
    return total / 1000


def wall_ms(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    s3pump = shutil.which("s3pump") or "s3pump"
    rows = [
        ("import s3pump.cli (ms)", lambda: import_ms(("s3pump.cli",))),
        ("import s3pump.cli + upload's modules before the first request (ms)", lambda: import_ms(UPLOAD_MODULES)),
        ("s3pump --version, wall (ms)", lambda: wall_ms([s3pump, "--version"])),
        ("python -c pass, wall (ms)", lambda: wall_ms([sys.executable, "-c", "pass"])),
    ]
    print("| measure | median | min | max |\n|---|---:|---:|---:|")
    for name, fn in rows:
        values = [fn() for _ in range(args.runs)]
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")


if __name__ == "__main__":
    main()
