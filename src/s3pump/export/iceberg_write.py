"""An Iceberg commit's data files: a group of rows cut into files of the target size, one partition at a time,
each written by s3pump's own Parquet writer and uploaded through the run's engine.

* Partitions: the group is split by its partition keys in one pass (``group_by`` of the keys pyiceberg's own
  transforms compute, each group's row indices), not by one filter over the whole group per partition; where
  each partition's rows are side by side (one field whose values come in runs, as a time partition of rows in
  cursor order), the runs are sliced and no row is copied.
* Files: each partition's rows are cut into slices of about ``arrow_target_bytes`` of Arrow (the caller's
  ``FileSizer`` turns the target Parquet size into Arrow bytes), converted to the table's schema with its
  field IDs (``PARQUET:field_id``, pyiceberg's ``_to_requested_schema``) and written in memory by
  :class:`~.formats.ParquetSerializer` (zstd, dictionaries for text only, as ``--format parquet``; decimals
  as integers where they fit, as Iceberg's writers store them) on :data:`WRITERS` threads (Arrow's writer
  releases the GIL).
* Records: each file's ``DataFile`` (counts, sizes, bounds) comes from the writer's own footer, by the rules
  of pyiceberg's ``data_file_statistics_from_parquet_metadata`` (``export/iceberg_stats.py``: its per-column
  plan made once per commit), as pyiceberg's ``write_file`` builds it: nothing is read back (no HEAD for the size).
* Uploads: through the run's engine (``run.transfer``: CRC checksums, the retry policy, cancellation); any
  file that failed fails the commit (``StoreError``): the files that did arrive are orphans the next run
  deletes. Without a run (a Dask worker), through the table's FileIO.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import StoreError
from ..items import UploadItem
from ..store.base import ObjectAttributes
from .formats import ParquetSerializer
from .iceberg_stats import FooterStats

__all__ = ["PARQUET_TYPE", "TARGET_KEY", "WRITERS", "FileWriter", "check_rows_fit", "check_stored",
           "data_file_attrs", "data_files", "parquet_writer", "partitions", "upload_item"]

TARGET_KEY = "write.target-file-size-bytes"
WRITERS = 2  #: threads writing a commit's files (the machine's cores)
_IO_WRITERS = 8  #: threads writing and uploading through the FileIO (without a run: their waits overlap)
PARQUET_TYPE = "application/vnd.apache.parquet"
T = TypeVar("T")
R = TypeVar("R")


def parquet_writer() -> ParquetSerializer:
    """The Parquet writer of ``--format parquet`` (zstd) that writes the data files."""
    return ParquetSerializer("zstd")


def data_files(table: Any, rows: pa.Table, arrow_target_bytes: int, write_uuid: Any, *,
               run: Any = None) -> Iterator[Any]:
    """Write ``rows`` (of ``table``'s schema) as data files of about ``arrow_target_bytes`` of Arrow each, one
    partition at a time, uploaded through ``run`` (a :class:`~s3pump.run.Run` on the table's bucket; None:
    through ``table.io``); yields their ``DataFile`` records for the commit once every file is stored.

    Raises:
        StoreError: a file could not be uploaded (after the run's retries): nothing may be committed.
        CancelledError: the run was cancelled while uploading.
    """
    files = FileWriter(table, write_uuid)
    pieces = [(key, piece) for key, part in partitions(table.metadata, rows)
              for piece in _cut(part, arrow_target_bytes)]
    bucket = files.location.split("://", 1)[1].split("/", 1)[0]
    if run is None or bucket != run.bucket:
        with cf.ThreadPoolExecutor(_IO_WRITERS, thread_name_prefix="s3pump-iceberg-write") as pool:
            yield from pool.map(lambda p: files.to_io(table.io, *files.write(p)), enumerate(pieces))
        return
    done: list[Any] = []
    attrs = data_file_attrs(run.config)

    def items() -> Iterator[UploadItem]:
        with cf.ThreadPoolExecutor(WRITERS, thread_name_prefix="s3pump-iceberg-write") as pool:
            for path, body, data_file in _ahead(pool, files.write, enumerate(pieces), 2 * WRITERS):
                done.append(data_file)
                yield upload_item(path, body, attrs)

    failed = run.stats.files_failed
    run.transfer(items())
    check_stored(run, failed)
    yield from done


def check_rows_fit(meta: Any, schema: pa.Schema) -> None:
    """Rows of Arrow ``schema`` fit the table of metadata ``meta`` (pyiceberg's ``_check_pyarrow_schema_compatible``:
    each field of the table's schema present, by field ID through its name mapping, required where the table's is, of
    its type or one that promotes to it). When ``schema`` is the table's schema itself (the same fields, IDs, types
    and nullability), the rows fit, and pyiceberg's check (whose first call imports and sets up ``rich`` for its
    report, about 70 ms) is not run.

    Raises:
        ValueError: (pyiceberg) the rows do not fit, with pyiceberg's table of the differences.
    """
    from pyiceberg.io.pyarrow import _check_pyarrow_schema_compatible, pyarrow_to_schema

    table_schema = meta.schema()
    try:
        if pyarrow_to_schema(schema, name_mapping=table_schema.name_mapping,
                             format_version=meta.format_version).as_struct() == table_schema.as_struct():
            return
    except ValueError:  # a column the table does not have: pyiceberg's check says so
        pass
    _check_pyarrow_schema_compatible(table_schema, provided_schema=schema, format_version=meta.format_version)


def check_stored(run: Any, failed_before: int) -> None:
    """Raise if the run failed files since it had ``failed_before`` failures (a transfer of data files).

    Raises:
        StoreError: one line with the count and the first failure: nothing may be committed.
    """
    failed = run.stats.files_failed - failed_before
    if failed:
        first = run.stats.failed[-1] if run.stats.failed else None
        raise StoreError(f"{failed} Iceberg data file(s) could not be written"
                         + (f" ({first.error})" if first is not None else "") + "; nothing was committed")


def data_file_attrs(config: Any, content_type: str | None = PARQUET_TYPE) -> ObjectAttributes:
    """What every object of the run carries (``--acl``, ``--sse``, ``--storage-class``, ``--metadata``, ...: the
    run's or store's :class:`~s3pump.config.TransferConfig`; None: nothing), with ``content_type`` (a table's
    object has its own, whatever ``--content-type`` says)."""
    base = ObjectAttributes.of(config) if config is not None else ObjectAttributes()
    return dataclasses.replace(base, content_type=content_type)


def upload_item(path: str, body: bytes, attrs: ObjectAttributes) -> UploadItem:
    """The run's upload of a data file's ``body`` to its ``s3://`` ``path`` (the table's bucket)."""
    return UploadItem(key=path.split("://", 1)[1].partition("/")[2], size_bytes=len(body),
                      source=f"iceberg data file {path.rsplit('/', 1)[-1]}", body=body, attrs=attrs)


class FileWriter:
    """What every data file of one commit shares: the file schema, statistics plan, names and locations."""

    def __init__(self, table: Any, write_uuid: Any) -> None:
        from pyiceberg.io.pyarrow import compute_statistics_plan, parquet_path_to_id_mapping, pyarrow_to_schema
        from pyiceberg.schema import sanitize_column_names
        from pyiceberg.table.locations import load_location_provider

        meta = self.meta = table.metadata
        schema = meta.schema()
        self.file_schema = sanitize_column_names(schema)
        self.stats = FooterStats(compute_statistics_plan(self.file_schema, meta.properties),
                                 parquet_path_to_id_mapping(self.file_schema))
        self.locations = load_location_provider(table_location=meta.location, table_properties=meta.properties)
        self.location = meta.location
        self.write_uuid = write_uuid
        self.pyarrow_to_schema = lambda s: pyarrow_to_schema(s, name_mapping=schema.name_mapping,
                                                             format_version=meta.format_version)
        self.file_schemas: dict[pa.Schema, Any] = {}  # Arrow schema of the rows -> (file schema, projection)
        self.projection: dict[str, Any] = {"include_field_ids": True}
        try:  # pyiceberg >= 0.12 writes the field IDs through the format's model
            from pyiceberg.io.fileformat import FileFormatFactory
            from pyiceberg.manifest import FileFormat

            self.projection["format_model"] = FileFormatFactory.get(FileFormat.PARQUET)
        except ImportError:
            pass
        self.writer = parquet_writer()
        self.partition_type: Any = None

    def write(self, numbered: tuple[int, tuple[Any, pa.Table]]) -> tuple[str, bytes, Any]:
        """One data file: its path, bytes and ``DataFile`` record."""
        from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
        from pyiceberg.typedef import Record

        n, (key, rows) = numbered
        arrow = self.to_file_schema(rows)
        sink = pa.BufferOutputStream()
        footer = self.writer.write_to(arrow, sink, store_decimal_as_integer=True)
        body = sink.getvalue().to_pybytes()
        name = f"00000-{n}-{self.write_uuid}.parquet"
        path = self.locations.new_data_location(name) if key is None else self.partition_path(key, name)
        record = DataFile.from_args(content=DataFileContent.DATA, file_path=path, file_format=FileFormat.PARQUET,
                                    partition=key.partition if key is not None else Record(),
                                    file_size_in_bytes=len(body), sort_order_id=None, spec_id=self.meta.default_spec_id,
                                    equality_ids=None, key_metadata=None, **self.stats(footer))
        return path, body, record

    def partition_path(self, key: Any, name: str) -> str:
        """The location of data file ``name`` of partition ``key``: ``new_data_location(name, key)`` of pyiceberg's
        default location provider (``<field>=<value>/`` per field), the partition type built once, not per file."""
        from urllib.parse import quote_plus

        from pyiceberg.table.locations import SimpleLocationProvider

        if not isinstance(self.locations, SimpleLocationProvider):
            return str(self.locations.new_data_location(name, key))
        if self.partition_type is None:
            self.partition_type = key.partition_spec.partition_type(key.schema)
        fields, record = key.partition_spec.fields, key.partition
        parts = [quote_plus(f.name, safe="") + "=" + quote_plus(
            f.transform.to_human_string(self.partition_type.fields[i].field_type, value=record[i]), safe="")
            for i, f in enumerate(fields)]
        return f"{self.locations.data_path}/{'/'.join(parts)}/{name}"

    def to_file_schema(self, rows: pa.Table) -> pa.Table:
        """``rows`` as pyiceberg writes them: the table's columns, types and field IDs (``_to_requested_schema``
        on one batch; its schema is then given to the other slices of the same Arrow schema, which is
        zero-copy, unless the projection changed a type)."""
        from pyiceberg.io.pyarrow import _to_requested_schema

        known = self.file_schemas.get(rows.schema)
        if known is None:
            task_schema = self.pyarrow_to_schema(rows.schema)

            def project(batch: pa.RecordBatch) -> pa.RecordBatch:
                return _to_requested_schema(self.file_schema, task_schema, batch, **self.projection)

            target = project(rows.slice(0, 1).combine_chunks().to_batches()[0]).schema
            same = target.names == rows.schema.names and target.types == rows.schema.types
            known = self.file_schemas[rows.schema] = (target if same else None, project)
        target, project = known
        if target is not None:
            return pa.Table.from_arrays(rows.columns, schema=target)
        return pa.Table.from_batches([project(b) for b in rows.to_batches()])  # rows: never empty (_cut)

    @staticmethod
    def to_io(io: Any, path: str, body: bytes, record: Any) -> Any:
        with io.new_output(path).create(overwrite=True) as out:
            out.write(body)
        return record


def _ahead(pool: cf.Executor, fn: Callable[[T], R], items: Iterable[T], window: int) -> Iterator[R]:
    """``map(fn, items)`` on ``pool``, in order, at most ``window`` results ahead of the consumer."""
    pending: deque[cf.Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


def _cut(rows: pa.Table, arrow_target_bytes: int) -> Iterator[pa.Table]:
    """``rows`` in slices of about ``arrow_target_bytes`` of Arrow (the last one the rest)."""
    if rows.num_rows == 0:
        return
    per_file = max(1, int(arrow_target_bytes / max(rows.nbytes / rows.num_rows, 1e-9)))
    for start in range(0, rows.num_rows, per_file):
        yield rows.slice(start, per_file)


def partitions(meta: Any, rows: pa.Table) -> Iterator[tuple[Any, pa.Table]]:
    """``rows`` split by the partition spec's keys (each part in cursor order), with its ``PartitionKey``
    (None: the table is not partitioned)."""
    from pyiceberg.partitioning import PartitionFieldValue, PartitionKey

    spec = meta.spec()
    if spec.is_unpartitioned() or rows.num_rows == 0:
        yield None, rows
        return
    schema, keys = meta.schema(), {}
    for i, field in enumerate(spec.fields):
        source = schema.find_field(field.source_id)
        keys[f"k{i}"] = field.transform.pyarrow_transform(source.field_type)(rows[source.name].combine_chunks())
    runs = _runs(list(keys.values()))
    if runs is not None:  # each partition's rows side by side (a time partition in cursor order): slices, no copy
        ordered, (offsets, values) = rows, runs
    else:
        keyed = pa.table({**keys, "row": pc.indices_nonzero(pa.repeat(True, rows.num_rows))})
        groups = keyed.group_by(list(keys), use_threads=False).aggregate([("row", "list")])
        lists = groups["row_list"].combine_chunks()
        ordered = rows.take(lists.flatten())  # one take: the rows grouped by partition, in cursor order within each
        offsets = lists.offsets.to_pylist()
        values = [groups[k].to_pylist() for k in keys]
    for n, (start, end) in enumerate(itertools.pairwise(offsets)):
        key = PartitionKey(field_values=[PartitionFieldValue(field=f, value=v[n]) for f, v in zip(spec.fields, values,
                                                                                                   strict=True)],
                           partition_spec=spec, schema=schema)
        yield key, ordered.slice(start - offsets[0], end - start)


def _runs(keys: list[pa.Array]) -> tuple[list[int], list[list[Any]]] | None:
    """Where every partition's rows form one run (one partition field, its values in runs none of which comes
    back): the runs' offsets (``[0, end, ..., n]``) and their key values; None when some partition's rows are
    apart (or several fields), and the rows must be grouped."""
    if len(keys) != 1:
        return None
    encoded = pc.run_end_encode(keys[0])
    ends = encoded.run_ends.to_pylist()
    if len(ends) != pc.count_distinct(keys[0], mode="all").as_py():
        return None
    return [0, *ends], [encoded.values.to_pylist()]
