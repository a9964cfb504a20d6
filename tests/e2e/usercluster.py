"""A Dask cluster started the way a user starts one: ``dask scheduler`` and ``dask worker`` as
separate processes on 127.0.0.1 (free ports), each worker in a directory of its own and with an
environment of its own (credentials by the standard chain), stopped by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import S3Env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    """This process's environment without AWS or s3pump settings (PYTHONPATH kept: the workers
    import this worktree's s3pump)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_", "DASK_"))}


def env_credentials(s3env: S3Env) -> dict[str, str]:
    """A worker environment with the test server's credentials in ``AWS_*`` variables."""
    return {**base_env(), "AWS_ACCESS_KEY_ID": s3env.server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": s3env.server.secret_access_key, "AWS_REGION": s3env.server.region}


def file_credentials(s3env: S3Env, home: Path) -> dict[str, str]:
    """A worker environment whose HOME holds ``.aws/credentials`` with the test server's keys (no
    ``AWS_*`` variable at all)."""
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = {s3env.server.access_key_id}\n"
        f"aws_secret_access_key = {s3env.server.secret_access_key}\n")
    return {**base_env(), "HOME": str(home)}


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask process exited {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


class UserCluster:
    """``dask scheduler`` on a free port; :meth:`worker` starts ``dask worker`` processes. Each process
    is in a session of its own, stopped (with its nanny's child) by its PID's process group."""

    def __init__(self, tmp: Path, tls: list[str] | None = None) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.tls = tls or []  # --tls-ca-file/--tls-cert/--tls-key for the scheduler and every worker
        self.address = f"{'tls' if tls else 'tcp'}://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        sched_dir = tmp / "scheduler"
        sched_dir.mkdir(parents=True)
        proc = self._start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port",
                            str(self.port), "--no-dashboard", *(["--protocol", "tls", *self.tls] if tls else [])],
                           sched_dir, base_env())
        _wait_port(self.port, 20, proc)

    def _start(self, argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(cwd / "dask.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, cwd=cwd, env={**env, "DASK_LOGGING__DISTRIBUTED": "warning"},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def worker(self, name: str, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
        """Start a worker (one thread, no nanny) in ``tmp/name`` with ``env``; its address (it
        listens on a port chosen here) and its process. It has registered once its port answers."""
        cwd = self.tmp / name
        cwd.mkdir(parents=True, exist_ok=True)
        port = free_port()
        proc = self._start([sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1",
                            "--host", "127.0.0.1", "--worker-port", str(port), "--no-dashboard", "--no-nanny",
                            "--name", name, "--local-directory", str(cwd / "dask-scratch"), *self.tls], cwd, env)
        return f"{self.address.split(':', 1)[0]}://127.0.0.1:{port}", proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)

    def log(self, name: str) -> str:
        return (self.tmp / name / "dask.log").read_text(errors="replace")


@contextlib.contextmanager
def user_cluster(tmp: Path, tls: list[str] | None = None) -> Iterator[UserCluster]:
    cluster = UserCluster(tmp, tls)
    try:
        yield cluster
    finally:
        cluster.close()
