"""Issue 15: SQLite batches read straight into Arrow (ADBC) are exactly the batches of the sqlite3 reader
and ``to_arrow``, or are left to them; SQLite's dynamic typing must never change a value."""

from __future__ import annotations

import decimal
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from s3pump.export.rows import to_array_from_arrow, to_arrow
from s3pump.sources.readers import open_table

DECLARED = ["INTEGER", "REAL", "TEXT", "DATETIME", "VARCHAR(20)", "NUMERIC", "DOUBLE", "BIGINT", "TIMESTAMP",
            "DECIMAL(10,2)", "BLOB", "BOOLEAN", "DATE", ""]

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_STAMP = st.datetimes().map(lambda d: d.isoformat(sep=" "))
#: What a column may hold, whatever its declared type (SQLite converts some on storage by affinity).
_VALUE = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False), _TEXT, _STAMP,
                   st.binary(max_size=4), st.just(("bad-utf8",)))


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[list[Any]]]:
    declared = draw(st.lists(st.sampled_from(DECLARED), min_size=1, max_size=4))
    # most columns hold what their type says, now and then something else
    typical = {"INTEGER": st.integers(-2**63, 2**63 - 1), "BIGINT": st.integers(-10**6, 10**6),
               "REAL": st.floats(allow_nan=False), "DOUBLE": st.floats(-1e6, 1e6), "NUMERIC": st.floats(-1e3, 1e3),
               "TEXT": _TEXT, "VARCHAR(20)": _TEXT, "DATETIME": _STAMP, "TIMESTAMP": _STAMP,
               "DECIMAL(10,2)": st.integers(-999, 999), "BLOB": st.binary(max_size=4),
               "BOOLEAN": st.integers(0, 1), "DATE": st.dates().map(str), "": st.integers(-10**6, 10**6)}
    rows = []
    for _ in range(draw(st.integers(0, 40))):
        rows.append([draw(st.one_of(st.none(), typical[d]) if draw(st.integers(0, 15)) else _VALUE)
                     for d in declared])
    return declared, rows


def _db(declared: list[str], rows: list[list[Any]]) -> str:
    path = os.path.join(tempfile.mkdtemp(), "t.db")
    conn = sqlite3.connect(path)
    cols = ", ".join(f"c{i} {d}" for i, d in enumerate(declared))
    conn.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {cols})")
    marks = ", ".join("?" for _ in declared)
    for n, row in enumerate(rows, 1):
        values = [None if v == ("bad-utf8",) else v for v in row]
        conn.execute(f"INSERT INTO t VALUES (?, {marks})", [n, *values])
        for i, v in enumerate(row):  # invalid UTF-8 stored as TEXT, which SQLite allows
            if v == ("bad-utf8",):
                conn.execute(f"UPDATE t SET c{i} = CAST(x'ff61' AS TEXT) WHERE id = ?", (n,))
    conn.commit()
    conn.close()
    return path


def _exact(value: Any, source: Any) -> bool:
    """Whether an exported value is the source value unchanged (issue 25): a number of the same value
    (an integral REAL may become its integer), a boolean only from 0/1/true/false, text as it is."""
    if value is None or source is None:
        return value is None and source is None
    if isinstance(value, bool):
        return (source in (0, 1) and not isinstance(source, str) and bool(source) == value) or \
            (isinstance(source, str) and source.lower() == str(value).lower())
    if isinstance(value, int | float) and not isinstance(source, int | float):
        return False
    if isinstance(value, int | float):
        return decimal.Decimal(value) == decimal.Decimal(source)
    return True  # text, bytes, times and decimals: compared by the readers' equality below


def _check_exact(rows: list[tuple[Any, ...]], table: pa.Table, positions: list[int]) -> None:
    for i, row in enumerate(table.to_pylist()):
        source = rows[positions[i]]
        for (name, value), raw in zip(row.items(), source, strict=True):
            assert _exact(value, raw), (name, value, raw)


def _sqlalchemy_equals_rows(path: str, limit: int) -> None:
    """The SQLAlchemy reader (``sqlite+pysqlite:///``) reads the row reader's batches: the same values,
    the same schema, the same converted table and bad rows (issue 25)."""
    row_src, sa_src = open_table(path, "t"), open_table(f"sqlite+pysqlite:///{path}", "t")
    after = None
    try:
        assert sa_src.schema == row_src.schema
        while True:
            batch, other = row_src.read_after(after, limit), sa_src.read_after(after, limit)
            if batch is None:
                assert other is None
                return
            assert other is not None and list(other.rows) == list(batch.rows)
            assert (other.first, other.last) == (batch.first, batch.last)
            expected = to_arrow(batch.rows, row_src.schema, row_src.cursor_index)
            got = to_arrow(other.rows, sa_src.schema, sa_src.cursor_index)
            assert got[0].equals(expected[0]) and got[1] == expected[1] and got[2] == expected[2]
            _check_exact(list(batch.rows), got[0], got[1])
            after = batch.last
    finally:
        row_src.close()
        sa_src.close()


def _both(path: str, limit: int) -> tuple[int, int]:
    """Read the table both ways, batch by batch; every Arrow batch must equal the row reader's."""
    arrow_src, row_src = open_table(path, "t"), open_table(path, "t")
    taken = left = 0
    after = None
    try:
        while True:
            got = arrow_src.read_arrow_after(after, limit, to_array_from_arrow)
            batch = row_src.read_after(after, limit)
            if got is None:
                left += 1
            else:
                taken += 1
                fast, table = got
                if batch is None:
                    assert fast is None and table is None
                else:
                    assert fast is not None and table is not None
                    expected, positions, bad = to_arrow(batch.rows, row_src.schema, row_src.cursor_index)
                    if bad or batch.bad:
                        raise AssertionError(f"the Arrow reader took a batch with bad rows: {bad or batch.bad}")
                    assert (fast.first, fast.last) == (batch.first, batch.last)
                    assert list(fast.rows) == list(batch.rows) and positions == list(range(len(batch.rows)))
                    assert table.equals(expected, check_metadata=True), (table, expected)
            if batch is None:
                return taken, left
            after = batch.last
    finally:
        arrow_src.close()
        row_src.close()


@settings(max_examples=int(os.environ.get("S3PUMP_ARROW_EXAMPLES", "150")), deadline=None)
@given(_tables(), st.sampled_from([3, 7, 100]))
@example((["DATETIME"], [[-62_135_596_801]]), 3)  # before year 1: a bad row (was exported as 0000-12-31)
@example((["DATE", "TIMESTAMP"], [["0000-12-31", "9999-12-31 23:59:59.999999"], [-62_135_596_800, 253_402_300_800]]), 7)
def test_an_arrow_batch_is_exactly_the_row_readers_batch(table: tuple[list[str], list[list[Any]]],
                                                       limit: int) -> None:
    path = _db(*table)
    _both(path, limit)
    if not any(v == ("bad-utf8",) for row in table[1] for v in row):  # (pysqlite cannot decode those)
        _sqlalchemy_equals_rows(path, limit)


def test_the_arrow_reader_takes_plain_tables_and_leaves_the_others(tmp_path: Path) -> None:
    path = str(tmp_path / "d.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, ts DATETIME, name TEXT, amount REAL, qty INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                     [(i, f"2025-01-0{1 + i % 3} 10:00:0{i % 10}", f"n{i}" if i % 4 else None, i / 3, i)
                      for i in range(1, 251)])
    conn.commit()
    assert _both(path, 100) == (4, 0)  # three batches and the end, all straight into Arrow
    conn.execute("UPDATE t SET qty = 'many' WHERE id = 150")  # a TEXT value in an INTEGER column
    conn.execute("UPDATE t SET name = CAST(x'ff' AS TEXT) WHERE id = 220")  # invalid UTF-8
    conn.commit()
    assert _both(path, 100) == (2, 2)  # batches 2 and 3 go to the row reader, which finds the bad rows
    src = open_table(path, "t")
    rows_batch = src.read_after(100, 100)
    assert rows_batch is not None and len(rows_batch.rows) == 100  # the row reader keeps it whole
    assert to_arrow(rows_batch.rows, src.schema, src.cursor_index)[2][0].cursor == 150
    src.close()


def test_a_table_with_types_the_arrow_reader_does_not_take_is_read_by_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "d.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, price DECIMAL(10,2), raw BLOB, day DATE)")
    conn.execute("INSERT INTO t VALUES (1, 1.5, x'00', '2025-01-01')")
    conn.commit()
    src = open_table(path, "t")
    assert src.read_arrow_after(None, 10, to_array_from_arrow) is None
    src.close()
    assert pa.types.is_decimal(src.schema.field("price").type)


def test_a_value_of_another_class_deep_in_a_large_batch_is_never_converted(tmp_path: Path) -> None:
    """ADBC infers a column's type from its first rows (1,024 by default) and converts some later
    values silently (a BLOB among TEXT becomes text): the reader makes it see the whole batch, and
    checks with ``typeof`` the columns whose affinity does not rule the rest out."""
    path = str(tmp_path / "d.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC, ts DATETIME, x REAL)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                     [(i, f"n{i}", i + 0.5, "2025-01-01 10:00:00", i / 4) for i in range(1, 5001)])
    conn.commit()
    assert _both(path, 5000) == (2, 0)
    odd = [("name", "x'6162'"), ("amount", "7"), ("ts", "20250101"), ("x", "'many'"), ("name", "x'ff'")]
    for column, value in odd:
        conn.execute(f"UPDATE t SET {column} = {value} WHERE id = 3000")
        conn.commit()
        taken, left = _both(path, 5000)
        assert (taken, left) == (1, 1), (column, value)  # the batch goes to the row reader; the end does not
        conn.execute("UPDATE t SET name = 'n3000', amount = 3000.5, ts = '2025-01-01 10:00:00', x = 750.0 "
                     "WHERE id = 3000")
        conn.commit()
    assert _both(path, 5000) == (2, 0)
    conn.close()
