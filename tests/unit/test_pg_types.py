"""PostgreSQL catalog types → Arrow (sources/pg_types.py, issue 25), without a server: the mapping, the
bare ``numeric`` rule, and Parquet's form of an interval. The e2e tests read a real server."""

from __future__ import annotations

import decimal
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from s3pump.errors import UsageError
from s3pump.export.formats import ParquetSerializer
from s3pump.export.protogen import proto_schema
from s3pump.sources.pg_types import as_cursor, bad_row_check, convert_column, pg_column


def typmod(precision: int, scale: int) -> int:
    return ((precision << 16) | scale) + 4


@pytest.mark.parametrize("typname,mod,elem,arrow", [
    ("numeric", typmod(10, 2), None, pa.decimal128(10, 2)),
    ("numeric", typmod(40, 5), None, pa.decimal256(40, 5)),
    ("numeric", -1, None, pa.string()),  # per batch: decimal128(38, s) or the text
    ("timestamptz", -1, None, pa.timestamp("us", "UTC")),
    ("timestamp", -1, None, pa.timestamp("us")),
    ("time", -1, None, pa.time64("us")),
    ("interval", -1, None, pa.month_day_nano_interval()),
    ("uuid", -1, None, pa.string()),
    ("jsonb", -1, None, pa.string()),
    ("_int4", -1, "int4", pa.list_(pa.int32())),
    ("_text", -1, "text", pa.list_(pa.string())),
    ("_uuid", -1, "uuid", pa.string()),  # arrays of other types: their output text
    ("inet", -1, None, pa.string()),
    ("money", -1, None, pa.string()),
])
def test_catalog_types_map_to_arrow_types(typname: str, mod: int, elem: str | None, arrow: pa.DataType) -> None:
    assert pg_column("c", typname, typname, "b", mod, elem, '"c"').arrow_type == arrow


def test_an_enum_or_a_domain_is_read_as_its_output_text() -> None:
    c = pg_column("c", "mood", "mood", "e", -1, None, '"c"')
    assert c.arrow_type == pa.string() and "format('%s'" in c.expr


def test_numeric_up_to_18_digits_is_read_as_its_unscaled_int8_and_stored_as_the_exact_decimal() -> None:
    c = pg_column("p", "numeric(18,4)", "numeric", "b", typmod(18, 4), None, '"p"')
    assert c.kind == "scaled_int" and "::int8" in c.expr and c.column == '"p"'
    assert "NaN" in c.expr  # a NaN (a dead-letter row: bad_row_check reads the column) is NULL here, no error
    unscaled = pa.array([1, -99999999999999_9999, None, 0, 99999999999999_9999], pa.int64())
    got = convert_column(unscaled, c)
    assert got.type == pa.decimal128(18, 4)
    assert got.to_pylist() == [decimal.Decimal("0.0001"), decimal.Decimal("-99999999999999.9999"), None,
                               decimal.Decimal("0.0000"), decimal.Decimal("99999999999999.9999")]
    assert convert_column(unscaled.slice(1, 2), c).to_pylist() == got.to_pylist()[1:3]  # an offset array
    assert '"p" IS NOT NULL' in (bad_row_check([c]) or "")
    # as the cursor column its values go back into WHERE clauses: read as itself
    assert as_cursor(c).expr == '"p"' and as_cursor(c).kind == "decimal"
    wide = pg_column("w", "numeric(19,2)", "numeric", "b", typmod(19, 2), None, '"w"')
    assert wide.kind == "decimal" and wide.expr == '"w"'


def test_bare_numeric_is_decimal128_38_when_the_batch_fits_else_its_exact_text() -> None:
    c = pg_column("n", "numeric", "numeric", "b", -1, None, '"n"')
    fits = pa.array(["123456789012345678901234567890", "-0.00001", None, "1.5"])
    got = convert_column(fits, c)
    assert got.type == pa.decimal128(38, 5)
    assert got.to_pylist() == [decimal.Decimal("123456789012345678901234567890"), decimal.Decimal("-0.00001"),
                               None, decimal.Decimal("1.5")]
    wide = pa.array(["1234567890123456789012345678901234.5678", "1"])  # 34 + 4 digits: fits exactly
    assert convert_column(wide, c).type == pa.decimal128(38, 4)
    too_wide = pa.array(["1234567890123456789012345678901234567890.5", "1"])
    assert convert_column(too_wide, c).to_pylist() == too_wide.to_pylist()  # the text, exact


def test_an_interval_is_written_to_parquet_as_its_three_fields() -> None:
    iv = pa.array([pa.MonthDayNano([-14, -3, -14706000007000]), None], pa.month_day_nano_interval())
    body = ParquetSerializer().serialize(pa.table({"iv": iv}))
    assert pq.read_table(io.BytesIO(body)).to_pylist() == [
        {"iv": {"months": -14, "days": -3, "nanoseconds": -14706000007000}}, {"iv": None}]


@pytest.mark.parametrize("typ", [pa.list_(pa.int32()), pa.month_day_nano_interval(), pa.time64("us")])
def test_protobuf_refuses_a_column_it_has_no_field_for_before_anything_is_written(typ: pa.DataType) -> None:
    with pytest.raises(UsageError, match=r"column c of table t is .*use --format parquet or jsonl"):
        proto_schema("t", pa.schema([pa.field("id", pa.int64()), pa.field("c", typ)]))


def test_postgres_url_without_the_driver_is_one_usage_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from s3pump.sources.readers import open_table

    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql.dbapi", None)  # import fails
    with pytest.raises(UsageError) as e:
        open_table("postgresql://app:s3cret@127.0.0.1:1/shop", "orders")
    assert "s3pump[postgres]" in str(e.value) and "s3cret" not in str(e.value)


def test_an_unreachable_postgres_is_one_line_without_the_password() -> None:
    pytest.importorskip("adbc_driver_postgresql", reason="needs s3pump[postgres]")
    import socket

    from s3pump.errors import SourceUnreadableError
    from s3pump.sources.readers import open_table

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceUnreadableError) as e:
        open_table(f"postgres://app:s3cret@127.0.0.1:{port}/shop", "orders")
    text = str(e.value)
    assert "cannot connect to PostgreSQL" in text and "s3cret" not in text and "\n" not in text
