"""The Iceberg side of ``export --table-format iceberg``: catalog, FileIO, table, cursor, orphans.

pyiceberg (the ``iceberg`` extra) writes the manifests and metadata itself (the data files are s3pump's:
``iceberg_write.py``), and reads them and a scan's data files (compaction), through the FileIO of
``iceberg_io.py``: the run's ``Store`` (its endpoint, proxy, CA bundle, credentials and retry policy). The FileIO
is pyiceberg's ``PyArrowFileIO`` set up with the run's endpoint, region, CA bundle and the credentials the run
resolved (botocore's chain, frozen at the start of the run; never logged): its pyarrow ``S3FileSystem`` serves
only a file the store may not (a REST catalog's table with credentials of its own). The listing and deleting of
orphan data files go through the run's ``Store``.

* Catalog: the SQL catalog, by default in a local SQLite file (``<state dir>/iceberg/<bucket>/<prefix>.db``,
  through ``iceberg_catalog.py``: the file pyiceberg's ``SqlCatalog`` reads); ``--catalog-uri`` another
  SQLAlchemy URL (pyiceberg's ``SqlCatalog``), or an ``http(s)://`` Iceberg REST catalog.
* Table ``s3pump.<Table>`` at ``s3://bucket/prefix/<Table>`` (``data/`` and ``metadata/`` below it),
  created on the first run from the source's Arrow schema and ``--partition-by`` (time → the
  hour/day/month transform, ``column:c`` → identity).
* The cursor is the ``s3pump.cursor-last`` property of the newest snapshot that has one.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa

from ..errors import UsageError
from ..run import Run
from ..session import state_dir
from ..sources.table import decode_cursor
from ..urls import S3Url, join_key
from .partition import PartitionSpec, escape_name

__all__ = ["CATALOG_NAME", "NAMESPACE", "abort_dead_uploads", "check_schema_change", "default_catalog_uri",
           "io_properties", "last_cursor", "open_catalog", "open_table", "orphan_data_keys", "sqlite_path",
           "store_io_properties", "table_location"]

NAMESPACE = "s3pump"
CATALOG_NAME = "s3pump"  #: the catalog's name (a SqlCatalog keys its rows by it)
CURSOR_LAST, CURSOR_AFTER, SOURCE_TABLE, RUN_ID = ("s3pump.cursor-last", "s3pump.cursor-after", "s3pump.source-table",
                                                   "s3pump.run-id")
_TRANSFORMS = {"hour": "HourTransform", "day": "DayTransform", "month": "MonthTransform", "year": "YearTransform"}


def default_catalog_uri(dest: S3Url) -> str:
    """The SQLite catalog of ``dest`` in the state directory (one file per bucket and prefix)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", dest.prefix.strip("/")) or "_root"
    path = state_dir() / "iceberg" / dest.bucket / f"{name}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def io_properties(run: Run) -> dict[str, str]:
    """pyiceberg FileIO properties for the run's endpoint, region, addressing and credentials.

    Raises:
        UsageError: the run's store is no S3 endpoint (a store object given to the API, as tests do).
    """
    return store_io_properties(run.store, verify_ssl=run.config.verify_ssl)


def store_io_properties(store: Any, *, verify_ssl: bool) -> dict[str, str]:
    """:func:`io_properties` of ``store`` (a cluster worker's own, its credentials from its own chain).

    Raises:
        UsageError: ``store`` is no S3 endpoint.
    """
    settings = getattr(store, "settings", None)
    if settings is None:
        raise UsageError("--table-format iceberg needs an S3 endpoint (pyiceberg's FileIO is set up with its "
                         "endpoint, region and credentials); this run's store has none")
    from .iceberg_io import STORE_KEY, TIMEOUT_KEY, register_store

    frozen = settings.credentials.get_frozen_credentials()
    props = {"py-io-impl": "s3pump.export.iceberg_io.EndpointFileIO", "s3.region": settings.region,
             STORE_KEY: register_store(store), TIMEOUT_KEY: str(store.config.request_timeout_s),
             "s3.access-key-id": frozen.access_key, "s3.secret-access-key": frozen.secret_key,
             "s3.force-virtual-addressing": "false" if settings.path_style else "true"}
    if frozen.token:
        props["s3.session-token"] = frozen.token
    if settings.endpoint_url:
        props["s3.endpoint"] = settings.endpoint_url
    if settings.ca_bundle:
        props["s3pump.ca-bundle"] = settings.ca_bundle
    if not verify_ssl:
        props["s3pump.no-verify-ssl"] = "true"
    return props


def open_catalog(uri: str, dest: S3Url, props: dict[str, str]) -> Any:
    """The catalog at ``uri``: an Iceberg REST catalog's ``http(s)://`` URL; ``sqlite:///PATH``, the SQL catalog in a
    local SQLite file (``iceberg_catalog.py``, without SQLAlchemy); any other SQLAlchemy URL, pyiceberg's
    ``SqlCatalog``."""
    warehouse = f"s3://{dest.bucket}/{dest.prefix.strip('/')}".rstrip("/")
    if uri.startswith(("http://", "https://")):
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(CATALOG_NAME, uri=uri, warehouse=warehouse, **props)
    from .iceberg_catalog import SqliteCatalog

    path = sqlite_path(uri)
    if path is not None:
        catalog: Any = SqliteCatalog(CATALOG_NAME, path, warehouse=warehouse, **props)
    else:
        from pyiceberg.catalog.sql import SqlCatalog

        catalog = SqlCatalog(CATALOG_NAME, uri=uri, warehouse=warehouse, **props)
    catalog.create_namespace_if_not_exists(NAMESPACE)
    return catalog


def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///PATH`` catalog URI (SQLAlchemy's form: ``sqlite:////abs/path``, or a path
    relative to the working directory); None for any other URI, an in-memory database or one with a query."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):]
    if not path or path.startswith(":") or "?" in path:
        return None
    return path


def table_location(dest: S3Url, table: str) -> str:
    return f"s3://{dest.bucket}/{join_key(dest.prefix, escape_name(table))}"


def open_table(catalog: Any, dest: S3Url, table: str, schema: pa.Schema, specs: list[PartitionSpec],
               run: Run, properties: dict[str, str] | None = None) -> tuple[Any, bool]:
    """The Iceberg table of ``table`` (created from ``schema``, ``specs`` and table ``properties`` on the first
    run), and whether it was created now.

    Raises:
        UsageError: the catalog's table lives elsewhere; the location already holds a table this catalog
            does not know (another catalog's: creating a second one there would make the first one's files
            orphans); a partition spec Iceberg cannot express.
    """
    from pyiceberg.exceptions import NoSuchTableError

    ident, location = (NAMESPACE, table), table_location(dest, table)
    try:
        found = catalog.load_table(ident)
    except NoSuchTableError:
        found = None
    if found is not None:
        if found.location().rstrip("/") != location:
            raise UsageError(f"iceberg table {NAMESPACE}.{table} of this catalog is at {found.location()}, not "
                             f"{location}; use another --catalog-uri")
        return found, False
    base = join_key(dest.prefix, escape_name(table) + "/metadata/")
    held = next((o.key for o in run.store.list_objects(dest.bucket, base) if o.key.endswith(".metadata.json")), None)
    if held is not None:
        raise UsageError(f"{location} already holds an Iceberg table (s3://{dest.bucket}/{held}) that the catalog "
                         f"of this run does not know; give the --catalog-uri that holds it, or register its newest "
                         "metadata file in this catalog (pyiceberg: catalog.register_table)")
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids

    unsupported = [f"{f.name} ({f.type})" for f in schema if pa.types.is_interval(f.type)]
    if unsupported:
        raise UsageError(f"--table-format iceberg: Iceberg has no type for column {', '.join(unsupported)}")
    iceberg_schema = _pyarrow_to_schema_without_ids(schema)
    from pyiceberg.schema import assign_fresh_schema_ids

    iceberg_schema = assign_fresh_schema_ids(iceberg_schema)
    return catalog.create_table(ident, schema=iceberg_schema, location=location,
                                partition_spec=_partition_spec(iceberg_schema, specs),
                                properties=properties or {}), True


def _partition_spec(schema: Any, specs: list[PartitionSpec]) -> Any:
    from pyiceberg import transforms
    from pyiceberg.partitioning import PartitionField
    from pyiceberg.partitioning import PartitionSpec as IcebergSpec
    from pyiceberg.types import DateType, TimestampType, TimestamptzType

    fields = []
    for i, s in enumerate(specs):
        source = schema.find_field(s.column)
        if s.kind == "time":
            if s.epoch or not isinstance(source.field_type, DateType | TimestampType | TimestamptzType):
                raise UsageError(f"--partition-by {s} with --table-format iceberg: Iceberg's {s.grain} transform "
                                 f"needs a DATE or DATETIME/TIMESTAMP column; {s.column} is {source.field_type}")
            transform, name = getattr(transforms, _TRANSFORMS[s.grain or "day"])(), f"{s.column}_{s.grain}"
        else:
            transform, name = transforms.IdentityTransform(), s.column
        fields.append(PartitionField(source_id=source.field_id, field_id=1000 + i, transform=transform, name=name))
    return IcebergSpec(*fields)


def last_cursor(table: Any) -> Any:
    """The cursor value committed last (``s3pump.cursor-last`` of the newest snapshot carrying one, following
    the current snapshot's parents; a compaction's snapshot carries none); None before the first commit."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        value = snapshot.summary[CURSOR_LAST] if snapshot.summary is not None else None
        if value is not None:
            return decode_cursor(json.loads(value))
        snapshot = table.snapshot_by_id(snapshot.parent_snapshot_id) if snapshot.parent_snapshot_id else None
    return None


def referenced_files(table: Any) -> set[str]:
    """The path of every data file that any snapshot of ``table`` references (deleted entries included)."""
    io, paths, seen = table.io, set(), set()
    for snapshot in table.snapshots():
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in seen:  # a manifest is shared by the snapshots after it: read once
                continue
            seen.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                paths.add(entry.data_file.file_path)
    return paths


def orphan_data_keys(run: Run, dest: S3Url, table: Any, name: str) -> list[str]:
    """Keys under ``prefix/<Table>/data/`` that no snapshot references: the data files of a commit that
    never happened (a run killed between writing them and committing)."""
    referenced = referenced_files(table)
    base = join_key(dest.prefix, escape_name(name) + "/data/")
    return sorted(o.key for o in run.store.list_objects(dest.bucket, base)
                  if f"s3://{dest.bucket}/{o.key}" not in referenced)


def abort_dead_uploads(run: Run, dest: S3Url, name: str) -> int:
    """Abort the multipart uploads under ``prefix/<Table>/`` (pyarrow's S3 client writes a file as a multipart
    upload): those of a run killed while writing a file. Returns how many. One writer per table is assumed,
    as for the orphans."""
    from ..journal_aborts import abort_upload

    base = join_key(dest.prefix, escape_name(name) + "/")
    uploads = list(run.store.list_multipart_uploads(dest.bucket, base))
    for u in uploads:
        abort_upload(run.store, run.policy, dest.bucket, u.key, u.upload_id)
    return len(uploads)


def check_schema_change(table: Any, schema: pa.Schema, *, evolution: bool, name: str) -> tuple[list[str], list[str]]:
    """Compare the source's ``schema`` with the table's: returns (added, dropped) column names.

    Added columns are always accepted (an Iceberg add-column); dropped ones only with ``evolution``
    (they are NULL in later rows).

    Raises:
        UsageError: a retyped column, or a dropped one without ``evolution`` (exit 2, nothing written).
    """
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids

    mine = {f.name: f.field_type for f in _pyarrow_to_schema_without_ids(schema).fields}
    theirs = {f.name: f.field_type for f in table.schema().fields}
    added = [c for c in mine if c not in theirs]
    dropped = [c for c in theirs if c not in mine]
    retyped = [f"{c} was retyped from {theirs[c]} to {mine[c]}" for c in mine if c in theirs and mine[c] != theirs[c]]
    where = f"iceberg table {NAMESPACE}.{name}"
    if retyped:
        raise UsageError(f"{where}: table {name} changed since its last export: column {'; column '.join(retyped)}; "
                         "Iceberg keeps one type per column: export to another table (--from-start on another "
                         "prefix)")
    if dropped and not evolution:
        raise UsageError(f"{where}: table {name} changed since its last export: column {', '.join(dropped)} was "
                         "dropped; rerun with --schema-evolution to keep exporting (the column is NULL in new rows)")
    return added, dropped
