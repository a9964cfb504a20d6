"""``s3pump export --table-format iceberg``: the flags it refuses, and its one job in a ``Run``
(``export/iceberg.py``; the table, catalog and cursor in ``export/iceberg_table.py``)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from ..config import TransferConfig
from ..errors import S3PumpError, StoreError, UsageError
from ..events import Subscriber
from ..reports import ExportReport
from ..run import Run
from ..sources.table import TableSource
from ..store.base import Store
from ..urls import S3Url

__all__ = ["TABLE_FORMATS", "check_iceberg_flags", "export_iceberg"]

TABLE_FORMATS = ("files", "iceberg")


def check_iceberg_flags(table_format: str, flags: dict[str, Any]) -> None:
    """Refuse a ``--table-format`` other than files/iceberg, and the flags an Iceberg export does not take
    (exit 2, before anything is read)."""
    if table_format not in TABLE_FORMATS:
        raise UsageError(f"--table-format {table_format!r}: use files or iceberg")
    if table_format != "iceberg":
        return
    for flag, given in flags.items():
        if given:
            raise UsageError(f"--table-format iceberg with {flag}: an Iceberg export appends Parquet data files "
                             f"and keeps its cursor in the table's snapshots; run without {flag}")


def export_iceberg(source: TableSource, dest: S3Url, config: TransferConfig, specs: list[Any], *, batch_rows: int,
                   stop: threading.Event, catalog_uri: str | None, schema_evolution: bool, dlq: str | None,
                   target_file_size_bytes: int, max_file_age_s: float, follow: bool, poll_interval_s: float,
                   store: Store | None, embedded: bool, subscribers: Iterable[Subscriber],
                   handle_signals: bool, cluster: Any = None, db: str = "", lock_timeout_s: float | None = None,
                   cluster_options: dict[str, Any] | None = None) -> ExportReport:
    """One Iceberg export of ``source`` (see ``export/iceberg.py``); with ``cluster``, its data files written
    by the workers from ``db`` and committed here in cursor order (``jobs/export_iceberg_cluster.py``).

    Raises:
        UsageError: a schema change it does not follow, a partition Iceberg cannot express (exit 2).
        StoreError: pyiceberg, pyarrow's S3 client or the catalog failed (one line; nothing half-committed).
    """
    from ..export.iceberg import IcebergExport

    with Run("export", config, dest.bucket, store=store, embedded=embedded, subscribers=subscribers,
             handle_signals=handle_signals, graceful_stop=stop) as run:
        job = IcebergExport(source, dest, run, specs, batch_rows=batch_rows, stop=stop, catalog_uri=catalog_uri,
                            schema_evolution=schema_evolution, dlq=dlq, target_file_size_bytes=target_file_size_bytes,
                            max_file_age_s=max_file_age_s)
        try:
            if cluster is not None:
                from .export_iceberg_cluster import export_iceberg_on_cluster

                return export_iceberg_on_cluster(job, db, cluster, lock_timeout_s=lock_timeout_s,
                                                 **(cluster_options or {}))
            return job.run(follow=follow, poll_interval_s=poll_interval_s)
        except S3PumpError:
            raise
        except Exception as e:
            if not _from_the_libraries(e):
                raise
            # pyiceberg's and pyarrow's own errors (a refused commit, an S3 request that failed after
            # pyarrow's retries, an unreachable catalog): one line; the next run resumes from the table
            text = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise StoreError(f"iceberg table {job.describe()['table']} at {job.describe()['location']}: "
                             f"{type(e).__name__}: {text}") from None


def _from_the_libraries(e: BaseException) -> bool:
    return isinstance(e, OSError) or type(e).__module__.split(".")[0] in ("pyiceberg", "pyarrow", "sqlalchemy")
