"""``export/iceberg_write.py``'s ``data_files`` without a run (as a Dask worker calls it): s3pump's Parquet
writer, Iceberg field IDs, records from the writer's footer, into a local warehouse (no S3)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pyiceberg")

from tests.unit.iceberg_local import local_table


def test_data_files_without_a_run_write_through_the_fileio_and_read_back(tmp_path: Path) -> None:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import assign_fresh_schema_ids
    from pyiceberg.transforms import IdentityTransform

    from s3pump.export.iceberg_write import data_files

    rows = pa.table({"id": pa.array(range(1, 3001), pa.int64()),
                     "kind": pa.array([f"k{i % 3}" for i in range(3000)]),
                     "price": pa.array([decimal.Decimal(i) / 100 for i in range(3000)], pa.decimal128(10, 2))})
    catalog = SqlCatalog("s3pump", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("s")
    schema = assign_fresh_schema_ids(_pyarrow_to_schema_without_ids(rows.schema))
    spec = PartitionSpec(PartitionField(source_id=schema.find_field("kind").field_id, field_id=1000,
                                        transform=IdentityTransform(), name="kind"))
    table = catalog.create_table(("s", "t"), schema=schema, partition_spec=spec)
    with table.transaction() as tx, tx.update_snapshot().fast_append() as app:
        files = list(data_files(table, rows, rows.nbytes // 6, uuid.uuid4(), run=None))
        for f in files:
            app.append_data_file(f)
    # 3 partitions of 1,000 rows, each cut in files of about a sixth of the rows' Arrow bytes (<= 500 rows)
    counts = sorted(f.record_count for f in files)
    assert sum(counts) == 3000 and len(counts) >= 6 and max(counts) <= 500, counts
    assert {f.file_path.split("/")[-2] for f in files} == {"kind=k0", "kind=k1", "kind=k2"}
    for f in files:
        path = f.file_path.removeprefix("file://")
        assert f.file_size_in_bytes == Path(path).stat().st_size
        meta = pq.ParquetFile(path)
        ids = [meta.schema_arrow.field(n).metadata[b"PARQUET:field_id"] for n in ("id", "kind", "price")]
        assert ids == [b"1", b"2", b"3"]
        assert meta.metadata.row_group(0).column(2).physical_type == "INT64"  # a decimal(10,2) as an integer
        assert meta.metadata.row_group(0).column(0).compression == "ZSTD"
    got = table.refresh().scan().to_arrow().sort_by("id")
    assert got["id"].to_pylist() == rows["id"].to_pylist()
    assert got["price"].to_pylist() == rows["price"].to_pylist()
    assert table.scan(row_filter="id <= 10").to_arrow().num_rows == 10  # the footer's bounds prune files


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entities=st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=1, max_size=60),
       runs=st.booleans(), day_spec=st.booleans())
def test_partitions_hold_each_partition_s_rows_in_cursor_order_whether_in_runs_or_apart(
    tmp_path: Path, entities: list[int | None], runs: bool, day_spec: bool
) -> None:
    """``partitions``: every row once, in the partition its key says, in cursor order within it; the rows of
    a partition side by side (``runs``: the keys sorted, as a time partition in cursor order) are sliced, not
    copied; keys that come back, NULL keys, and a second field take the grouping path."""
    from pyiceberg.partitioning import PartitionField
    from pyiceberg.transforms import DayTransform, IdentityTransform

    from s3pump.export.iceberg_write import partitions

    if runs:
        entities = sorted(entities, key=lambda e: (e is None, e if e is not None else 0))
    n = len(entities)
    rows = pa.table({"id": pa.array(range(n), pa.int64()), "entity": pa.array(entities, pa.int64()),
                     "ts": pa.array([dt.datetime(2026, 1, 1) + dt.timedelta(hours=7 * i) for i in range(n)],
                                    pa.timestamp("us"))})
    table = local_table(tmp_path, rows.schema)
    schema = table.metadata.schema()
    fields = [PartitionField(source_id=schema.find_field("entity").field_id, field_id=1000,
                             transform=IdentityTransform(), name="entity")]
    if day_spec:
        fields.append(PartitionField(source_id=schema.find_field("ts").field_id, field_id=1001,
                                     transform=DayTransform(), name="ts_day"))
    with table.update_spec() as update:
        for f in fields:
            update.add_field(schema.find_field(f.source_id).name, f.transform, f.name)
    meta = table.refresh().metadata
    got: dict[tuple[Any, ...], list[int]] = {}
    for key, part in partitions(meta, rows):
        values = tuple(v.value for v in key.field_values)
        assert values not in got, "a partition split in two"
        got[values] = part["id"].to_pylist()
    epoch = dt.date(1970, 1, 1)
    want: dict[tuple[Any, ...], list[int]] = {}
    for i, e in enumerate(entities):
        day = (rows["ts"][i].as_py().date() - epoch).days
        want.setdefault((e, day) if day_spec else (e,), []).append(i)
    assert got == want



def test_rows_of_the_tables_own_schema_fit_without_pyiceberg_s_check_and_any_other_schema_gets_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyiceberg.io.pyarrow as pyarrow_io

    from s3pump.export.iceberg_write import check_rows_fit

    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string()),
                        pa.field("at", pa.timestamp("us"))])
    meta = local_table(tmp_path, schema).metadata
    checked: list[pa.Schema] = []
    full_check = pyarrow_io._check_pyarrow_schema_compatible

    def spy(requested: Any, provided_schema: pa.Schema, **kw: Any) -> None:
        checked.append(provided_schema)
        full_check(requested, provided_schema=provided_schema, **kw)

    monkeypatch.setattr(pyarrow_io, "_check_pyarrow_schema_compatible", spy)
    check_rows_fit(meta, schema)
    assert checked == []  # the table's own schema: nothing to check
    promoted = schema.set(0, pa.field("id", pa.int32(), nullable=False))
    check_rows_fit(meta, promoted)  # int -> long promotes: pyiceberg's check passes it
    assert checked == [promoted]
    for wrong, says in [
        (schema.append(pa.field("extra", pa.int64())), "more columns"),  # a column the table does not have
        (schema.set(1, pa.field("name", pa.int64())), "Mismatch in fields"),  # retyped
        (schema.set(0, pa.field("id", pa.int64())), "Mismatch in fields"),  # NULLs for a required field
        (schema.remove(0), "Mismatch in fields"),  # a required field missing
    ]:
        with pytest.raises(ValueError, match=says):
            check_rows_fit(meta, wrong)
    assert len(checked) == 5  # the promoted schema and the four wrong ones
