"""Benchmark of ``s3pump sync`` against ``aws s3 sync`` and ``s5cmd sync``, in one run.

What it measures (each against a fresh SeaweedFS on 127.0.0.1, started here):

1. **No-op sync** of ``--files`` small files already uploaded: wall time of ``s3pump sync``
   (default mode), ``aws s3 sync``, ``s5cmd sync`` and ``rclone sync`` (if installed; its flags:
   ``harness.rclone_argv``) (median of ``--repeat``). Each run is
   checked to upload nothing. Target: s3pump <= 0.5 x aws.
2. **--checksum passes** over the same files: cold (empty hash cache) and warm (cache
   filled). Target: warm <= 1.5 x the default mode's time.
3. **Hash throughput**: a cold ``--checksum`` pass over ``--hash-mib`` MiB of large files
   (uploaded by s3pump first), as bytes hashed / wall time (end to end, with the interpreter
   start and the listing; and hashing only: cold minus warm pass), against ``md5sum`` over
   the same files (one process, so one core) x cores. Target: >= 80 %.
4. **Peak RSS** of a dry-run sync of ``--rss-keys`` local paths against a listing of as many
   keys, in a child process. The listing is synthetic (a Store whose ListObjectsV2 yields
   the keys, directory-first like SeaweedFS), and so are the local paths unless
   ``--rss-real-files`` (then the child creates that many empty files and walks them); both
   go through the real planner: the external sorts, the merge-join, the event stream.
   Target: <= 200 MB.

Full scale (the issue's numbers; takes a while on 2 cores)::

    /work/venv/bin/python benchmarks/sync.py

Quick validation::

    /work/venv/bin/python benchmarks/sync.py --files 2000 --hash-mib 256 --rss-keys 100000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
MIB = 1024 * 1024


def tool_env(server: Any, state_dir: Path) -> dict[str, str]:
    from harness import rclone_env

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_", "RCLONE_"))}
    state_dir.mkdir(parents=True, exist_ok=True)
    env.update(rclone_env(server, state_dir))
    env.update(AWS_ENDPOINT_URL=server.endpoint_url, AWS_ACCESS_KEY_ID=server.access_key_id,
               AWS_SECRET_ACCESS_KEY=server.secret_access_key, AWS_REGION=server.region,
               AWS_DEFAULT_REGION=server.region, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               S3PUMP_STATE_DIR=str(state_dir))
    return env


LAST_CPU_S = [0.0]  # CPU seconds (user + sys) of the last command run by timed()


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    c0 = _children_cpu_s()
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - t0
    LAST_CPU_S[0] = _children_cpu_s() - c0
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-2000:]}")
    return wall, r


def s3pump_sync(src: Path, dest: str, env: dict[str, str], *flags: str) -> tuple[float, dict[str, Any]]:
    wall, r = timed([sys.executable, "-m", "s3pump", "sync", str(src), dest, "--no-progress", "--json", *flags], env)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    return wall, summary


def no_op_runs(src: Path, bucket: str, server: Any, env: dict[str, str], repeat: int) -> dict[str, float]:
    from harness import RCLONE_REMOTE, rclone_argv, rclone_binary

    out: dict[str, list[float]] = {"s3pump": [], "aws": [], "s5cmd": []}
    if rclone_binary():
        out["rclone"] = []
    for _ in range(repeat):
        wall, summary = s3pump_sync(src, f"s3://{bucket}/small", env)
        assert summary["planned_uploads"] == 0, summary
        out["s3pump"].append(wall)
        wall, r = timed([str(BIN / "aws"), "--endpoint-url", server.endpoint_url, "s3", "sync", str(src),
                         f"s3://{bucket}/small", "--only-show-errors"], env)
        assert "upload:" not in r.stdout, r.stdout[:500]
        out["aws"].append(wall)
        wall, r = timed([str(BIN / "s5cmd"), "--endpoint-url", server.endpoint_url, "sync", f"{src}/",
                         f"s3://{bucket}/small/"], env)
        assert "cp " not in r.stdout, r.stdout[:500]
        out["s5cmd"].append(wall)
        if "rclone" in out:  # rclone's default compare: size, and the mtime it reads from X-Amz-Meta-Mtime
            wall, r = timed(rclone_argv("sync", str(src), f"{RCLONE_REMOTE}:{bucket}/small", "--stats", "0",
                                        log="-v"), env)
            assert "Copied" not in r.stderr, r.stderr[:500]
            out["rclone"].append(wall)
    return {k: statistics.median(v) for k, v in out.items()}


def md5sum_rate(files: list[Path]) -> float:
    """Bytes per second of one md5sum process over ``files`` (read once before, so cached)."""
    total = sum(f.stat().st_size for f in files)
    c0 = _children_cpu_s()
    t0 = time.monotonic()
    subprocess.run(["md5sum", *map(str, files)], check=True, capture_output=True)
    LAST_CPU_S[0] = _children_cpu_s() - c0
    return total / (time.monotonic() - t0)


# ---------------------------------------------------------------- peak RSS child
def rss_child(keys: int, real_files: bool) -> None:
    """Dry-run sync of ``keys`` local paths against ``keys`` listed objects; print peak RSS (MB)."""
    import s3pump.jobs.sync as job
    import s3pump.plan.syncplanner as planner
    import s3pump.store.s3  # noqa: F401 - the baseline of a real run (boto3, awscrt)
    from s3pump import TransferConfig
    from s3pump.items import UploadItem
    from s3pump.store.base import ObjectInfo
    from s3pump.store.memory import MemoryStore

    per_dir = 1000

    def rel(i: int) -> str:
        # walk order is directory by directory; "d00001-x" sorts before "d00001/" in S3 order
        return f"d{i // per_dir:05d}{'-x' if i % 3 == 0 else ''}/f{i:07d}"

    class ListingStore(MemoryStore):
        def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
            # directory-first (as SeaweedFS), not S3 byte order; every 100th object has another size
            for i in range(keys):
                yield ObjectInfo(f"{prefix}{rel(i)}", 0 if i % 100 else 1, "d41d8cd98f00b204e9800998ecf8427e",
                                 4e9)

    tmp = Path(tempfile.mkdtemp(prefix="s3pump-rss-"))
    try:
        root = tmp / "src"
        root.mkdir()
        if real_files:
            made: set[str] = set()
            for i in range(keys):
                d = root / rel(i).split("/")[0]
                if d.name not in made:
                    d.mkdir()
                    made.add(d.name)
                (root / rel(i)).touch()
                os.utime(root / rel(i), (1e9, 1e9))
        else:
            def synthetic_walk(roots: list[str], dest: Any, **_: Any) -> Iterator[UploadItem]:
                for i in range(keys):
                    key = f"{dest.prefix}{rel(i)}"
                    yield UploadItem(key=key, size_bytes=0, source=key, path=key, mtime_ns=10**18)

            planner.walk_items = synthetic_walk  # type: ignore[assignment]
        store = ListingStore()
        store.create_bucket("bench")
        t0 = time.monotonic()
        report = job.sync(root, "s3://bench/pre", TransferConfig(), store=store, dry_run=True, hash_cache=False)
        wall = time.monotonic() - t0
        # VmHWM, not ru_maxrss: after fork, ru_maxrss already holds the parent's pages (this
        # benchmark's own process, ~240 MB by this point), which would be counted as the child's
        with open("/proc/self/status") as status:
            peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
        print(json.dumps({"keys": keys, "real_files": real_files, "peak_rss_mb": round(peak_mb, 1),
                          "wall_s": round(wall, 1), "planned_uploads": report.planned_uploads,
                          "unchanged": report.files_skipped, "sort_runs_spilled": report.sort_runs_spilled}))
        assert report.files_skipped + report.planned_uploads == keys, report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000, help="small files for the no-op sync")
    ap.add_argument("--file-size", type=int, default=4096, help="bytes per small file")
    ap.add_argument("--hash-mib", type=int, default=2048, help="MiB of large files for the hash throughput")
    ap.add_argument("--hash-file-mib", type=int, default=128, help="size of each large file, MiB")
    ap.add_argument("--rss-keys", type=int, default=1_000_000, help="keys per side for the peak RSS run")
    ap.add_argument("--rss-real-files", action="store_true", help="create and walk real (empty) files")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool for the no-op median")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: noop,checksum,hash,rss")
    ap.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.rss_real_files)
        return

    from s3pump.devserver import start_server, stop_server
    from s3pump.jobs.generate import generate

    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, Any] = {"files": args.files, "cores": os.cpu_count()}
    base = Path(tempfile.mkdtemp(prefix="s3pump-bench-sync-"))
    server, proc = start_server(base / "seaweed")
    try:
        import boto3

        boto3.client("s3", endpoint_url=server.endpoint_url, region_name=server.region,
                     aws_access_key_id=server.access_key_id,
                     aws_secret_access_key=server.secret_access_key).create_bucket(Bucket="bench")
        state = base / "state"
        env = tool_env(server, state)
        small = base / "small"
        if not skip >= {"noop", "checksum"}:
            generate(small, count=args.files, size_bytes=args.file_size, files_per_dir=1000)
            past = time.time() - 3600  # files older than their objects, as after a real upload
            for dirpath, _, names in os.walk(small):
                for n in names:
                    os.utime(os.path.join(dirpath, n), (past, past))
            wall, summary = s3pump_sync(small, "s3://bench/small", env)
            results["initial_upload_s"] = round(wall, 2)
            print(f"initial upload: {summary['files_done']} files in {wall:.1f} s", flush=True)
        if "noop" not in skip:
            noop = no_op_runs(small, "bench", server, env, args.repeat)
            results["noop_s"] = {k: round(v, 2) for k, v in noop.items()}
            results["noop_ratio_s3pump_over_aws"] = round(noop["s3pump"] / noop["aws"], 3)
            print(f"no-op sync: {results['noop_s']} (s3pump/aws = {results['noop_ratio_s3pump_over_aws']})",
                  flush=True)
        if "checksum" not in skip:
            default_s, _ = s3pump_sync(small, "s3://bench/small", env)
            cold_env = dict(env, S3PUMP_STATE_DIR=str(base / "state-cold"))
            cold_s, cold = s3pump_sync(small, "s3://bench/small", cold_env, "--checksum")
            warm_s, warm = s3pump_sync(small, "s3://bench/small", cold_env, "--checksum")
            assert cold["planned_uploads"] == warm["planned_uploads"] == 0 and warm["files_hashed"] == 0
            results["checksum_small"] = {
                "default_s": round(default_s, 2), "cold_s": round(cold_s, 2), "warm_s": round(warm_s, 2),
                "warm_over_default": round(warm_s / default_s, 3), "cold_files_hashed": cold["files_hashed"],
                "cold_hash_MBps": round(cold["bytes_hashed"] / cold_s / 1e6, 1),
            }
            print(f"checksum over small files: {results['checksum_small']}", flush=True)
        if "hash" not in skip:
            big = base / "big"
            big.mkdir()
            files = []
            for i in range(max(1, args.hash_mib // args.hash_file_mib)):
                f = big / f"big{i:03d}.bin"
                with open(f, "wb") as fh:
                    for _ in range(args.hash_file_mib):
                        fh.write(os.urandom(MIB))
                files.append(f)
            s3pump_sync(big, "s3://bench/big", env)
            md5sum_rate(files)  # read once: both measured with the files in the page cache
            md5_bps = md5sum_rate(files)
            md5_cpu_s = LAST_CPU_S[0]
            hash_env = dict(env, S3PUMP_STATE_DIR=str(base / "st-h"))
            wall, summary = s3pump_sync(big, "s3://bench/big", hash_env, "--checksum")
            cold_cpu_s = LAST_CPU_S[0]
            warm_wall, warm = s3pump_sync(big, "s3://bench/big", hash_env, "--checksum")  # same work, no hashing
            hash_cpu_s = max(cold_cpu_s - LAST_CPU_S[0], 1e-3)
            assert summary["planned_uploads"] == 0 and warm["files_hashed"] == 0, summary
            rate = summary["bytes_hashed"] / wall
            hashing_rate = summary["bytes_hashed"] / max(wall - warm_wall, 1e-3)
            cores = os.cpu_count() or 1
            results["hash"] = {
                "bytes": summary["bytes_hashed"], "s3pump_cold_wall_s": round(wall, 2),
                "s3pump_warm_wall_s": round(warm_wall, 2),
                "s3pump_MBps_end_to_end": round(rate / 1e6, 1),
                "s3pump_MBps_hashing_only": round(hashing_rate / 1e6, 1),
                "md5sum_MBps_one_core": round(md5_bps / 1e6, 1),
                "ratio_end_to_end_vs_md5sum_x_cores": round(rate / (md5_bps * cores), 3),
                "ratio_hashing_only_vs_md5sum_x_cores": round(hashing_rate / (md5_bps * cores), 3),
                # contention-proof: bytes per CPU-second, s3pump's hashing vs md5sum's
                "cpu_efficiency_vs_md5sum": round((summary["bytes_hashed"] / hash_cpu_s)
                                                  / (sum(f.stat().st_size for f in files) / md5_cpu_s), 3),
            }
            print(f"hash throughput: {results['hash']}", flush=True)
        if "rss" not in skip:
            cmd = [sys.executable, __file__, "--rss-child", str(args.rss_keys)]
            if args.rss_real_files:
                cmd.append("--rss-real-files")
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=7200)
            if r.returncode != 0:
                raise SystemExit(f"rss child failed: {r.stderr[-2000:]}")
            results["rss"] = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"peak RSS: {results['rss']}", flush=True)
    finally:
        stop_server(proc, grace_s=2.0)
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
