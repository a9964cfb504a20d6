"""Reaching a Dask cluster: ``local:N`` (a LocalCluster of N worker processes), a scheduler
address (``tcp://host:8786``), or a ready ``distributed.Client`` (dask-jobqueue, Dask Gateway)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from ..errors import UsageError

__all__ = ["connect", "parse_cluster_address", "plugin_running", "require_distributed"]

#: How long a scheduler may take to answer, or to have its first worker.
CONNECT_TIMEOUT_S = 30.0
#: Dask's own log level in local workers (its default, INFO, writes a dozen lines per run to stderr,
#: and a worker whose scheduler closed first logs a heartbeat traceback at ERROR).
QUIET_WORKERS_ENV = {"DASK_LOGGING__DISTRIBUTED": "critical"}
#: The preload of local workers: a terminal's Ctrl-C, which reaches them too, is the coordinator's to handle.
LOCAL_WORKER_PRELOAD = "s3pump.cluster.localworker"


def _quiet_dask() -> None:
    """Dask logs INFO lines, and tracebacks of connections closed while a cluster shuts down (at INFO
    and ERROR), to stderr by default; a user sees s3pump's lines only (what fails reaches s3pump
    through the futures). ``--debug`` (s3pump's logger at DEBUG) keeps them."""
    if not logging.getLogger("s3pump").isEnabledFor(logging.DEBUG):
        logging.getLogger("distributed").setLevel(logging.CRITICAL)


#: Dask's HTTP routes (dashboard, /info, /json, /metrics, proxy) off in a local cluster: none serves data.
_NO_HTTP_ROUTES: dict[str, list[str]] = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}


def dask_config() -> Any:
    """``dask.config`` (imported with ``distributed``)."""
    import dask.config
    return dask.config


def _temporary_security(distributed: ModuleType) -> Any:
    """A ``distributed.security.Security`` with a CA and certificates made for one local cluster (mutual
    TLS: a process without them cannot connect; Dask docs, "TLS/SSL", ``Security.temporary``)."""
    return distributed.security.Security.temporary()


def require_distributed() -> ModuleType:
    """``distributed``, imported now (it costs ~0.3 s, so only when a cluster is asked for).

    Raises:
        UsageError: it is not installed (exit 2; says which extra to install).
    """
    try:
        import distributed
    except ImportError:
        raise UsageError("--cluster needs Dask distributed: pip install 's3pump[dask]'") from None
    return distributed


def parse_cluster_address(address: str) -> tuple[str, int | None]:
    """``("local", N)`` for ``local:N`` (N >= 1 worker processes), else ``("scheduler", None)``
    for an address Dask understands (``tcp://host:8786``, ``tls://...``, ``host:8786``).

    Raises:
        UsageError: ``local:`` without a positive worker count, or an empty address.
    """
    address = address.strip()
    if not address:
        raise UsageError("--cluster: give local:N or a scheduler address such as tcp://host:8786")
    if address.startswith("local:") or address == "local":
        count = address.partition(":")[2]
        if not count.isdigit() or int(count) < 1:
            raise UsageError(f"--cluster {address}: say how many worker processes, e.g. local:4")
        return "local", int(count)
    return "scheduler", None


def _check_tls_config(distributed: ModuleType, address: str) -> None:
    """A ``tls://`` scheduler needs this process's certificates in Dask's configuration.

    Raises:
        UsageError: the address is ``tls://`` and Dask's config names no CA or client certificate.
    """
    if not address.startswith("tls://"):
        return
    security = distributed.security.Security()
    if not (security.tls_ca_file and security.tls_client_cert):
        raise UsageError(f"--cluster {address}: a tls:// scheduler needs this process's certificates: set "
                         "DASK_DISTRIBUTED__COMM__TLS__CA_FILE, DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT and "
                         "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY (or distributed.comm.tls in Dask's config; "
                         "docs/cluster.md)")


@contextlib.contextmanager
def connect(cluster: Any, *, local_env: dict[str, str] | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster`` (an address, or a Client used as given and not
    closed); a ``local:N`` cluster is started here and shut down on exit.

    Workers of a ``local:N`` cluster are processes with one thread each (the engine in each is
    already concurrent); they inherit this process's environment, credentials included, plus
    ``local_env`` (e.g. the credentials the caller gave in its config, or ``--embedded``'s): set in
    the workers' environment when they start, never sent in a task.

    Raises:
        UsageError: no ``distributed``, a bad address, a ``tls://`` address without certificates in
            Dask's config, or a scheduler that cannot be reached or has no worker within 30 s.
    """
    distributed = require_distributed()
    _quiet_dask()
    if isinstance(cluster, distributed.Client):
        yield cluster
        return
    kind, workers = parse_cluster_address(str(cluster))
    if kind == "local":
        # Nothing listens without authentication: the scheduler, nannies and workers speak TLS with
        # certificates of a CA made for this cluster alone (both sides show one), on 127.0.0.1 only; their
        # HTTP servers (Dask starts one each, dashboard or not) serve no route, on 127.0.0.1 and a free port.
        with dask_config().set(_NO_HTTP_ROUTES), \
                distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", security=_temporary_security(distributed),
                                         dashboard_address="127.0.0.1:0", worker_dashboard_address=None,
                                         scheduler_kwargs={"dashboard": False},
                                         silence_logs=logging.CRITICAL, preload=[LOCAL_WORKER_PRELOAD],
                                         env={**QUIET_WORKERS_ENV, **(local_env or {})}) as local, \
                distributed.Client(local) as client:
            yield client
        return
    _check_tls_config(distributed, str(cluster))
    try:
        client = distributed.Client(str(cluster), timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, TypeError) as e:  # TypeError: Dask's, for a TLS setting it lacks
        raise UsageError(f"--cluster {cluster}: cannot reach the Dask scheduler ({e}); check the address "
                         "and that the scheduler runs") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise UsageError(f"--cluster {cluster}: the scheduler has no worker after {CONNECT_TIMEOUT_S:.0f} s; "
                             "start dask workers (s3pump installed, AWS credentials in their environment)") from None
        yield client


@contextlib.contextmanager
def plugin_running(client: Any, name: str, outcome: Any) -> Iterator[None]:
    """The tasks of a run whose worker plugin is registered as ``name``: ``outcome.transfer_s`` is their
    time (from here to the end), and the plugin is unregistered at the end (a worker gone, or a cluster
    closing, already closed its store with it)."""
    started = time.monotonic()
    try:
        yield
    finally:
        outcome.transfer_s = time.monotonic() - started
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(name)
