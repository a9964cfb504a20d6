"""``--cluster`` scaling: 1, 2 and 3 Dask worker processes with a per-worker bandwidth cap, measured
against the throughput model's prediction, on one SeaweedFS.

The machine has 2 cores shared by the server and the workers, so uncapped workers only share the
CPU (no gain); a per-worker cap (``worker_bwlimit_bps``, as a node's link would) makes the worker the
bound, as on a real cluster. The model (s3pump/cluster/forecast.py, docs/cluster.md) predicts N
workers at N x the cap (bounded by S3's 3,500 PUT/s per prefix, far off here), and the 1-worker run's
own observed rate x N. Transfer time excludes the per-run start (path check, plugin: ~0.1-1 s).

    python benchmarks/cluster.py [--files 24] [--mib 2] [--cap-mib 4] [--rounds 3] [--workers 1,2,3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import boto3
import distributed

from s3pump.cluster.forecast import S3_PUTS_PER_S_PER_PREFIX
from s3pump.config import TransferConfig
from s3pump.devserver import start_server, stop_server
from s3pump.jobs.upload import upload

MIB = 1024 * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--mib", type=int, default=2, help="MiB per file")
    ap.add_argument("--cap-mib", type=float, default=4.0, help="per-worker cap, MiB/s")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", default="1,2,3", help="worker counts, comma-separated (1 first: the model's base)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="s3pump-bench-cluster-"))
    server, proc = start_server(base / "server")
    try:
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name=server.region,
                          aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key)
        s3.create_bucket(Bucket="bench-cluster")
        for i in range(20):  # let SeaweedFS grow the bucket's volumes before anything is timed
            s3.put_object(Bucket="bench-cluster", Key=f"_warm/{i}", Body=b"x")
        tree = base / "tree"
        tree.mkdir()
        for i in range(args.files):
            (tree / f"f{i:04d}.bin").write_bytes(os.urandom(args.mib * MIB))
        os.environ["S3PUMP_STATE_DIR"] = str(base / "state")
        config = TransferConfig(endpoint_url=server.endpoint_url, region=server.region,
                                access_key_id=server.access_key_id, secret_access_key=server.secret_access_key)
        worker_env = {"AWS_ACCESS_KEY_ID": server.access_key_id, "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
                      "AWS_REGION": server.region}
        cap = int(args.cap_mib * MIB)
        total = args.files * args.mib * MIB
        counts = sorted({1, *(int(n) for n in args.workers.split(","))})
        times: dict[int, list[float]] = {n: [] for n in counts}
        clusters = {n: distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                dashboard_address=None, env=worker_env) for n in counts}
        clients = {n: distributed.Client(c) for n, c in clusters.items()}
        try:
            run = 0
            for _ in range(args.rounds):
                for n in counts:  # alternate, so drift on the shared machine hits both alike
                    run += 1
                    report = upload([tree], f"s3://bench-cluster/r{run}/", config, cluster=clients[n],
                                    failed_list=base / f"failed-{run}.jsonl",
                                    cluster_options={"shard_files": 2, "worker_bwlimit_bps": cap})
                    assert report.ok and report.cluster is not None
                    times[n].append(float(report.cluster["transfer_s"]))
                    time.sleep(0.5)
        finally:
            for c in clients.values():
                c.close()
            for cl in clusters.values():
                cl.close()
        medians = {n: statistics.median(times[n]) for n in counts}
        t1 = medians[1]
        r1 = total / t1
        print(f"{args.files} files x {args.mib} MiB, per-worker cap {args.cap_mib} MiB/s, "
              f"medians of {args.rounds} (transfer time)")
        print(f"{'workers':>7} {'seconds':>8} {'MiB/s':>7} {'speed-up':>8} {'model: N x cap':>15} "
              f"{'model: N x 1-worker rate':>25}")
        for n, t in medians.items():
            by_cap = min(n * cap, S3_PUTS_PER_S_PER_PREFIX * args.mib * MIB) / MIB
            print(f"{n:>7} {t:>8.2f} {total / t / MIB:>7.2f} {t1 / t:>8.2f} {by_cap:>11.2f} MiB/s "
                  f"{n * r1 / MIB:>21.2f} MiB/s")
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
