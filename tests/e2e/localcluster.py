"""A LocalCluster for the ``--cluster`` tests: worker processes whose environment holds the test
server's credentials (the coordinator never sends them), started with them and without a dashboard."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import distributed

from tests.conftest import S3Env

_CREDENTIAL_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


def quiet_local_cluster(n_workers: int, env: dict[str, str] | None = None) -> distributed.LocalCluster:
    """A LocalCluster of ``n_workers`` processes (one thread each, ``env`` in their environment) on 127.0.0.1
    only, whose HTTP servers (Dask starts one per scheduler and worker, dashboard or not) take a free port and
    serve no route: as ``s3pump.cluster.connect`` starts ``local:N``. (``dashboard_address=None`` is no "off":
    Dask then binds its default, ``:8787`` on every interface, and two test workers clash on it.)"""
    from s3pump.cluster.connect import _NO_HTTP_ROUTES, dask_config

    with dask_config().set(_NO_HTTP_ROUTES):
        return distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        dashboard_address="127.0.0.1:0", worker_dashboard_address=None,
                                        scheduler_kwargs={"dashboard": False}, env=env or {})


@contextlib.contextmanager
def local_cluster_client(s3env: S3Env, n_workers: int = 2) -> Iterator[distributed.Client]:
    """A Client of a LocalCluster of ``n_workers`` processes (one thread each); the credentials are in
    the workers' environment only while they start, this process's environment is restored."""
    saved = {k: os.environ.get(k) for k in _CREDENTIAL_VARS}
    os.environ.update(AWS_ACCESS_KEY_ID=s3env.server.access_key_id,
                      AWS_SECRET_ACCESS_KEY=s3env.server.secret_access_key, AWS_REGION=s3env.server.region)
    try:
        cluster = quiet_local_cluster(n_workers)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with cluster, distributed.Client(cluster) as c:
        yield c
