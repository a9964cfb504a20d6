"""``cleanup --iceberg``: the files under an Iceberg table's location that no snapshot references.

A table is found by its metadata files: every ``<root>/metadata/<name>.metadata.json`` under the prefix
makes ``<root>`` a table (any catalog's: no catalog is asked). Its snapshots are those of its **newest
metadata files**: every file of the highest version number (pyiceberg's ``00007-<uuid>.metadata.json``,
the Hadoop layout's ``v7.metadata.json``). Two files can share it (a commit that lost a race, or one whose
catalog update never happened, and the one that won): their snapshots are all kept, so a committed one is
never missed; a table whose names carry no version is left alone (reported, exit 1).

An orphan is a data file (under ``<root>/data/``) or a manifest or manifest list (``<root>/metadata/*.avro``)
that none of those snapshots references (deleted manifest entries count as references, as for time
travel), **and** that was last modified more than the grace period ago: a running export writes a commit's
files before it commits them, so a young unreferenced file may be about to be committed. Metadata files
(``*.metadata.json``), statistics and anything else under the table are never listed.

Reads go through pyiceberg's FileIO (the run's endpoint and credentials, ``iceberg_table.io_properties``);
the listing through the run's ``Store``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..store.base import ObjectInfo

__all__ = ["TableOrphans", "find_orphans", "metadata_version"]

_METADATA = re.compile(r"^(?:v)?(\d+)(?:[-.].*)?\.metadata\.json$")


@dataclass(slots=True)
class TableOrphans:
    """One table's unreferenced files: ``orphans`` (older than the grace period) and ``kept`` (younger),
    as keys; ``error``: why the table was left alone (nothing listed)."""

    root: str
    orphans: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    error: str | None = None


def metadata_version(name: str) -> int | None:
    """The version number of metadata file ``name`` (``00007-<uuid>.metadata.json``, ``v7.metadata.json``)."""
    m = _METADATA.match(name)
    return int(m.group(1)) if m else None


def find_orphans(bucket: str, objects: Iterable[ObjectInfo], cutoff_s: float,
                 io_props: Callable[[], dict[str, str]]) -> list[TableOrphans]:
    """The orphans of each Iceberg table among ``objects`` (a listing of a prefix), by table root.

    ``cutoff_s``: epoch seconds; an unreferenced file modified after it is kept (the grace period).
    ``io_props``: gives pyiceberg's FileIO properties (``iceberg_table.io_properties``), asked for once a
    table is found. A table whose metadata or manifests cannot be read is left alone, with its ``error``.

    Raises:
        UsageError: ``io_props`` refused (no S3 endpoint).
    """
    listed = list(objects)
    metadata: dict[str, list[str]] = {}
    for o in listed:
        root, sep, rest = o.key.rpartition("/metadata/")
        if sep and "/" not in rest and rest.endswith(".metadata.json"):
            metadata.setdefault(root, []).append(rest)
    found = []
    props: dict[str, str] = {}
    for root in sorted(metadata):
        table = TableOrphans(root)
        found.append(table)
        versions = {name: metadata_version(name) for name in metadata[root]}
        if any(v is None for v in versions.values()):
            table.error = (f"metadata file names without a version number "
                           f"({', '.join(sorted(n for n, v in versions.items() if v is None))}); left alone")
            continue
        newest = max(v for v in versions.values() if v is not None)
        referenced: set[str] = set()
        props = props or io_props()
        try:
            for name, v in versions.items():
                if v == newest:
                    referenced |= _referenced(f"s3://{bucket}/{root}/metadata/{name}", props)
        except Exception as e:  # pyiceberg's, pyarrow's (OSError): this table is left alone
            text = (str(e).strip().splitlines() or [""])[0]
            table.error = f"cannot read its snapshots ({type(e).__name__}: {text}); left alone"
            continue
        for o in listed:
            if not _candidate(root, o.key) or f"s3://{bucket}/{o.key}" in referenced:
                continue
            (table.orphans if o.last_modified < cutoff_s else table.kept).append(o.key)
        table.orphans.sort()
        table.kept.sort()
    return found


def _candidate(root: str, key: str) -> bool:
    """A data file, manifest or manifest list of the table at ``root`` (never a metadata file)."""
    if not key.startswith(root + "/"):
        return False
    rest = key[len(root) + 1:]
    if rest.startswith("data/"):
        return not rest.endswith("/")
    return rest.startswith("metadata/") and "/" not in rest[len("metadata/"):] and rest.endswith(".avro")


def _referenced(metadata_location: str, io_props: dict[str, str]) -> set[str]:
    """Every data file, manifest and manifest list any snapshot of this metadata file references."""
    from pyiceberg.table import StaticTable

    from .iceberg_table import referenced_files

    table: Any = StaticTable.from_metadata(metadata_location, properties=io_props)
    paths = set(referenced_files(table))
    for snapshot in table.snapshots():
        paths.add(snapshot.manifest_list)
        paths.update(m.manifest_path for m in snapshot.manifests(table.io))
    return paths
