"""Scale-out over Dask distributed: ``--cluster ADDRESS`` (``local:N`` or ``tcp://host:8786``).

The CLI process is the **coordinator**: it has the source walked by walk tasks on the workers
(:mod:`.treewalk`; or walks it itself with ``--follow-symlinks``, or reads ``--from-list``), skips
what its resume journal has as done, cuts the rest into **shards** (:mod:`.shards`) and submits
them through a bounded window (:mod:`.coordinator`). A **worker** process holds one store and
one set of limits for the whole run (:mod:`.worker`, a Dask ``WorkerPlugin``) and runs each
shard through s3pump's own engine (a :class:`~s3pump.run.Run`). Each shard's events come back
in its result (:mod:`.results`) and are replayed on the coordinator's one event bus, so the
progress view, ``--json``, the failed-list and the journal work as in a single process.

``distributed`` is the optional extra ``s3pump[dask]``; nothing here imports it until a
cluster is asked for (:func:`~.connect.require_distributed`).
"""

from __future__ import annotations

__all__ = ["parse_cluster_address"]

from .connect import parse_cluster_address
