"""Stopping the local SeaweedFS: nothing left running, its ports free, in seconds.

``serve`` killed with SIGTERM used to die alone, leaving ``weed`` running with its ports and data
directory; SIGINT to serve's pid alone waited for SeaweedFS's 15 s shutdown; ``serve
--stop-embedded`` took 15-16 s.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from s3pump.devserver import _port_free
from tests.conftest import run_cli
from tests.e2e.weedprobe import listening_ports, tree_pids

STOP_WITHIN_S = 5.0  # SIGTERM, a 2 s grace (s3pump.devprocess.STOP_GRACE_S), SIGKILL, and some slack


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3PUMP_"))}
    env.update(S3PUMP_EMBEDDED_DIR=str(tmp_path / "embedded"), S3PUMP_STATE_DIR=str(tmp_path / "state"),
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.add(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _gone_within(pids: set[int], ports: set[int], timeout_s: float) -> float:
    """Seconds until every pid is gone and every port free; fails after ``timeout_s``."""
    t0 = time.monotonic()
    while _alive(pids) or not all(_port_free(p) for p in ports):
        if time.monotonic() - t0 > timeout_s:
            pytest.fail(f"after {timeout_s:.0f} s: still running {sorted(_alive(pids))}, "
                        f"ports still taken {sorted(p for p in ports if not _port_free(p))}")
        time.sleep(0.05)
    return time.monotonic() - t0


def _kill_left(pids: set[int]) -> None:
    for pid in _alive(pids):
        os.kill(pid, signal.SIGKILL)


def _read_until(proc: subprocess.Popen[bytes], marker: bytes, timeout_s: float) -> bytes:
    """serve's stdout up to the line starting with ``marker`` (its last line of the endpoint block)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    out = b""
    deadline = time.monotonic() + timeout_s
    while marker not in out:
        if time.monotonic() > deadline or proc.poll() is not None:
            pytest.fail(f"serve did not print {marker!r}: {out!r}")
        if sel.select(timeout=0.5):
            chunk = os.read(proc.stdout.fileno(), 4096)
            out += chunk
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stopped_by_a_signal_stops_seaweedfs(tmp_path: Path, sig: signal.Signals) -> None:
    """The signal to serve's pid alone (as `kill PID` or a service manager sends it): the weed process
    tree recorded before is gone and its ports free within the grace period; exit 130."""
    env = _env(tmp_path)
    # SIGINT as a terminal's Ctrl-C delivers it: not ignored, whatever this test process inherited (a
    # non-interactive shell starts its background commands with SIGINT ignored, and Python keeps that)
    serve = subprocess.Popen([sys.executable, "-m", "s3pump", "serve"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, preexec_fn=_sigint_default)
    pids: set[int] = set()
    try:
        _read_until(serve, b"data dir:", timeout_s=120)
        state = json.loads((tmp_path / "embedded" / "server.json").read_text())
        pids = tree_pids(state["pid"])
        ports = listening_ports(state["pid"])
        assert set(state["ports"]) <= ports and len(ports) == 8, ports
        os.kill(serve.pid, sig)
        took_s = _gone_within(pids, ports, timeout_s=STOP_WITHIN_S)
        assert serve.wait(timeout=10) == 130
    finally:
        _kill_left(pids | {serve.pid})
        serve.wait()
    err = serve.stderr.read().decode() if serve.stderr else ""
    assert "stopping the server" in err, err
    assert not (tmp_path / "embedded" / "server.json").exists()  # --embedded will not look for it
    assert took_s <= STOP_WITHIN_S


@pytest.mark.e2e
def test_stop_embedded_returns_in_seconds_and_leaves_nothing_running(tmp_path: Path) -> None:
    """`serve --stop-embedded`: the weed process tree gone, its ports free, in about the grace period
    (SeaweedFS's own shutdown takes 15 s); the data stays: a restart serves the object."""
    env = _env(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha")
    pids: set[int] = set()
    try:
        r = run_cli(["upload", str(src), "s3://keep/x/", "--embedded", "--no-progress"], env)
        assert r.returncode == 0, r.stderr.decode()
        state = json.loads((tmp_path / "embedded" / "server.json").read_text())
        pids = tree_pids(state["pid"])
        ports = listening_ports(state["pid"])
        stop = run_cli(["serve", "--stop-embedded"], env)
        assert stop.returncode == 0, stop.stderr.decode()
        _gone_within(pids, ports, timeout_s=1.0)  # already gone when the command returned
        last = stop.stderr.decode().splitlines()[-1]
        assert last.startswith("stopped the embedded S3 server in "), last
        stop_s = float(last.removeprefix("stopped the embedded S3 server in ").split(" s;")[0])
        assert stop_s <= STOP_WITHIN_S - 1.5, last
        # the data survived the stop: the next command restarts the server and reads the object back
        r = run_cli(["verify", str(src), "s3://keep/x/", "--embedded", "--download"], env)
        assert r.returncode == 0, (r.stdout + r.stderr).decode()
        pids |= tree_pids(json.loads((tmp_path / "embedded" / "server.json").read_text())["pid"])
    finally:
        run_cli(["serve", "--stop-embedded"], env)
        _kill_left(pids)


@pytest.mark.e2e
def test_a_restarted_server_serves_its_objects_as_soon_as_it_is_ready(tmp_path: Path) -> None:
    """After a stop, a restart on the same data answered ListBuckets seconds before its volume server
    had registered with the master: every GetObject and PutObject failed (500, "volume N not found")
    in that window. start_server returns only when the master knows the volume server."""
    import boto3
    import botocore.config

    from s3pump.devserver import start_server, stop_server

    def client(server):
        return boto3.client("s3", endpoint_url=server.endpoint_url, region_name=server.region,
                            aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key,
                            config=botocore.config.Config(retries={"max_attempts": 1}))

    bodies = [os.urandom(256 * 1024) for _ in range(3)]
    server, proc = start_server(tmp_path / "weed")
    try:
        c = client(server)
        c.create_bucket(Bucket="kept")
        for i in range(3):  # big enough to live in a volume, not inline in the filer's entry
            c.put_object(Bucket="kept", Key=f"k{i}", Body=bodies[i])
    finally:
        stop_server(proc)
    server, proc = start_server(tmp_path / "weed")
    try:
        c = client(server)  # no retries: the first answer must be the right one
        assert [c.get_object(Bucket="kept", Key=f"k{i}")["Body"].read() for i in range(3)] == bodies
        c.put_object(Bucket="kept", Key="after", Body=b"a")
    finally:
        stop_server(proc)
