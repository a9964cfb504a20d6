"""An Iceberg commit's data files: a group of rows cut into files of the target size, one partition at a time.

pyiceberg's writer (``_dataframe_to_data_files``) finds each partition's rows by filtering the whole group
once per partition (86 day partitions: 86 passes over the rows). Here the group is split by its partition
keys in one pass (``group_by`` of the keys pyiceberg's own transforms compute, each group's row indices),
and each partition's rows are handed to pyiceberg alone (8 partitions at a time), with the file cut
(``write.target-file-size-bytes`` of a copy of the table's metadata: pyiceberg cuts by Arrow bytes) the
caller measured.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

__all__ = ["TARGET_KEY", "data_files"]

TARGET_KEY = "write.target-file-size-bytes"
_WRITERS = 8  # partitions written at once


def data_files(table: Any, rows: pa.Table, arrow_target_bytes: int, write_uuid: Any) -> Iterator[Any]:
    """Write ``rows`` (of ``table``'s schema) as data files of about ``arrow_target_bytes`` of Arrow each,
    one partition at a time; yields their ``DataFile`` records for the commit."""
    from pyiceberg.io.pyarrow import _dataframe_to_data_files

    meta = table.metadata
    meta = meta.model_copy(update={"properties": {**meta.properties, TARGET_KEY: str(max(1, arrow_target_bytes))}})

    def write(part: pa.Table) -> list[Any]:
        return list(_dataframe_to_data_files(table_metadata=meta, write_uuid=write_uuid, df=part, io=table.io))

    parts = list(_partitions(meta, rows))
    if len(parts) == 1:
        yield from write(parts[0])
        return
    # the partitions' files written side by side (each a PUT or a multipart upload): their waits overlap
    with cf.ThreadPoolExecutor(min(_WRITERS, len(parts)), thread_name_prefix="s3pump-iceberg-write") as pool:
        for files in pool.map(write, parts):
            yield from files


def _partitions(meta: Any, rows: pa.Table) -> Iterator[pa.Table]:
    """``rows`` split by the partition spec's keys (each part in cursor order)."""
    spec = meta.spec()
    if spec.is_unpartitioned() or rows.num_rows == 0:
        yield rows
        return
    schema, keys = meta.schema(), {}
    for i, field in enumerate(spec.fields):
        source = schema.find_field(field.source_id)
        keys[f"k{i}"] = field.transform.pyarrow_transform(source.field_type)(rows[source.name].combine_chunks())
    keyed = pa.table({**keys, "row": pa.array(range(rows.num_rows), type=pa.int64())})
    groups = keyed.group_by(list(keys), use_threads=False).aggregate([("row", "list")])
    lists = groups["row_list"].combine_chunks()
    ordered = rows.take(lists.flatten())  # one take: the rows grouped by partition, in cursor order within each
    offsets = lists.offsets.to_pylist()
    for start, end in itertools.pairwise(offsets):
        yield ordered.slice(start - offsets[0], end - start)
