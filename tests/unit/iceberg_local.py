"""A local Iceberg table for the unit tests: a SQLite catalog and a ``file://`` warehouse in the test's
``tmp_path`` (one catalog per directory, kept across a hypothesis test's examples), a new table per call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

_CATALOGS: dict[str, Any] = {}


def local_table(tmp_path: Path, schema: pa.Schema, properties: dict[str, str] | None = None) -> Any:
    """A new table ``s.t<N>`` of ``schema`` (fresh field IDs, unpartitioned) with table ``properties``."""
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.io.pyarrow import _pyarrow_to_schema_without_ids
    from pyiceberg.schema import assign_fresh_schema_ids

    catalog = _CATALOGS.get(str(tmp_path))
    if catalog is None:
        catalog = _CATALOGS[str(tmp_path)] = SqlCatalog("s3pump", uri=f"sqlite:///{tmp_path}/local.db",
                                                         warehouse=f"file://{tmp_path}/wh")
        catalog.create_namespace("s")
    name = f"t{len(catalog.list_tables('s'))}"
    return catalog.create_table(("s", name), schema=assign_fresh_schema_ids(_pyarrow_to_schema_without_ids(schema)),
                                properties=properties or {})
