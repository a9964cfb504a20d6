"""The default Iceberg catalog: a local SQLite file in the SQL catalog's layout, through the stdlib ``sqlite3``.

The file is the one pyiceberg's ``SqlCatalog`` (``uri="sqlite:///PATH"``) and Iceberg Java's ``JdbcCatalog``
read and write: table ``iceberg_tables`` (one row per table: ``catalog_name``, ``table_namespace``,
``table_name``, ``metadata_location``, ``previous_metadata_location``, ``iceberg_type``) and table
``iceberg_namespace_properties``, created with the same DDL (pyiceberg 0.12, ``pyiceberg/catalog/sql.py``; Iceberg
Java, ``JdbcUtil``). A commit is the SQL catalog's compare-and-swap: ``UPDATE iceberg_tables SET
metadata_location = new WHERE ... AND metadata_location = old``, refused (``CommitFailedException``) when another
writer committed first. Either class may open a file the other wrote.

Why not ``SqlCatalog`` itself: its import (SQLAlchemy's core and ORM) costs about 0.3 CPU-s per run, a third of
what an Iceberg export costs over a plain one on a short run (docs/benchmarks.md). Only what the export uses is
here; any other operation (renames, views, namespace properties) raises ``NotImplementedError`` naming
``SqlCatalog``, which opens the same file. ``--catalog-uri`` with another SQL database still uses ``SqlCatalog``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyiceberg.catalog import Catalog, MetastoreCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.io import load_file_io
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import CommitTableResponse, Table, TableProperties
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.typedef import EMPTY_DICT

__all__ = ["SqliteCatalog"]

#: the SQL catalog's tables, as pyiceberg's SqlCatalog (SQLAlchemy) creates them in SQLite (schema "v1")
_DDL = (
    "CREATE TABLE IF NOT EXISTS iceberg_tables (\n\tcatalog_name VARCHAR(255) NOT NULL, \n\ttable_namespace "
    "VARCHAR(255) NOT NULL, \n\ttable_name VARCHAR(255) NOT NULL, \n\tmetadata_location VARCHAR(1000), "
    "\n\tprevious_metadata_location VARCHAR(1000), \n\ticeberg_type VARCHAR(5), \n\tPRIMARY KEY (catalog_name, "
    "table_namespace, table_name)\n)",
    "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (\n\tcatalog_name VARCHAR(255) NOT NULL, "
    "\n\tnamespace VARCHAR(255) NOT NULL, \n\tproperty_key VARCHAR(255) NOT NULL, \n\tproperty_value VARCHAR(1000) "
    "NOT NULL, \n\tPRIMARY KEY (catalog_name, namespace, property_key)\n)",
)
_TABLE_TYPE = "TABLE"
#: how long a statement waits for another writer's lock on the file (SQLite's busy timeout)
LOCK_TIMEOUT_S = 30.0


class SqliteCatalog(MetastoreCatalog):
    """An Iceberg SQL catalog in the SQLite file ``path`` (created with its tables if absent).

    Args:
        name: the catalog's name (its rows' ``catalog_name``).
        path: the SQLite file.
        properties: catalog properties (``warehouse``, the FileIO's, as for any pyiceberg catalog).

    Raises:
        sqlite3.Error: the file cannot be opened or is no SQLite database.
    """

    def __init__(self, name: str, path: str, **properties: str) -> None:
        super().__init__(name, **properties)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        with self._write() as conn:
            for ddl in _DDL:
                conn.execute(ddl)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(iceberg_tables)")}
        self._typed = "iceberg_type" in columns  # a "v0" file (no iceberg_type) is used as it is, not migrated

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: the file's write lock from the start), committed at the end
        of the block, rolled back on an error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _type_filter(self) -> str:  # table rows only (iceberg-java and iceberg-rust keep views here too)
        return f" AND (iceberg_type = '{_TABLE_TYPE}' OR iceberg_type IS NULL)" if self._typed else ""

    @staticmethod
    def _names(identifier: str | tuple[str, ...]) -> tuple[str, str]:
        return (Catalog.namespace_to_string(Catalog.namespace_from(identifier)), Catalog.table_name_from(identifier))

    def _insert_table(self, conn: sqlite3.Connection, namespace: str, table: str, metadata_location: str) -> None:
        columns, values = ("catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location",
                           [self.name, namespace, table, metadata_location, None])
        if self._typed:
            columns, values = columns + ", iceberg_type", [*values, _TABLE_TYPE]
        try:
            conn.execute(f"INSERT INTO iceberg_tables ({columns}) VALUES ({', '.join('?' * len(values))})", values)
        except sqlite3.IntegrityError as e:
            raise TableAlreadyExistsError(f"Table {namespace}.{table} already exists") from e

    # ------------------------------------------------------------------ tables
    def load_table(self, identifier: str | tuple[str, ...]) -> Table:
        """The table's current metadata (read through the FileIO).

        Raises:
            NoSuchTableError: no such table in this catalog.
        """
        namespace, table = self._names(identifier)
        rows = self._query("SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND "
                           "table_namespace = ? AND table_name = ?" + self._type_filter(),
                           (self.name, namespace, table))
        if not rows or not rows[0][0]:
            raise NoSuchTableError(f"Table does not exist: {namespace}.{table}")
        location = rows[0][0]
        metadata = FromInputFile.table_metadata(load_file_io(self.properties, location).new_input(location))
        return Table(identifier=(*Catalog.identifier_to_tuple(namespace), table), metadata=metadata,
                     metadata_location=location, io=self._load_file_io(metadata.properties, location), catalog=self)

    def create_table(self, identifier: str | tuple[str, ...], schema: Any, location: str | None = None,
                     partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
                     sort_order: SortOrder = UNSORTED_SORT_ORDER, properties: dict[str, str] = EMPTY_DICT) -> Table:
        """A new table: its first metadata file written, then its row inserted.

        Raises:
            NoSuchNamespaceError: no such namespace. TableAlreadyExistsError: the table exists.
        """
        version = int(properties.get(TableProperties.FORMAT_VERSION, TableProperties.DEFAULT_FORMAT_VERSION))
        schema = self._convert_schema_if_needed(schema, version)  # type: ignore[arg-type]
        namespace, table = self._names(identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        location = self._resolve_table_location(location, namespace, table)
        metadata_location = load_location_provider(location, properties).new_table_metadata_file_location()
        metadata = new_table_metadata(location=location, schema=schema, partition_spec=partition_spec,
                                      sort_order=sort_order, properties=properties)
        self._write_metadata(metadata, load_file_io(self.properties, metadata_location), metadata_location)
        with self._write() as conn:
            self._insert_table(conn, namespace, table, metadata_location)
        return self.load_table(identifier)

    def commit_table(self, table: Table, requirements: tuple[Any, ...],
                     updates: tuple[Any, ...]) -> CommitTableResponse:
        """Apply ``updates`` if ``requirements`` hold: the new metadata file written, then the table's row swapped
        from the metadata it was staged on to the new one (the SQL catalog's compare-and-swap).

        Raises:
            CommitFailedException: a requirement does not hold, or another writer committed first.
        """
        namespace, name = self._names(table.name())
        try:
            current: Table | None = self.load_table(table.name())
        except NoSuchTableError:
            current = None
        staged = self._update_and_stage_table(current, table.name(), requirements, updates)
        if current is not None and staged.metadata == current.metadata:
            return CommitTableResponse(metadata=current.metadata,
                                       metadata_location=current.metadata_location)  # type: ignore[call-arg]
        self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
        with self._write() as conn:
            if current is None:
                self._insert_table(conn, namespace, name, staged.metadata_location)
            elif conn.execute("UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? "
                              "WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND "
                              "metadata_location = ?", (staged.metadata_location, current.metadata_location, self.name,
                                                        namespace, name, current.metadata_location)).rowcount < 1:
                raise CommitFailedException(f"Table has been updated by another process: {namespace}.{name}")
        return CommitTableResponse(metadata=staged.metadata,
                                   metadata_location=staged.metadata_location)  # type: ignore[call-arg]

    def register_table(self, identifier: str | tuple[str, ...], metadata_location: str,
                       overwrite: bool = False) -> Table:
        """A table of an existing metadata file (another catalog's table, adopted).

        Raises:
            NotImplementedError: ``overwrite``. NoSuchNamespaceError, TableAlreadyExistsError.
        """
        if overwrite:
            raise NotImplementedError("`overwrite` isn't supported")
        namespace, table = self._names(identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        with self._write() as conn:
            self._insert_table(conn, namespace, table, metadata_location)
        return self.load_table(identifier)

    def drop_table(self, identifier: str | tuple[str, ...]) -> None:
        """Forget the table (its files stay).

        Raises:
            NoSuchTableError: no such table.
        """
        namespace, table = self._names(identifier)
        with self._write() as conn:
            if conn.execute("DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND "
                            "table_name = ?" + self._type_filter(), (self.name, namespace, table)).rowcount < 1:
                raise NoSuchTableError(f"Table does not exist: {namespace}.{table}")

    def list_tables(self, namespace: str | tuple[str, ...]) -> list[tuple[str, ...]]:
        """The tables of ``namespace``.

        Raises:
            NoSuchNamespaceError: no such namespace.
        """
        if namespace and not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        ns = Catalog.namespace_to_string(namespace)
        rows = self._query("SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = ? AND "
                           "table_namespace = ?" + self._type_filter(), (self.name, ns))
        return [(*Catalog.identifier_to_tuple(n), t) for n, t in rows]

    # ------------------------------------------------------------------ namespaces
    def namespace_exists(self, namespace: str | tuple[str, ...]) -> bool:
        """True when a table or a property row has ``namespace`` or a namespace below it."""
        ns = Catalog.namespace_to_string(Catalog.identifier_to_tuple(namespace), NoSuchNamespaceError)
        below = ns.replace("!", "!!").replace("_", "!_").replace("%", "!%") + ".%"
        return any(self._query(f"SELECT 1 FROM {table} WHERE catalog_name = ? AND ({column} = ? OR {column} LIKE ? "
                               "ESCAPE '!') LIMIT 1", (self.name, ns, below))
                   for table, column in (("iceberg_tables", "table_namespace"),
                                         ("iceberg_namespace_properties", "namespace")))

    def create_namespace(self, namespace: str | tuple[str, ...], properties: dict[str, str] = EMPTY_DICT) -> None:
        """A namespace with ``properties`` (``{"exists": "true"}`` if none, as ``SqlCatalog``).

        Raises:
            NamespaceAlreadyExistsError: it exists.
        """
        if self.namespace_exists(namespace):
            raise NamespaceAlreadyExistsError(f"Namespace {namespace} already exists")
        ns = Catalog.namespace_to_string(namespace, NoSuchNamespaceError)
        with self._write() as conn:
            conn.executemany("INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, "
                             "property_value) VALUES (?, ?, ?, ?)",
                             [(self.name, ns, k, v) for k, v in (properties or {"exists": "true"}).items()])

    def load_namespace_properties(self, namespace: str | tuple[str, ...]) -> dict[str, str]:
        """The namespace's properties (its ``location`` places a table created without one).

        Raises:
            NoSuchNamespaceError: no such namespace.
        """
        ns = Catalog.namespace_to_string(namespace)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace {ns} does not exists")
        return dict(self._query("SELECT property_key, property_value FROM iceberg_namespace_properties WHERE "
                                "catalog_name = ? AND namespace = ?", (self.name, ns)))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ not used by s3pump
    def _elsewhere(self, *_: Any, **__: Any) -> Any:
        raise NotImplementedError("s3pump's SQLite catalog does what the export needs; open the same file with "
                                  "pyiceberg's SqlCatalog(uri='sqlite:///PATH') for anything else")

    rename_table = drop_namespace = list_namespaces = _elsewhere
    update_namespace_properties = create_view = list_views = view_exists = _elsewhere
    register_view = drop_view = load_view = _elsewhere
