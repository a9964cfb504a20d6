"""``sync --cluster``'s reads on the workers: the MD5s and multipart ETags of the files sync uploads
or compares (``--checksum``) are computed by **hash tasks** on the workers, not by the coordinator.

The planner (:class:`~s3pump.plan.syncplanner.SyncPlanner`) still decides: it batches the files
it must read (64 files or 16 MiB, as its own thread pool does), and each batch is one hash task
(:func:`hash_task`: :func:`~s3pump.plan.digests.read_digest` on the worker, paths through
``S3PUMP_CLUSTER_PATH_MAP``). The digests come back to the coordinator, which compares them,
writes its hash cache and plans the uploads. A task whose workers all died makes its files failed
(:class:`~s3pump.errors.WorkerLostError`, exit 1; a rerun reads them again).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import S3PumpError, SourceError, WorkerLostError
from ..etags import FileDigest
from ..plan.digests import HashRequest, read_digest

__all__ = ["ClusterHasher", "HashAnswer", "hash_task"]


@dataclass(frozen=True, slots=True)
class HashAnswer:
    """A hash task's digests (or the read's error), one per request, read on ``worker`` by process ``pid``."""

    worker: str
    pid: int
    digests: tuple[FileDigest | S3PumpError, ...]


def hash_task(requests: tuple[HashRequest, ...], follow_symlinks: bool) -> HashAnswer:
    """The task: read each requested file on this worker (its MD5, and the asked multipart ETags and CRCs).
    Digests carry no device number (another host numbers devices its own way)."""
    from distributed import get_worker

    from .worker import local_path, path_map

    mapping = path_map()
    out: list[FileDigest | S3PumpError] = []
    for r in requests:
        root = local_path(r.root, mapping)
        path = local_path(r.path, mapping)
        try:
            d = read_digest(root, path, r.part_sizes, whole=True, follow_symlinks=follow_symlinks, crcs=r.crcs)
        except SourceError as e:
            out.append(e)
            continue
        out.append(dataclasses.replace(d, device=None))
    return HashAnswer(get_worker().address, os.getpid(), tuple(out))


@dataclass(slots=True)
class ClusterHasher:
    """The planner's :data:`~s3pump.plan.digests.Hasher` on ``client``'s workers (called from its pool
    threads, one hash task per call), and what the workers read: tasks, files, bytes, per worker."""

    client: Any
    name: str = field(default_factory=lambda: f"s3pump-hash-{uuid.uuid4().hex[:12]}")
    tasks: int = 0
    files: int = 0
    bytes: int = 0
    failed_tasks: int = 0
    per_worker: dict[str, int] = field(default_factory=dict)
    #: process ids of the workers that read (the coordinator's is never among them)
    pids: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, requests: Sequence[HashRequest], follow_symlinks: bool) -> list[FileDigest | S3PumpError]:
        with self._lock:
            n = self.tasks
            self.tasks += 1
        fut = self.client.submit(hash_task, tuple(requests), follow_symlinks, key=f"{self.name}-{n}", pure=False)
        try:
            answer: HashAnswer = fut.result()
        except Exception as e:  # its workers died, or the scheduler lost it (a cancelled run's too)
            with self._lock:
                self.failed_tasks += 1
            lost = WorkerLostError(f"the hash task reading this file did not finish ({type(e).__name__}: {e}); "
                                   "rerun the command")
            return [lost] * len(requests)
        finally:
            fut.release()
        with self._lock:
            self.per_worker[answer.worker] = self.per_worker.get(answer.worker, 0) + 1
            self.pids.add(answer.pid)
            for d in answer.digests:
                if isinstance(d, FileDigest):
                    self.files += 1
                    self.bytes += d.size_bytes
        return list(answer.digests)

    def to_json(self) -> dict[str, Any]:
        """The summary's ``cluster.hash`` object."""
        return {"on": "workers", "tasks": self.tasks, "files": self.files, "bytes": self.bytes,
                "failed_tasks": self.failed_tasks, "per_worker": dict(sorted(self.per_worker.items())),
                "pids": sorted(self.pids)}
