"""A million files (issue 28): a no-op sync and a sync with 1 % changed, s3pump against s5cmd and rclone.

The trees (``--files`` zero-byte and 1 KiB files, 1,000 a directory) are generated once into ``--dir``
(``$S3PUMP_BENCH_DIR/million``, else ``~/.cache/s3pump-bench/million``) and kept; so is the SeaweedFS
there (its data, keys and the tools' state, ``harness.Bench(keep_dir=...)``). Each tool syncs to a
prefix of its own, uploaded once by that tool's own ``sync`` (so each later run compares against what
the tool itself wrote: s5cmd stores no mtime metadata, rclone and s3pump do; s3pump's hash cache is
filled by its upload), and kept. Then, per tree:

* **no-op**: every tool's ``sync`` over its prefix, ``--rounds`` rounds alternating, checked to upload
  nothing (s3pump's summary line, s5cmd's ``cp`` lines, rclone's ``Copied`` log lines);
* **1 % changed**: each round first changes 1 % of the files (every 100th, a different set each round:
  one byte longer or back to the original size, new bytes, mtime now), then every tool syncs them to its
  prefix, checked to upload exactly those (and a sample of them HEAD-checked for the new size);
* **the count ahead** (``sources/countahead.py``, which ``upload`` runs beside its walk): the count of
  the tree alone, against s3pump's upload of the same tree (its first ``sync``, timed when made).

Wall, client CPU (user + system) and peak RSS (VmHWM) per run; medians. Targets (issue 28): no-op
<= 0.4 x s5cmd's wall; s3pump's peak RSS <= 150 MB, flat as the tree grows (``--files 250000,1000000``:
within 20 %); the count <= 3 % of the upload.

Flags are each tool's defaults plus ``harness.rclone_argv``'s for rclone (transfers 64 as s3pump).

Usage:
  python benchmarks/million.py                                  # 1,000,000 files, 0 B and 1 KiB, 3 rounds
  python benchmarks/million.py --files 250000,1000000 --sizes 0 # the flatness of RSS
  python benchmarks/million.py --files 20000 --rounds 1         # a quick check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from harness import RCLONE_REMOTE, Bench, Sample, Series, rclone_argv, rclone_binary, s3pump_cli, s5cmd_binary

from s3pump.jobs.generate import generate
from s3pump.sources.countahead import count_tree
from s3pump.testing.measure import run_measured

BUCKET = "million"
OLD_MTIME_S = 1_700_000_000  # the generated files' mtime: older than any object


def default_dir() -> Path:
    base = os.environ.get("S3PUMP_BENCH_DIR")
    return Path(base) / "million" if base else Path.home() / ".cache" / "s3pump-bench" / "million"


class Tree:
    """One kept tree of ``files`` files of ``size`` bytes, and its state (``state.json``: uploads, rounds)."""

    def __init__(self, root: Path, files: int, size: int) -> None:
        self.name = f"f{files}-b{size}"
        self.files, self.size = files, size
        self.dir = root / "trees" / self.name
        self.state_path = root / f"{self.name}.json"
        self.state: dict[str, Any] = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}

    def save(self) -> None:
        self.state_path.write_text(json.dumps(self.state, indent=1))

    def ensure(self) -> None:
        """Generate the tree unless a complete one is there (mtimes set to OLD_MTIME_S)."""
        if self.state.get("generated"):
            return
        t0 = time.monotonic()
        generate(self.dir, count=self.files, size_bytes=self.size, files_per_dir=1000, seed=28)
        for dirpath, _, names in os.walk(self.dir):
            for name in names:
                os.utime(os.path.join(dirpath, name), (OLD_MTIME_S, OLD_MTIME_S))
        self.state = {"generated": round(time.monotonic() - t0, 1), "uploaded": {}, "changes": 0}
        self.save()
        print(f"{self.name}: generated in {self.state['generated']} s", file=sys.stderr)

    def paths(self) -> list[str]:
        """Every file, sorted (so "every 100th" is the same set in every run)."""
        return sorted(os.path.join(d, n) for d, _, names in os.walk(self.dir) for n in names)

    def change(self, paths: list[str]) -> list[str]:
        """Change 1 % (set ``changes % 100``): one byte more, or back to the original size; new bytes."""
        k = self.state["changes"] % 100
        chosen = paths[k::100]
        rng = random.Random(self.state["changes"])
        now = time.time()
        for p in chosen:
            size = self.size if os.path.getsize(p) != self.size else self.size + 1
            with open(p, "wb") as f:
                f.write(rng.randbytes(size))
            os.utime(p, (now, now))
        self.state["changes"] += 1
        self.state["dirty"] = True  # until every tool synced them
        self.save()
        return chosen


def sync_argv(tool: str, bench: Bench, tree: Tree) -> list[str]:
    prefix = f"{tree.name}/{tool}"
    if tool == "s3pump":
        # its default output (one summary line on stderr), as the peers print nothing for an unchanged file;
        # --json would write a line for each of a million skipped files (a fifth of a no-op's CPU at 250,000)
        return [*s3pump_cli(), "sync", str(tree.dir), f"s3://{BUCKET}/{prefix}", "--no-progress"]
    if tool == "s5cmd":
        return [s5cmd_binary(), "--endpoint-url", bench.endpoint, "sync", f"{tree.dir}/", f"s3://{BUCKET}/{prefix}/"]
    return rclone_argv("sync", str(tree.dir), f"{RCLONE_REMOTE}:{BUCKET}/{prefix}", "--stats", "0", log="-v")


def uploads_in(tool: str, out: str, err: str) -> int:
    """Files the tool says it uploaded."""
    if tool == "s3pump":  # its summary: "sync (default): N local files, M objects; uploaded X of Y new or changed..."
        found = re.search(r"; uploaded (\d+) of \d+ new or changed", err)
        if found is None:
            raise RuntimeError(f"no summary line from s3pump sync: {err[-500:]}")
        return int(found.group(1))
    if tool == "s5cmd":
        return sum(line.startswith("cp ") for line in out.splitlines())
    return sum(": Copied (" in line for line in err.splitlines())


def run_sync(tool: str, bench: Bench, tree: Tree) -> tuple[Sample, int]:
    """One measured sync; returns its sample and the files it uploaded."""
    with tempfile.TemporaryFile() as out:
        m = run_measured(sync_argv(tool, bench, tree), env=bench.env, stdout=out)
        out.seek(0)
        text = out.read().decode()
    err = m.stderr.decode()
    if m.returncode != 0:
        raise RuntimeError(f"{tool} sync exited {m.returncode}: {err[-1500:]}")
    return Sample(m.wall_s, m.cpu_s, m.peak_rss_mb), uploads_in(tool, text, err)


def check_sizes(bench: Bench, tree: Tree, tool: str, changed: list[str], sample: int = 200) -> None:
    """HEAD a sample of the changed files' objects: the local size."""
    picks = changed[:: max(1, len(changed) // sample)]

    def one(path: str) -> None:
        key = f"{tree.name}/{tool}/{os.path.relpath(path, tree.dir)}"
        got = bench.client.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
        assert got == os.path.getsize(path), (tool, key, got)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, picks))


def rotate(names: list[str], r: int) -> list[str]:
    return names[r % len(names):] + names[: r % len(names)]


def bench_tree(bench: Bench, tree: Tree, tools: list[str], rounds: int) -> dict[str, dict[str, Series]]:
    tree.ensure()
    for tool in tools:  # each tool's own first upload, once; or the sync an interrupted run left to do
        if tool not in tree.state["uploaded"] or tree.state.get("dirty"):
            sample, n = run_sync(tool, bench, tree)
            if tool not in tree.state["uploaded"]:
                tree.state["uploaded"][tool] = {"wall_s": round(sample.wall_s, 1), "cpu_s": round(sample.cpu_s, 1),
                                                "rss_mb": round(sample.peak_rss_mb), "files": n}
                assert n == tree.files, (tool, n)
                print(f"{tree.name}: {tool} uploaded {n:,} files in {sample.wall_s:.1f} s", file=sys.stderr)
            tree.save()
    tree.state["dirty"] = False
    tree.save()
    out: dict[str, dict[str, Series]] = {"no-op": {t: Series(t) for t in tools}, "1%": {t: Series(t) for t in tools}}
    for r in range(rounds):
        for tool in rotate(tools, r):
            sample, n = run_sync(tool, bench, tree)
            assert n == 0, f"{tool}'s no-op sync uploaded {n} files"
            out["no-op"][tool].samples.append(sample)
            log(tree, "no-op", r, tool, sample)
    paths = tree.paths()
    for r in range(rounds):
        changed = tree.change(paths)
        for tool in rotate(tools, r):
            sample, n = run_sync(tool, bench, tree)
            assert n == len(changed), f"{tool} uploaded {n} files of the {len(changed)} changed"
            check_sizes(bench, tree, tool, changed)
            out["1%"][tool].samples.append(sample)
            log(tree, "1%", r, tool, sample)
        tree.state["dirty"] = False
        tree.save()
    return out


def log(tree: Tree, phase: str, r: int, tool: str, s: Sample) -> None:
    print(f"  {tree.name} {phase:5s} round {r + 1} {tool:7s} wall {s.wall_s:7.2f} s  cpu {s.cpu_s:6.2f} s  "
          f"rss {s.peak_rss_mb:6.1f} MB", file=sys.stderr, flush=True)


def count_cost(tree: Tree) -> tuple[float, float]:
    """Median wall and CPU seconds of a count of the tree (both passes: names, then sizes)."""
    runs = []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.thread_time()
        found = count_tree([str(tree.dir)])
        runs.append((time.perf_counter() - t0, time.thread_time() - c0))
    assert found[0] == tree.files, found
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", default="1000000", help="comma list of tree sizes [1000000]")
    ap.add_argument("--sizes", default="0,1024", help="comma list of file sizes, bytes [0,1024]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tools", default="s3pump,s5cmd,rclone")
    ap.add_argument("--dir", type=Path, default=default_dir(), help="kept trees and server [%(default)s]")
    args = ap.parse_args()
    tools = [t for t in args.tools.split(",") if t and (t != "rclone" or rclone_binary())]
    bench = Bench(keep_dir=args.dir / "bench")
    rows: list[tuple[Tree, dict[str, dict[str, Series]], tuple[float, float]]] = []
    try:
        with contextlib.suppress(bench.client.exceptions.BucketAlreadyOwnedByYou):
            bench.client.create_bucket(Bucket=BUCKET)
        for files in map(int, args.files.split(",")):
            for size in map(int, args.sizes.split(",")):
                tree = Tree(args.dir, files, size)
                result = bench_tree(bench, tree, tools, args.rounds)
                rows.append((tree, result, count_cost(tree)))
                report(rows[-1:], sys.stderr)
    finally:
        bench.close()
    report(rows, sys.stdout)


def report(rows: list[tuple[Tree, dict[str, dict[str, Series]], tuple[float, float]]], out: TextIO) -> None:
    def p(line: str) -> None:
        print(line, file=out)

    p("\n| tree | sync | tool | wall s | client CPU s | peak RSS MB | wall / s5cmd |")
    p("|---|---|---|---:|---:|---:|---:|")
    for tree, result, _ in rows:
        for phase, series in result.items():
            s5 = series.get("s5cmd")
            for tool, s in series.items():
                ratio = f"{s.median('wall_s') / s5.median('wall_s'):.2f}" if s5 else "-"
                p(f"| {tree.files:,} x {tree.size} B | {phase} | {tool} | {s.median('wall_s'):.2f} | "
                  f"{s.median('cpu_s'):.2f} | {s.median('peak_rss_mb'):.0f} | {ratio} |")
    p("\n| tree | count wall s | count CPU s | s3pump's upload wall s | count / upload |")
    p("|---|---:|---:|---:|---:|")
    for tree, _, (wall, cpu) in rows:
        up = tree.state["uploaded"].get("s3pump", {}).get("wall_s")
        p(f"| {tree.files:,} x {tree.size} B | {wall:.2f} | {cpu:.2f} | {up or '-'} | "
          f"{f'{wall / up:.2%}' if up else '-'} |")
    by_size: dict[int, list[tuple[int, float]]] = {}
    for tree, result, _ in rows:
        if "s3pump" in result["no-op"]:
            rss = max(result[ph]["s3pump"].median("peak_rss_mb") for ph in result)
            by_size.setdefault(tree.size, []).append((tree.files, rss))
    for size, points in by_size.items():
        if len(points) > 1:
            (n0, r0), (n1, r1) = min(points), max(points)
            p(f"\ns3pump peak RSS, {size} B files: {r0:.0f} MB at {n0:,}, {r1:.0f} MB at {n1:,} ({r1 / r0 - 1:+.0%})")

if __name__ == "__main__":
    main()
