"""The schema an export's objects hold, recorded in the checkpoint; a table that changed is noticed.

An incremental export writes each run's new rows with the table's schema of that run. A column
added, dropped or retyped between runs would leave objects of two schemas under one prefix (and
protobuf's one ``.proto`` rewritten, so older objects decode wrongly). So the checkpoint records
the schema (``schemas``: version → columns ``[name, Arrow type, nullable, declared type]``, and
``schema_version``, the one new objects are written in), and a run whose table has another schema
(another column set, an Arrow type or column order; a declared type that maps to the same Arrow
type is no change, and neither is nullability: Parquet and protobuf readers read a column that is
optional in some objects and required in others, and the two SQLite readers can differ on it for
an ``INT PRIMARY KEY``):

* stops before anything is written, with one line naming each column and what changed (exit 2);
* or, with ``--schema-evolution``, writes its objects under the next schema version:
  ``prefix/T/_v<N>/…`` (version 1 keeps ``prefix/T/…``) and, for protobuf,
  ``_schema/T.v<N>.proto`` next to version 1's ``_schema/T.proto``. Readers that skip paths
  starting with ``_`` (Hive, Spark, Athena) see one schema under ``prefix/T/``: version 1.

A checkpoint written before schemas were recorded records the current one, unchecked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from ..errors import UsageError

__all__ = ["check_schema", "describe_changes", "schema_columns", "version_dir", "version_proto_name"]


def schema_columns(schema: pa.Schema, declared: Sequence[str]) -> list[list[Any]]:
    """The schema as recorded in the checkpoint: ``[name, Arrow type, nullable, declared type]`` per column."""
    return [[f.name, str(f.type), f.nullable, d] for f, d in zip(schema, declared, strict=True)]


def _what(col: Sequence[Any]) -> str:
    declared = f"declared {col[3]}" if col[3] else "no declared type, inferred from its values"
    return f"{col[1]} ({declared})"


def describe_changes(old: Sequence[Sequence[Any]], new: Sequence[Sequence[Any]]) -> list[str]:
    """What changed from ``old`` to ``new`` (recorded columns), one phrase per column; [] if nothing did."""
    before = {c[0]: c for c in old}
    after = {c[0]: c for c in new}
    out: list[str] = []
    for c in new:
        o = before.get(c[0])
        if o is None:
            out.append(f"column {c[0]} was added: {_what(c)}")
        elif o[1] != c[1]:
            out.append(f"column {c[0]} was retyped from {_what(o)} to {_what(c)}")
    out += [f"column {c[0]} was dropped (it was {_what(c)})" for c in old if c[0] not in after]
    if not out and [c[0] for c in old] != [c[0] for c in new]:
        moved = next(c[0] for c, o in zip(new, old, strict=True) if c[0] != o[0])
        out.append(f"the columns were reordered (column {moved} is at position "
                   f"{[c[0] for c in new].index(moved) + 1} now)")
    return out


def check_schema(schemas: dict[str, list[list[Any]]], version: int, current: list[list[Any]], *, evolution: bool,
                 table: str, where: str) -> int:
    """The schema version this run writes: ``version`` if ``current`` is its recorded schema (or none is
    recorded), ``version + 1`` with ``evolution``; records it in ``schemas``.

    Raises:
        UsageError: the schema changed and ``evolution`` is off (one line naming the columns, exit 2).
    """
    recorded = schemas.get(str(version))
    if recorded is None:
        schemas[str(version)] = current
        return version
    changes = describe_changes(recorded, current)
    if not changes:
        return version
    if not evolution:
        raise UsageError(
            f"{where}: table {table} changed since its last export: {'; '.join(changes)}; its objects hold "
            f"schema version {version}. Rerun with --schema-evolution to write new objects under schema version "
            f"{version + 1} ({version_dir(table, version + 1)}/), or with --from-start to export every row again "
            "in the new schema")
    schemas[str(version + 1)] = current
    return version + 1


def version_dir(table: str, version: int) -> str:
    """The table's directory for objects of schema ``version``, relative to the prefix (``T``, ``T/_v2``)."""
    return table if version <= 1 else f"{table}/_v{version}"


def version_proto_name(table: str, version: int) -> str:
    """The ``.proto`` file of schema ``version`` under ``_schema/`` (``T.proto``, ``T.v2.proto``)."""
    return f"{table}.proto" if version <= 1 else f"{table}.v{version}.proto"
