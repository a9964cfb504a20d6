"""``export/iceberg_reads.py``: the guess that a table is new (from the SQLite catalog's file alone), and the
batches read ahead on their own thread (in order, bounded, ended by a short batch, errors raised to the reader)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from s3pump.export.iceberg_reads import ReadAhead, table_is_new


def test_a_table_is_new_only_when_the_sqlite_catalog_certainly_has_no_row_for_it(tmp_path: Path) -> None:
    pytest.importorskip("pyiceberg")
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    uri = f"sqlite:///{tmp_path}/c.db"
    assert table_is_new(uri, "s3pump", "T")  # no file: no table
    catalog = SqlCatalog("s3pump", uri=uri, warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("s3pump")
    assert table_is_new(uri, "s3pump", "T")  # the catalog, without the table
    catalog.create_table(("s3pump", "T"), schema=Schema(NestedField(1, "id", LongType(), required=False)))
    assert not table_is_new(uri, "s3pump", "T")
    assert table_is_new(uri, "s3pump", "Other")
    assert table_is_new(uri, "other", "T")  # another namespace's table of that name is not this one
    (tmp_path / "junk.db").write_bytes(b"not sqlite at all" * 100)
    assert not table_is_new(f"sqlite:///{tmp_path}/junk.db", "s3pump", "T")  # unreadable: no guess
    sqlite3.connect(tmp_path / "empty.db").close()
    assert not table_is_new(f"sqlite:///{tmp_path}/empty.db", "s3pump", "T")  # no iceberg_tables: no guess
    for other in ("postgresql://u@h/db", "https://rest.example/catalog", "sqlite://", "sqlite:///:memory:"):
        assert not table_is_new(other, "s3pump", "T")


class _Batch:
    def __init__(self, first: int, count: int) -> None:
        self.first, self.count, self.last = first, count, first + count - 1


class _Converted:
    nbytes = 10


def _source(total: int, batch_rows: int, calls: list[Any], fail_at: int | None = None) -> Any:
    def read(after: Any) -> tuple[Any, Any]:
        calls.append(after)
        start = 1 if after is None else after + 1
        if fail_at is not None and start >= fail_at:
            raise OSError("disk gone")
        count = max(0, min(batch_rows, total - start + 1))
        return (_Batch(start, count), (_Converted(),)) if count else (None, None)
    return read


def test_batches_come_in_cursor_order_and_reading_ends_after_a_short_batch() -> None:
    calls: list[Any] = []
    reads = ReadAhead(_source(25, 10, calls), None, 10)
    got = []
    while (item := reads.take()) is not None:
        got.append((item[0].first, item[0].count) if item[0] is not None else None)
    assert got == [(1, 10), (11, 10), (21, 5)]
    assert calls == [None, 10, 20]  # nothing read past the short batch
    assert reads.take() is None
    reads.close()


def test_an_exact_multiple_ends_with_the_empty_read_and_a_read_error_reaches_take() -> None:
    calls: list[Any] = []
    reads = ReadAhead(_source(20, 10, calls), None, 10)
    assert [reads.take()[0] is not None for _ in range(3)] == [True, True, False]
    assert reads.take() is None
    reads = ReadAhead(_source(100, 10, [], fail_at=21), None, 10)
    reads.take(), reads.take()
    with pytest.raises(OSError, match="disk gone"):
        reads.take()
    assert reads.take() is None


def test_reading_ahead_is_bounded_and_close_stops_it() -> None:
    calls: list[Any] = []
    reads = ReadAhead(_source(10_000, 10, calls), None, 10, max_batches=3)
    deadline = time.monotonic() + 5
    while len(calls) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert len(calls) == 4  # three waiting to be taken, the fourth read and held until there is room
    reads.limit(1)
    reads.take()
    time.sleep(0.2)
    assert len(calls) == 4  # still two ahead: no room under the new limit
    reads.close()
    assert not any(t.name == "s3pump-export-read" and t.is_alive() for t in threading.enumerate())
