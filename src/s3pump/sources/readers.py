"""A table to export, opened through the reader of its source, each behind one interface (``TableSource``).

* SQLite (a path or ``sqlite:///path``): ``sqlite_table.py``'s reader; a batch whose values all have their
  declared storage class goes straight into Arrow through ADBC's SQLite driver (``sqlite_arrow.py``).
* PostgreSQL (``postgresql://``, ``postgres://``, or SQLAlchemy's ``postgresql+<driver>://``): ADBC's
  PostgreSQL driver, straight into Arrow (``postgres.py``, the ``postgres`` extra).
* Any other SQLAlchemy URL: ``sqlalchemy_table.py``'s reader.
"""

from __future__ import annotations

import threading

from .table import TableSource

__all__ = ["open_sql_table", "open_table"]


def open_table(db: str, table: str, cursor_column: str | None = None, *, lock_timeout_s: float | None = 300.0,
               stop: threading.Event | None = None) -> TableSource:
    """Open ``table`` of ``db`` (a SQLite file path, ``sqlite:///path``, ``postgresql://…`` (ADBC, the
    ``postgres`` extra) or any other SQLAlchemy URL).

    ``lock_timeout_s``: how long a SQLite read waits for another writer's lock (None: until
    ``stop`` is set, then the read returns no rows).

    Raises:
        SourceNotFoundError: the SQLite file does not exist.
        UsageError: no such table or column, no usable cursor, or SQLAlchemy (or the ``postgres``
            extra) missing for a URL.
        SourceUnreadableError: the database cannot be opened.
    """
    from .postgres import is_postgres_url  # ADBC's driver is loaded only when asked for

    if is_postgres_url(db):
        from .postgres import PostgresTable

        return PostgresTable(db, table, cursor_column)
    return open_sql_table(db, table, cursor_column, lock_timeout_s=lock_timeout_s, stop=stop)


def open_sql_table(db: str, table: str, cursor_column: str | None = None, *, lock_timeout_s: float | None = 300.0,
                   stop: threading.Event | None = None) -> TableSource:
    """Open ``table`` of ``db``: a SQLite file path or ``sqlite:///path``, or any other SQLAlchemy URL
    (``sources/readers.py``'s ``open_table`` sends ``postgresql://`` to ADBC's reader instead).

    ``lock_timeout_s``: how long a SQLite read waits for another writer's lock (None: until
    ``stop`` is set, then the read returns no rows).

    Raises:
        SourceNotFoundError: the SQLite file does not exist.
        UsageError: no such table or column, no usable cursor, or SQLAlchemy missing for a URL.
        SourceUnreadableError: the database cannot be opened.
    """
    from .sqlalchemy_table import SqlAlchemyTable
    from .sqlite_table import SqliteTable

    if db.startswith("sqlite:///"):
        return SqliteTable(db[len("sqlite:///"):], table, cursor_column, lock_timeout_s, stop)
    if "://" in db:
        return SqlAlchemyTable(db, table, cursor_column)
    return SqliteTable(db, table, cursor_column, lock_timeout_s, stop)
