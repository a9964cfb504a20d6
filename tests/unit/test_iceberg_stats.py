"""``export/iceberg_stats.py`` against pyiceberg's own ``data_file_statistics_from_parquet_metadata``: the same
statistics for generated tables of every column type Iceberg exports write (nulls, NaN, strings past the
truncation length, code points at the top of Unicode, decimals as integers), in one or several row groups, under
every metrics mode (Iceberg spec, "Manifests" and the ``write.metadata.metrics.*`` table properties)."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import re
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("pyiceberg")

from tests.unit.iceberg_local import local_table

_TEXT = st.text(alphabet=st.sampled_from(["a", "z", "é", "\U0010ffff", "\ufffd", "0"]), max_size=40)
_COLUMNS: dict[str, tuple[pa.DataType, Any]] = {
    "i32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "i64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "f64": (pa.float64(), st.floats(allow_nan=True, allow_infinity=True)),
    "f32": (pa.float32(), st.floats(width=32, allow_nan=True)),
    "flag": (pa.bool_(), st.booleans()),
    "text": (pa.string(), _TEXT),
    "blob": (pa.binary(), st.binary(max_size=30)),
    "day": (pa.date32(), st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))),
    "ts": (pa.timestamp("us"), st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31))),
    "tstz": (pa.timestamp("us", "UTC"), st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31),
                                                     timezones=st.just(dt.UTC))),
    "d9": (pa.decimal128(9, 2), st.decimals(-(10**7) + 1, 10**7 - 1, places=2)),
    "d18": (pa.decimal128(18, 4), st.decimals(-(10**14) + 1, 10**14 - 1, places=4)),
    "d38": (pa.decimal128(38, 6), st.decimals(-(10**32) + 1, 10**32 - 1, places=6)),
    "empty": (pa.string(), st.none()),
}
_MODES = ["truncate(16)", "truncate(1)", "truncate(4)", "full", "counts", "none"]


@st.composite
def _cases(draw: st.DrawFn) -> tuple[pa.Table, dict[str, str], int]:
    names = draw(st.lists(st.sampled_from(sorted(_COLUMNS)), min_size=1, max_size=6, unique=True))
    n = draw(st.integers(1, 40))
    columns = {}
    for name in names:
        typ, values = _COLUMNS[name]
        cells = draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))
        if pa.types.is_decimal(typ):
            cells = [None if c is None else decimal.Decimal(c) for c in cells]
        columns[name] = pa.array(cells, typ)
    properties = {"write.metadata.metrics.default": draw(st.sampled_from(_MODES))}
    for name in names:
        if draw(st.booleans()):
            properties[f"write.metadata.metrics.column.{name}"] = draw(st.sampled_from(_MODES))
    return pa.table(columns), properties, draw(st.sampled_from([n, 7, 3]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=_cases())
def test_footer_stats_equal_pyiceberg_s_for_every_type_mode_and_row_group_count(
    tmp_path: Any, case: tuple[pa.Table, Any, int]
) -> None:
    from pyiceberg.io.pyarrow import (
        compute_statistics_plan,
        data_file_statistics_from_parquet_metadata,
        parquet_path_to_id_mapping,
    )

    from s3pump.export.iceberg_stats import FooterStats
    from s3pump.export.iceberg_write import FileWriter

    rows, properties, row_group_rows = case
    table = local_table(tmp_path, rows.schema, properties)
    writer = FileWriter(table, "u")
    arrow = writer.to_file_schema(rows)
    sink = pa.BufferOutputStream()
    pq.write_table(arrow, sink, row_group_size=row_group_rows, compression="zstd", store_decimal_as_integer=True)
    footer = pq.ParquetFile(pa.BufferReader(sink.getvalue())).metadata
    schema = table.metadata.schema()
    plan, mapping = compute_statistics_plan(schema, table.metadata.properties), parquet_path_to_id_mapping(schema)
    try:
        want = data_file_statistics_from_parquet_metadata(footer, plan, mapping).to_serialized_dict()
    except ValueError as e:  # (a bound pyiceberg cannot store: the fast path must refuse it the same way)
        with pytest.raises(ValueError, match=re.escape(str(e).split(" for column")[0][:40])):
            FooterStats(plan, mapping)(footer)
        return
    assert FooterStats(plan, mapping)(footer) == want
    stats = FooterStats(plan, mapping)  # one plan over many files, as a commit's files share it
    for piece in itertools.islice((rows.slice(i, 5) for i in range(0, rows.num_rows, 5)), 4):
        sink = pa.BufferOutputStream()
        pq.write_table(writer.to_file_schema(piece), sink, compression="zstd", store_decimal_as_integer=True)
        footer = pq.ParquetFile(pa.BufferReader(sink.getvalue())).metadata
        assert stats(footer) == data_file_statistics_from_parquet_metadata(footer, plan, mapping).to_serialized_dict()


def test_the_data_file_records_of_a_commit_carry_pyiceberg_s_statistics(tmp_path: Any) -> None:
    """``FileWriter.write``'s record: the bounds and counts pyiceberg computes from the same file's footer."""
    from pyiceberg.io.pyarrow import (
        compute_statistics_plan,
        data_file_statistics_from_parquet_metadata,
        parquet_path_to_id_mapping,
    )

    from s3pump.export.iceberg_write import FileWriter

    rows = pa.table({"id": pa.array(range(100), pa.int64()), "name": pa.array([f"name-{i:030d}" for i in range(100)]),
                     "amount": pa.array([decimal.Decimal(i) / 4 for i in range(100)], pa.decimal128(12, 2)),
                     "x": pa.array([float("nan") if i % 7 == 0 else i / 3 for i in range(100)])})
    table = local_table(tmp_path, rows.schema, {})
    _path, body, record = FileWriter(table, "u").write((0, (None, rows)))
    footer = pq.ParquetFile(pa.BufferReader(body)).metadata
    schema = table.metadata.schema()
    want = data_file_statistics_from_parquet_metadata(footer, compute_statistics_plan(schema, {}),
                                                      parquet_path_to_id_mapping(schema)).to_serialized_dict()
    assert record.record_count == 100 == want["record_count"]
    for key in ("column_sizes", "value_counts", "null_value_counts", "lower_bounds", "upper_bounds", "split_offsets"):
        assert getattr(record, key) == want[key], key
    assert record.lower_bounds[2] == b"name-00000000000"[:16] and len(record.upper_bounds[2]) == 16  # truncate(16)


def test_an_upper_bound_whose_increment_lands_on_a_surrogate_takes_the_next_scalar_value(tmp_path: Any) -> None:
    """The longest value truncated to 16 code points ends in U+D7FF: pyiceberg's increment makes U+D800, which
    UTF-8 cannot encode (its own function fails, and so did an export of such a value); the bound is U+E000
    instead, still above every value with that prefix (UTF-8 sorts as code points)."""
    from pyiceberg.io.pyarrow import (
        compute_statistics_plan,
        data_file_statistics_from_parquet_metadata,
        parquet_path_to_id_mapping,
    )

    from s3pump.export.iceberg_write import FileWriter

    top = "a" * 15 + "\ud7ff" + "tail"
    rows = pa.table({"text": pa.array([top, "aaa", None])})
    table = local_table(tmp_path, rows.schema, {})  # the default metrics mode: truncate(16)
    _path, body, record = FileWriter(table, "u").write((0, (None, rows)))
    footer = pq.ParquetFile(pa.BufferReader(body)).metadata
    schema = table.metadata.schema()
    with pytest.raises(UnicodeEncodeError):
        data_file_statistics_from_parquet_metadata(footer, compute_statistics_plan(schema, {}),
                                                   parquet_path_to_id_mapping(schema)).to_serialized_dict()
    fid = schema.find_field("text").field_id
    assert record.upper_bounds[fid] == ("a" * 15 + "\ue000").encode()
    assert record.upper_bounds[fid] > top.encode()[:len(record.upper_bounds[fid])]
    assert record.lower_bounds[fid] == b"aaa" and record.null_value_counts[fid] == 1
