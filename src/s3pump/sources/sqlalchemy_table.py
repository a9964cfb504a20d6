"""Any other SQLAlchemy URL (``mysql+pymysql://…``) as an export's source (:class:`SqlAlchemyTable`), with the ``sql``
extra (``pip install 's3pump[sql]'``): the batches, cursor and types are :mod:`.table`'s, each query SQLAlchemy
Core's.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..errors import SourceUnreadableError, UsageError
from .sqlite_types import infer_untyped, is_untyped
from .table import Column, TableSource, arrow_type_for, pick_cursor, redact_url

__all__ = ["SqlAlchemyTable"]


class SqlAlchemyTable(TableSource):
    def __init__(self, url: str, table: str, cursor_column: str | None) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise UsageError(f"{redact_url(url)}: database URLs need SQLAlchemy; pip install 's3pump[sql]' "
                             "(SQLite file paths work without it)") from None
        self._sa = sa
        try:
            self.engine = sa.create_engine(url)
            meta = sa.MetaData()
            self.t = sa.Table(table, meta, autoload_with=self.engine)
        except sa.exc.NoSuchTableError:
            raise UsageError(f"{redact_url(url)}: no table named {table!r}") from None
        except (sa.exc.SQLAlchemyError, ImportError) as e:
            raise SourceUnreadableError(f"{redact_url(url)}: cannot open database ({type(e).__name__}: "
                                        f"{str(e).splitlines()[0]})") from None
        pk_names = [c.name for c in self.t.primary_key.columns]
        declared = {c.name: "" if isinstance(c.type, sa.types.NullType) else str(c.type) for c in self.t.columns}
        columns = [
            Column(c.name, declared[c.name], arrow_type_for(declared[c.name]),
                   bool(c.nullable) and not c.primary_key, pk_names.index(c.name) + 1 if c.name in pk_names else 0)
            for c in self.t.columns
        ]
        self.url, self.table = redact_url(url), table  # (for _execute's messages before TableSource's init)
        self.conn = self.engine.connect()
        try:
            if self.engine.dialect.name == "sqlite" and any(is_untyped(c.declared_type) for c in columns):
                # computed and untyped columns: typed by their values (sources/sqlite_types.py)
                prep = self.engine.dialect.identifier_preparer
                columns = infer_untyped(columns, prep.quote(self.t.name), prep.quote,
                                        lambda sql: self._execute(sa.text(sql)))
            cursor = pick_cursor(self.url, table, columns, cursor_column)
        except Exception:
            self.close()
            raise
        super().__init__(self.url, table, columns, cursor)
        # the driver's values as they are, converted by the export's exact rules (export/rows.py), never
        # by SQLAlchemy's result processors: its Boolean makes any text true (bool('false')), its SQLite
        # DATETIME and NUMERIC raise a traceback on an integer or a text
        self._raw = [sa.type_coerce(c, sa.types.NullType()).label(c.name) for c in self.t.columns]
        self._cursor_raw = sa.type_coerce(self.t.c[self.cursor.name], sa.types.NullType())  # raw bounds too

    def _fetch(self, low: Any, high: Any, limit: int | None, inclusive: bool = False) -> list[Any]:
        c = self._cursor_raw
        q = self._sa.select(*self._raw).order_by(c)
        if inclusive:
            q = q.where(c >= low, c <= high)
        elif low is not None:
            q = q.where(c > low)
        if limit is not None:
            q = q.limit(limit)
        return self._execute(q)

    def _fetch_equal(self, value: Any) -> list[Any]:
        return self._execute(self._sa.select(*self._raw).where(self._cursor_raw == value))

    def _fetch_upto(self, after: Any, last: Any) -> list[Any]:
        c = self._cursor_raw
        q = self._sa.select(*self._raw).where(c <= last).order_by(c)
        if after is not None:
            q = q.where(c > after)
        return self._execute(q)

    def _count_null(self) -> int:
        sa = self._sa
        rows = self._execute(sa.select(sa.func.count()).select_from(self.t)
                             .where(self._cursor_raw.is_(None)))
        return int(rows[0][0])

    def _cursor_nth(self, after: Any, offset: int) -> Any:
        c = self._cursor_raw
        q = self._sa.select(c).where(c.is_not(None) if after is None else c > after).order_by(c)
        rows = self._execute(q.offset(offset).limit(1))
        return rows[0][0] if rows else None

    def count_after(self, after: Any) -> int | None:
        c = self._cursor_raw
        q = self._sa.select(self._sa.func.count()).select_from(self.t).where(c.is_not(None) if after is None
                                                                              else c > after)
        return int(self._execute(q)[0][0])

    def _cursor_max(self, after: Any) -> Any:
        c = self._cursor_raw
        q = self._sa.select(self._sa.func.max(c))
        rows = self._execute(q if after is None else q.where(c > after))
        return rows[0][0] if rows else None

    def _execute(self, q: Any) -> list[Any]:
        try:
            result = self.conn.execute(q).fetchall()
            self.conn.commit()  # end the read transaction, so follow mode sees new rows
        except self._sa.exc.SQLAlchemyError as e:
            raise SourceUnreadableError(f"{self.url}: reading {self.table} failed "
                                        f"({str(e).splitlines()[0]})") from None
        return [tuple(r) for r in result]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        self.engine.dispose()


