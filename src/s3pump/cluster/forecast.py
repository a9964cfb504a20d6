"""The throughput model of a cluster run, fed with the rates the coordinator observed.

A run can go no faster than the slowest of (see docs/cluster.md, "Throughput model"):

* the **workers**: files/s and bytes/s of all of them together (each bounded by its node's
  bandwidth, its share of ``--bwlimit``, and the source filesystem's read rate);
* the **walk**: files/s the walk finds: one walker stats ~2,000 files/s on Lustre, and the walk
  tasks on N workers (:mod:`.treewalk`) about N times that, up to what the metadata servers serve
  (the coordinator walks alone with ``--follow-symlinks`` or ``--from-list``);
* **S3**: about 3,500 PUT/s per partitioned prefix (S3 User Guide, "Best practices design
  patterns: optimizing Amazon S3 performance"); every small file is one PUT, a multipart file one
  per part plus two.

After its first minute the coordinator emits a :class:`~s3pump.events.ClusterForecast`: the time
the work found so far still needs at the observed rates, and which bound it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import ClusterForecast

__all__ = ["S3_PUTS_PER_S_PER_PREFIX", "Observed", "forecast"]

#: PUT/COPY/POST/DELETE requests per second S3 accepts per partitioned prefix.
S3_PUTS_PER_S_PER_PREFIX = 3500.0


@dataclass(frozen=True, slots=True)
class Observed:
    """What the coordinator saw in ``elapsed_s`` seconds of transfer: files and bytes done, and
    found by the walk (``walk_finished`` once it has found everything)."""

    elapsed_s: float
    workers: int
    files_done: int
    bytes_done: int
    files_found: int
    bytes_found: int
    walk_finished: bool


def forecast(seen: Observed, *, prefixes: int = 1) -> ClusterForecast:
    """The bound on the remaining time of the work found so far, at the observed rates.

    ``predicted_s`` is the largest of: remaining files / files per second and remaining bytes /
    bytes per second of the workers, remaining files / (3,500 x ``prefixes``) PUT/s, and, while the
    walk runs, the files found so far / the walk's rate (the walk must at least keep up). ``bound``
    names the largest. Rates of 0 (nothing done yet) make no bound.
    """
    t = max(seen.elapsed_s, 1e-9)
    files_rate = seen.files_done / t
    bytes_rate = seen.bytes_done / t
    walk_rate = seen.files_found / t
    left_files = max(0, seen.files_found - seen.files_done)
    left_bytes = max(0, seen.bytes_found - seen.bytes_done)
    bounds = {
        "worker files/s": left_files / files_rate if files_rate else 0.0,
        "worker bytes/s": left_bytes / bytes_rate if bytes_rate else 0.0,
        "S3 PUT/s per prefix": left_files / (S3_PUTS_PER_S_PER_PREFIX * prefixes),
        "walk": 0.0 if seen.walk_finished or not walk_rate else seen.files_found / walk_rate - t,
    }
    bound = max(bounds, key=lambda k: bounds[k])
    return ClusterForecast(
        elapsed_s=seen.elapsed_s, workers=seen.workers, files_per_s=files_rate, bytes_per_s=bytes_rate,
        walk_files_per_s=walk_rate, walk_finished=seen.walk_finished, files_left=left_files, bytes_left=left_bytes,
        predicted_s=bounds[bound], bound=bound,
    )
