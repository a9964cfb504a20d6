"""``--cluster local:N``: nothing s3pump starts listens without authentication (developers' guide,
Security). The scheduler, nannies and workers speak mutual TLS with a CA made for the cluster, on
127.0.0.1 only, and their HTTP servers serve no route (no dashboard, /info, /json or /metrics)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import urllib.error
import urllib.request

import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from s3pump.cluster.connect import connect  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _listening(pids: list[int]) -> set[tuple[int, str, int]]:
    """(pid, address, port) of every listening inet socket of the processes ``pids``."""
    found = set()
    for pid in pids:
        for c in psutil.Process(pid).net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                found.add((pid, c.laddr.ip, c.laddr.port))
    return found


async def _identity(address: str) -> object:
    """Dask's ``identity`` request over ``address`` without credentials (what any local process can send)."""
    comm = await distributed.comm.connect(address, timeout=3)
    try:
        await comm.write({"op": "identity"})
        return await comm.read()
    finally:
        comm.abort()


def _tls_without_certificate(host: str, port: int) -> str:
    """A TLS client that shows no certificate: ``"refused"`` if the server ends the session."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=5) as raw, ctx.wrap_socket(raw) as tls:
            tls.sendall(b"\0" * 64)
            return "refused" if tls.recv(1) == b"" else "answered"
    except (ssl.SSLError, ConnectionError):
        return "refused"


def test_a_local_cluster_listens_on_loopback_only_and_refuses_a_client_without_its_certificate() -> None:
    me = os.getpid()
    before = _listening([me])  # this process's own (a session's servers may run in it): not the cluster's
    with connect("local:2") as client:
        assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:"), address
        workers = list(client.run(os.getpid).values())  # processes; the scheduler and nannies run here
        assert len(set(workers)) == 2 and {psutil.Process(pid).ppid() for pid in workers} == {me}, workers
        sockets = (_listening([me]) - before) | _listening(workers)
        assert len(sockets) >= 6  # the scheduler's comm and HTTP server, a nanny and a worker per worker
        assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, sockets
        # a process without the cluster's certificate: plain TCP, and TLS without a client certificate
        with pytest.raises((OSError, TimeoutError)):
            asyncio.run(_identity(address.replace("tls://", "tcp://")))
        host, port = address.removeprefix("tls://").rsplit(":", 1)
        assert _tls_without_certificate(host, int(port)) == "refused"
        # every HTTP server the cluster started answers no route: no dashboard, no task or worker data
        http_ports = [p for _, _, p in sockets if p != int(port)]
        served = []
        for p in http_ports:
            for path in ("/info/main/workers.html", "/json/identity.json", "/metrics", "/status"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{p}{path}", timeout=3) as r:
                        served.append((p, path, r.status))
                except urllib.error.HTTPError as e:
                    assert e.code == 404, (p, path, e.code)
                except (urllib.error.URLError, OSError):
                    pass  # a TLS comm port: not HTTP
        assert served == []
