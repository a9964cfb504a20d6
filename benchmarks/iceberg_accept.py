"""Issue 29's acceptance check of ``export --table-format iceberg`` at scale, on its own SeaweedFS.

1. A 2,000,000-row SQLite table (``export.py``'s ``events``, plus ``price NUMERIC(12,2)``) is exported into an
   Iceberg table partitioned by day (``--partition-by time:ts:day``), timed (wall and rows/s).
2. It is read back with pyiceberg (``scan().to_arrow()``) and with DuckDB's ``iceberg_scan`` (duckdb and
   duckdb-ext-iceberg from PyPI, nothing downloaded): pyiceberg's rows equal the source's row for row
   (ids, text, floats; the timestamps ``timestamp[us]``, equal to the source's DATETIME text, which is UTC;
   the decimals ``decimal(12,2)``, equal to the source's value to the cent), and DuckDB's rows equal
   pyiceberg's.
3. The same table exported again, unpartitioned, with ``--target-file-size 8MiB``: every data file but the
   last within ±20 % of 8 MiB (``file_size_in_bytes`` of the table's manifests; the sizes listed).
4. ``--follow`` for ``--follow-s`` seconds (60) at one insert a second into one day partition
   (``--poll-interval 1s --max-file-age 5s``), then SIGINT: every row once, and at most 4 live data files
   (the small files compacted by overwrite commits).

Prints one line per check and exits 1 on the first that fails.

Usage:
  python benchmarks/iceberg_accept.py                 # 2,000,000 rows
  python benchmarks/iceberg_accept.py --rows 200000   # a quick run
  python benchmarks/iceberg_accept.py --rows 200000 --follow-s 0   # without the --follow check
"""

from __future__ import annotations

import argparse
import decimal
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from export import make_events_db
from harness import Bench, s3pump_cli

TARGET_BYTES = 8 * 1024 * 1024
CHUNK_ROWS = 100_000


def make_db(path: Path, rows: int) -> None:
    """``events`` of ``export.py`` with a ``price NUMERIC(12,2)`` column (up to 9 digits before the point)."""
    make_events_db(path, rows)
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE events ADD COLUMN price NUMERIC(12,2)")
    conn.execute("UPDATE events SET price = CASE WHEN id % 11 = 0 THEN NULL "
                 "ELSE ((id * 7919) % 100000000000) / 100.0 END")
    conn.commit()
    conn.close()


def export(bench: Bench, db: Path, url: str, *extra: str) -> tuple[dict[str, Any], float]:
    """One ``s3pump export`` run: its JSON summary and wall seconds."""
    argv = [*s3pump_cli(), "export", str(db), url, "--table", "events", "--table-format", "iceberg", "--json",
            "--no-progress", *extra]
    t0 = time.monotonic()
    p = subprocess.run(argv, env=bench.env, capture_output=True, check=False)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"export exited {p.returncode}: {p.stderr.decode()[-2000:]}")
    lines = [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]
    return next(r for r in lines if r.get("event") == "summary"), wall


def load(bench: Bench, rep: dict[str, Any]) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    s = bench.server
    catalog = SqlCatalog("s3pump", uri=rep["iceberg"]["catalog"], **{
        "s3.endpoint": s.endpoint_url, "s3.access-key-id": s.access_key_id,
        "s3.secret-access-key": s.secret_access_key, "s3.region": s.region})
    return catalog.load_table(rep["iceberg"]["table"])


def duckdb_table(bench: Bench, table: Any) -> pa.Table:
    import duckdb
    import duckdb_ext

    s = bench.server
    with duckdb_ext.init(duckdb.connect()) as con:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("LOAD httpfs; LOAD avro; LOAD iceberg")
        con.execute(f"CREATE SECRET s (TYPE S3, KEY_ID '{s.access_key_id}', SECRET '{s.secret_access_key}', "
                    f"REGION '{s.region}', ENDPOINT '{s.endpoint_url.split('://', 1)[1]}', URL_STYLE 'path', "
                    "USE_SSL false)")
        return con.execute(f"SELECT * FROM iceberg_scan('{table.metadata_location}') ORDER BY id").fetch_arrow_table()


def check(ok: bool, what: str) -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        raise SystemExit(1)


def check_rows(db: Path, got: pa.Table) -> None:
    """pyiceberg's rows (sorted by id) against the source's, ``CHUNK_ROWS`` at a time."""
    cent = decimal.Decimal("0.01")
    conn = sqlite3.connect(db)
    try:
        for start in range(0, got.num_rows, CHUNK_ROWS):
            mine = got.slice(start, CHUNK_ROWS).to_pylist()
            theirs = conn.execute("SELECT id, ts, entity, name, amount, qty, price FROM events WHERE id >= ? "
                                  "ORDER BY id LIMIT ?", (mine[0]["id"], CHUNK_ROWS)).fetchall()
            for m, t in zip(mine, theirs, strict=True):
                price = None if t[6] is None else decimal.Decimal(str(t[6])).quantize(cent)
                if (m["id"], m["entity"], m["name"], m["amount"], m["qty"]) != (t[0], t[2], t[3], t[4], t[5]) or \
                        m["ts"].isoformat(sep=" ") != t[1] or m["price"] != price:
                    check(False, f"row {t[0]}: iceberg {m} != source {t}")
    finally:
        conn.close()


def follow(bench: Bench, db: Path, url: str, seconds: float) -> None:
    """Check 4: ``--follow`` at one insert a second for ``seconds``, then SIGINT."""
    make_events_db(db, 10)
    argv = [*s3pump_cli(), "export", str(db), url, "--table", "events", "--table-format", "iceberg", "--json",
            "--no-progress", "--follow", "--poll-interval", "1s", "--max-file-age", "5s",
            "--partition-by", "time:ts:day"]
    p = subprocess.Popen(argv, env=bench.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    conn = sqlite3.connect(db)
    inserted, t0 = 10, time.monotonic()
    while time.monotonic() - t0 < seconds:
        inserted += 1
        conn.execute("INSERT INTO events VALUES (?, datetime(1735689600 + 3600 + ?, 'unixepoch'), 'entity-x', "
                     "'live', 1.5, 1)", (inserted, inserted))
        conn.commit()
        time.sleep(max(0.0, t0 + (inserted - 10) - time.monotonic()))
    conn.close()
    time.sleep(8)  # the last rows' poll and --max-file-age
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    if p.returncode != 0:
        raise SystemExit(f"export --follow exited {p.returncode}: {err.decode()[-2000:]}")
    lines = [json.loads(x) for x in out.decode().splitlines() if x.strip()]
    rep = next(r for r in lines if r.get("event") == "summary")
    table = load(bench, rep)
    ids = sorted(table.scan().to_arrow()["id"].to_pylist())
    files = list(table.scan().plan_files())
    appends = sum(1 for s in table.snapshots() if s.summary.operation.value == "append")
    check(ids == list(range(1, inserted + 1)) and len(files) <= 4,
          f"--follow {seconds:.0f} s at one insert a second: {len(ids)} rows of {inserted}, each once; {appends} "
          f"appends, {rep['iceberg']['files_compacted']} small files compacted, {len(files)} live data files "
          "in the one partition (bound: 4)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--follow-s", type=float, default=60.0, help="seconds of --follow at one insert a second")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="s3pump-iceberg-accept-"))
    bench = Bench()
    try:
        db = work / "events.db"
        make_db(db, args.rows)
        bucket = bench.bucket("accept")
        rep, wall = export(bench, db, f"s3://{bucket}/day", "--partition-by", "time:ts:day")
        check(rep["rows_exported"] == args.rows, f"exported {rep['rows_exported']:,} rows by day in {wall:.1f} s "
              f"({args.rows / wall:,.0f} rows/s), {rep['objects_written']} data files")
        table = load(bench, rep)
        t0 = time.monotonic()
        got = table.scan().to_arrow().sort_by("id")
        types = {f.name: str(f.type) for f in got.schema}
        check(got.num_rows == args.rows and got["id"].to_pylist() == list(range(1, args.rows + 1)),
              f"pyiceberg reads {got.num_rows:,} rows, ids 1..{args.rows:,} ({time.monotonic() - t0:.1f} s)")
        check(types["ts"] == "timestamp[us]" and types["price"] == "decimal128(12, 2)",
              f"types: ts {types['ts']} (UTC, microseconds), price {types['price']}")
        check_rows(db, got)
        check(True, "pyiceberg's rows equal the source's, row for row (timestamps to the microsecond, "
              "decimals to the cent)")
        duck = duckdb_table(bench, table)
        same = duck.num_rows == got.num_rows and all(
            duck[c].cast(got.schema.field(c).type).equals(got[c]) for c in got.column_names)
        check(same, f"DuckDB iceberg_scan reads {duck.num_rows:,} rows, equal to pyiceberg's, column by column")
        rep, wall = export(bench, db, f"s3://{bucket}/sized", "--target-file-size", "8MiB")
        table = load(bench, rep)
        sizes = [e.data_file.file_size_in_bytes for s in table.snapshots() for m in s.manifests(table.io)
                 for e in m.fetch_manifest_entry(table.io) if e.snapshot_id == s.snapshot_id]
        off = [n for n in sizes[:-1] if abs(n - TARGET_BYTES) > 0.2 * TARGET_BYTES]
        check(rep["rows_exported"] == args.rows and not off,
              f"--target-file-size 8MiB, unpartitioned: {len(sizes)} data files in {wall:.1f} s, MiB: "
              + ", ".join(f"{n / 2**20:.2f}" for n in sizes) + " (all but the last within ±20 %)")
        if args.follow_s > 0:
            follow(bench, work / "live.db", f"s3://{bucket}/live", args.follow_s)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
