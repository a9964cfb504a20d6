"""JSON Lines by column (``export.jsonlines.encode_jsonl``) against the row-by-row reference encoder.

The reference (``encode_rows``) is the encoder every JSON Lines export used before: the standard
library's ``json`` over ``table.to_pylist()``. The column encoder must give the same bytes (so the
same values, decimals and timestamps included) or refuse the same tables.
"""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import math
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3pump.config import TransferConfig
from s3pump.export.formats import gzip_compress, make_serializer
from s3pump.export.jsonlines import encode_jsonl, encode_rows
from s3pump.jobs.export import export_table
from s3pump.store.memory import MemoryStore

_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)  # any code point but lone surrogates
_FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 2.0, 1e15, 1e16, 1e-4, 1e-5, 9007199254740993.0, 5e-324, 1.7976931348623157e308])
_MICROS = st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999)


def _decimals(precision: int, scale: int) -> st.SearchStrategy[decimal.Decimal]:
    bound = 10**precision - 1
    exact = decimal.Context(prec=100)
    return st.integers(-bound, bound).map(lambda i: decimal.Decimal(i).scaleb(-scale, context=exact))


def _column(draw: Any, n: int) -> tuple[pa.DataType, list[Any]]:
    kind = draw(st.sampled_from(["int", "float", "bool", "text", "bytes", "ts", "ts-s", "ts-utc", "date", "decimal",
                                 "null"]))
    typ: pa.DataType
    if kind == "int":
        typ, values = pa.int64(), st.integers(-(2**63), 2**63 - 1)
    elif kind == "float":
        typ, values = pa.float64(), _FLOATS
    elif kind == "bool":
        typ, values = pa.bool_(), st.booleans()
    elif kind == "text":
        typ, values = pa.string(), _TEXT | st.sampled_from(['a"b', "back\\slash", "tab\there", "\x00\x1f\x7f",
                                                             "é漢😀", "\u2028", ""])
    elif kind == "bytes":
        typ, values = pa.binary(), st.binary(max_size=10)
    elif kind == "ts":  # whole seconds and not: isoformat drops ".000000"
        typ, values = pa.timestamp("us"), _MICROS | _MICROS.map(lambda m: m - m % 1_000_000)
    elif kind == "ts-s":  # near and beyond the ends of Python's datetime
        typ, values = pa.timestamp("us"), st.integers(-(2**62), 2**62) | st.sampled_from(
            [-62_135_596_800_000_001, 253_402_300_800_000_000, 0, -1])
    elif kind == "ts-utc":  # PostgreSQL's timestamptz: "+00:00" after the time, as isoformat() writes
        typ, values = pa.timestamp("us", "UTC"), _MICROS | _MICROS.map(lambda m: m - m % 1_000_000) | st.sampled_from(
            [-62_135_596_800_000_001, 253_402_300_800_000_000])
    elif kind == "date":
        typ, values = pa.date32(), st.integers(-800_000, 3_000_000)
    elif kind == "decimal":
        precision = draw(st.integers(1, 76))
        scale = draw(st.integers(0, precision))
        typ = pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        values = _decimals(precision, scale)
    else:
        return pa.null(), [None] * n
    nullable = draw(st.booleans())
    drawn = draw(st.lists(st.none() | values if nullable else values, min_size=n, max_size=n))
    if kind == "decimal":  # through text: pyarrow infers a narrower precision from Decimal objects
        return typ, pa.array([None if v is None else format(v, "f") for v in drawn], pa.string()).cast(typ)
    if kind in ("ts", "ts-s", "ts-utc", "date"):
        storage = pa.int64() if kind != "date" else pa.int32()
        return typ, pa.array(drawn, storage).cast(typ)
    return typ, drawn


@st.composite
def tables(draw: Any) -> pa.Table:
    n = draw(st.integers(1, 8))
    names = draw(st.lists(_TEXT, min_size=1, max_size=5, unique=True))
    columns = {}
    for name in names:
        typ, values = _column(draw, n)
        columns[name] = values if isinstance(values, pa.Array) else pa.array(values, typ)
    return pa.table(columns)


def _either(f: Any, t: pa.Table) -> tuple[str, Any]:
    try:
        return "ok", f(t)
    except (ValueError, TypeError, OverflowError):
        return "error", None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_column_encoder_writes_the_reference_encoders_bytes(t: pa.Table) -> None:
    _same_as_reference(t)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables())
def test_column_encoder_writes_the_reference_encoders_bytes_5000_tables(t: pa.Table) -> None:
    _same_as_reference(t)


def _same_as_reference(t: pa.Table) -> None:
    mine, reference = _either(encode_jsonl, t), _either(encode_rows, t)
    assert mine[0] == reference[0], (mine, reference)
    if mine[0] == "ok":
        assert mine[1] == reference[1]
        assert _parsed(mine[1]) == _parsed(reference[1])
        # each row alone gives its own line (the job re-encodes row by row to find a bad one)
        for i, line in enumerate(mine[1].split(b"\n")[:-1]):
            assert encode_jsonl(t.slice(i, 1)) == line + b"\n"


def _parsed(text: bytes) -> list[Any]:
    """The rows of JSON Lines text: lines end at "\n" only (U+2028 or U+0085 inside a string are data)."""
    assert text.endswith(b"\n")
    return [json.loads(line) for line in text.split(b"\n")[:-1]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_floats_are_pythons_repr(values: list[float]) -> None:
    lines = encode_jsonl(pa.table({"x": pa.array(values, pa.float64())})).decode().splitlines()
    assert lines == [f'{{"x":{v!r}}}' for v in values]


def test_the_values_of_every_exported_type() -> None:
    t = pa.table({
        "i": pa.array([2**63 - 1, None], pa.int64()),
        "f": pa.array([2.0, None], pa.float64()),
        "b": pa.array([True, None]),
        "s": pa.array(['é"\n\\', None]),
        "raw": pa.array([b"\x00\xff", None]),
        "ts": pa.array([dt.datetime(2025, 1, 1, 0, 0, 37), dt.datetime(1, 1, 1, 0, 0, 0, 120)], pa.timestamp("us")),
        "d": pa.array([dt.date(2025, 3, 1), None], pa.date32()),
        "dec": pa.array([decimal.Decimal("1.98"), decimal.Decimal("2.00")], pa.decimal128(10, 2)),
        "tiny": pa.array([decimal.Decimal("0E-8"), decimal.Decimal("1E-8")], pa.decimal128(10, 8)),
        "n": pa.nulls(2),
    })
    text = encode_jsonl(t)
    assert text == encode_rows(t)
    assert text.decode().splitlines() == [
        '{"i":9223372036854775807,"f":2.0,"b":true,"s":"é\\"\\n\\\\","raw":"AP8=","ts":"2025-01-01T00:00:37",'
        '"d":"2025-03-01","dec":"1.98","tiny":"0E-8","n":null}',
        '{"i":null,"f":null,"b":null,"s":null,"raw":null,"ts":"0001-01-01T00:00:00.000120","d":null,'
        '"dec":"2.00","tiny":"1E-8","n":null}',
    ]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats_are_refused_like_the_reference(bad: float) -> None:
    t = pa.table({"x": pa.array([1.5, bad])})
    with pytest.raises(ValueError):
        encode_rows(t)
    with pytest.raises(ValueError):
        encode_jsonl(t)


def test_other_column_types_take_the_reference_path() -> None:
    t = pa.table({"when": pa.array([dt.datetime(2025, 1, 1, tzinfo=dt.UTC)], pa.timestamp("ms", "UTC")),
                  "t": pa.array([dt.time(1, 2, 3)], pa.time64("us"))})
    assert encode_jsonl(t) == encode_rows(t) == b'{"when":"2025-01-01T00:00:00+00:00","t":"01:02:03"}\n'


def test_gzip_is_one_standard_member_that_gzip_and_python_read(tmp_path: Path) -> None:
    text = b"".join(b'{"id":%d,"name":"row %d"}\n' % (i, i) for i in range(20_000))
    body = gzip_compress(text)
    assert body[:4] == b"\x1f\x8b\x08\x00" and body[4:8] == b"\0\0\0\0"  # deflate, no name, mtime 0
    assert gzip.decompress(body) == text and body == gzip_compress(text)
    path = tmp_path / "part.jsonl.gz"
    path.write_bytes(body)
    assert subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=True).stdout == text
    assert subprocess.run(["gzip", "-l", str(path)], capture_output=True, check=True).returncode == 0
    # one member: a decompressor stops exactly at the end of the stream
    import zlib
    d = zlib.decompressobj(wbits=31)
    assert d.decompress(body) == text and d.eof and d.unused_data == b""


def test_an_infinite_float_row_goes_to_the_dead_letter_queue_and_its_batch_mates_export(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL, ts DATETIME)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)",
                     [(i, float("inf") if i == 7 else i / 8, f"2025-01-02 03:04:{i % 60:02d}") for i in range(1, 21)])
    conn.commit()
    conn.close()
    s = MemoryStore()
    s.create_bucket("bkt")
    rep = export_table(str(db), "t", "s3://bkt/p", TransferConfig(max_attempts=1, backoff_base_s=0.0),
                       format="jsonl", store=s)
    assert rep.rows_exported == 19 and rep.rows_failed == 1
    body = next(o.body for k, o in s.buckets["bkt"].items() if k.endswith(".jsonl.gz"))
    rows = [json.loads(x) for x in gzip.decompress(bytes(body)).decode().splitlines()]
    assert [r["id"] for r in rows] == [i for i in range(1, 21) if i != 7]
    assert rows[0] == {"id": 1, "x": 0.125, "ts": "2025-01-02T03:04:01"}
    assert all(math.isfinite(r["x"]) for r in rows)


def test_serializer_output_is_the_reference_text_compressed() -> None:
    t = pa.table({"id": pa.array(range(1000), pa.int64()), "v": pa.array([i / 3 for i in range(1000)])})
    for comp in ("gzip", "zstd", "none"):
        body = make_serializer("jsonl", comp).serialize(t)
        if comp == "gzip":
            body = gzip.decompress(body)
        elif comp == "zstd":
            import zstandard
            body = zstandard.ZstdDecompressor().decompress(body)
        assert body == encode_rows(t)
