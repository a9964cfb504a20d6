"""SQLite batches straight into Arrow columns, without Python row tuples (ADBC's SQLite driver).

The ``sqlite3`` module builds a Python tuple per row and an object per value, holding the GIL,
and the export then converts them to Arrow: about 3.6 µs of CPU per row of the benchmark table,
the largest step of an export (docs/benchmarks.md). ``adbc_driver_sqlite`` reads the same query
into Arrow arrays in C with the GIL released, about 1.2 µs per row.

SQLite is dynamically typed and ADBC infers each column's Arrow type from the values it meets
(mixing types turns a column into text, e.g. ``2.000000e+03`` for a REAL). So a batch is taken
this way only when every value has the storage class its declared type implies: INTEGER or NULL
in an ``int64`` column, REAL or NULL in ``float64`` (an INTEGER stored in a NUMERIC column is
not), TEXT or NULL in ``string`` and ``timestamp`` columns, and the text valid UTF-8. The batch's
values are then exactly the ones the ``sqlite3`` reader returns, and Arrow gets them converted as
:func:`s3pump.export.rows.to_arrow` converts those. Any other batch (another storage class,
invalid UTF-8, a run of equal cursor values at the end, a locked database, a type this reader
does not take) is read by the ``sqlite3`` reader instead, row by row as before: the caller gets
None.

How the storage classes are checked, at the least cost (the check once took half the read's CPU):

* ADBC infers a column's type from the first ``adbc.sqlite.query.batch_rows`` rows and fails on
  a later value of another type. That option is set to the batch's size, so ADBC sees the whole
  batch: a REAL or TEXT value among INTEGERs makes the column ``double`` or ``string``, a BLOB
  among TEXT makes it ``binary``, and either is refused here (it is not the type expected).
* What ADBC converts silently is the rest: an INTEGER among REALs (to ``double``), an INTEGER or
  REAL among TEXT (to ``string``). The column's affinity rules these out where it converts such
  values on storage (sqlite.org, "Datatypes In SQLite", 3.1-3.2): REAL affinity stores integers
  as REAL, TEXT affinity stores numbers as TEXT. Only the other columns (a ``NUMERIC`` float, a
  ``DATETIME`` timestamp) are checked with ``typeof`` in the same statement (one snapshot).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["ArrowBatchReader", "ArrowRows", "affinity"]

#: The storage class (``typeof``) each Arrow type of the declared schema takes here; ADBC reads
#: it as the same Arrow type, but a timestamp (text).
_STORAGE = {pa.int64(): "integer", pa.float64(): "real", pa.string(): "text"}


def _storage_of(typ: pa.DataType) -> str | None:
    if pa.types.is_timestamp(typ) and typ.tz is None:
        return "text"
    return _STORAGE.get(typ)


def _adbc_type(storage: str) -> pa.DataType:
    return {"integer": pa.int64(), "real": pa.float64()}.get(storage, pa.string())


def affinity(declared: str) -> str:
    """SQLite's type affinity of a declared column type: ``INTEGER``, ``TEXT``, ``BLOB``, ``REAL`` or
    ``NUMERIC`` (sqlite.org, "Datatypes In SQLite", 3.1: the first rule that matches)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if "BLOB" in t or not t.strip():
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"


def _needs_typeof(storage: str, declared: str) -> bool:
    """Whether a column can hold a value ADBC would convert silently (module docstring)."""
    if storage == "integer":
        return False  # ADBC refuses or retypes any other value among INTEGERs
    return affinity(declared) != {"real": "REAL", "text": "TEXT"}[storage]


class ArrowRows(Sequence[tuple[Any, ...]]):
    """The rows of an Arrow-read batch as the ``sqlite3`` reader returns them (tuples of int, float,
    str, None), built only if a step needs Python rows (a row the format cannot encode)."""

    def __init__(self, raw: pa.Table) -> None:
        self._raw = raw
        self._rows: list[tuple[Any, ...]] | None = None

    def _get(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self._rows = list(zip(*(c.to_pylist() for c in self._raw.columns), strict=True))
        return self._rows

    def __len__(self) -> int:
        return self._raw.num_rows

    def __getitem__(self, i: Any) -> Any:
        return self._get()[i]


class ArrowBatchReader:
    """Reads ``limit`` rows after a cursor value into Arrow, for one table of one SQLite file.

    ``schema``: the declared schema, in table order; ``declared``: the columns' declared SQL types;
    ``quote`` quotes an identifier; ``lock``: held around each statement (the ``sqlite3`` reader's,
    so that close() waits for a read in flight). Use :meth:`supported` first.
    """

    def __init__(self, path: str, table: str, schema: pa.Schema, declared: Sequence[str], cursor_index: int,
                 quote: Callable[[str], str], lock: threading.Lock) -> None:
        self.path = path
        self.schema = schema
        self.columns = [(f.name, f.type) for f in schema]
        self.cursor_index = cursor_index
        self._lock = lock
        self._conn: Any = None
        names = [quote(n) for n, _ in self.columns]
        storage = [_storage_of(t) or "" for _, t in self.columns]
        self._adbc_types = [_adbc_type(s) for s in storage]
        checks = [f"typeof({q}) IN ('{s}', 'null')" for q, s, d in zip(names, storage, declared, strict=True)
                  if _needs_typeof(s, d)]
        self._checked = bool(checks)
        c = names[cursor_index]
        ok = f", ({' AND '.join(checks)}) AS s3pump_ok" if checks else ""
        select = f"SELECT {', '.join(names)}{ok} FROM {quote(table)}"
        self._sql_first = f"{select} ORDER BY {c} LIMIT ?"
        self._sql_after = f"{select} WHERE {c} > ? ORDER BY {c} LIMIT ?"
        self._sql_ties = f"SELECT COUNT(*) FROM {quote(table)} WHERE {c} = ?"

    @staticmethod
    def supported(types: Sequence[pa.DataType]) -> bool:
        """Every column of a type this reader takes, and ``adbc_driver_sqlite`` installed."""
        if not all(_storage_of(t) is not None for t in types):
            return False
        try:
            import adbc_driver_sqlite.dbapi  # noqa: F401
        except ImportError:
            return False
        return True

    def read_after(self, after: Any, limit: int, convert: Callable[[pa.Array, pa.DataType], pa.Array]
                   ) -> tuple[pa.Table, pa.Table] | None:
        """(raw, converted): the rows after ``after`` as read (cursor values and Python rows come from
        ``raw``) and converted to the declared types by ``convert``; an empty pair at the end of the
        table. None: read this batch with the ``sqlite3`` reader."""
        sql, params = (self._sql_first, (limit,)) if after is None else (self._sql_after, (after, limit))
        try:
            with self._lock:
                if self._conn is None:
                    import adbc_driver_sqlite.dbapi as adbc

                    self._conn = adbc.connect(f"file:{self.path}?mode=ro", autocommit=True)
                with self._conn.cursor() as cur:
                    # ADBC infers each column's type from the whole batch (module docstring)
                    cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(max(limit, 1))})
                    cur.execute(sql, params)
                    table = cur.fetch_arrow_table()
                    if table.num_rows == limit and limit > 0:  # a run of equal cursor values may go on
                        cur.execute(self._sql_ties, (table.column(self.cursor_index)[-1].as_py(),))
                        if cur.fetchone()[0] > 1:
                            return None
        except Exception:  # locked, busy, a type ADBC refuses mid-batch: the sqlite3 reader decides
            return None
        if table.num_rows == 0:  # the end (ADBC types an empty answer's columns int64)
            return self.schema.empty_table(), self.schema.empty_table()
        raw = table
        if self._checked:
            ok = table.column(len(self.columns))
            if not (ok.null_count == 0 and pc.all(ok.cast(pa.bool_())).as_py()):
                return None
            raw = table.drop_columns(["s3pump_ok"])
        arrays = []
        for (_, typ), expected, col in zip(self.columns, self._adbc_types, raw.columns, strict=True):
            kind = col.type
            if pa.types.is_null(kind):  # every value NULL (or no rows): ADBC had nothing to infer from
                col = pa.chunked_array([pa.nulls(len(col), expected)])
            elif kind != expected:
                return None
            if pa.types.is_string(col.type):
                try:
                    col.validate(full=True)  # SQLite keeps any bytes as TEXT: invalid UTF-8 is a bad row
                except pa.ArrowInvalid:
                    return None
            try:
                arrays.append(convert(col.combine_chunks(), typ))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, ValueError, TypeError,
                    OverflowError):
                return None  # the row reader finds the bad rows and keeps their batch-mates
        return raw, pa.Table.from_arrays(arrays, schema=self.schema)

    def close(self) -> None:
        """Close the ADBC connection (the caller holds the lock)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
