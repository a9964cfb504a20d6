"""``export/iceberg_catalog.py``: the SQL catalog in a SQLite file without SQLAlchemy. Its file is pyiceberg's
``SqlCatalog``'s: each reads and commits what the other wrote; a commit is a compare-and-swap that refuses a
writer that lost the race; a "v0" file and rows of views are handled as ``SqlCatalog`` handles them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

pytest.importorskip("pyiceberg")

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)

from s3pump.export.iceberg_catalog import SqliteCatalog
from s3pump.export.iceberg_table import sqlite_path

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": pa.array(["a", "b", None], pa.string())})


def _ours(tmp_path: Path, db: str = "c.db") -> SqliteCatalog:
    return SqliteCatalog("s3pump", str(tmp_path / db), warehouse=f"file://{tmp_path}/wh")


def _theirs(tmp_path: Path, db: str = "c.db") -> Any:
    return SqlCatalog("s3pump", uri=f"sqlite:///{tmp_path / db}", warehouse=f"file://{tmp_path}/wh")


def _ids(table: Any) -> list[int]:
    return sorted(table.scan().to_arrow()["id"].to_pylist())


def test_the_file_has_sqlcatalogs_tables_to_the_letter(tmp_path: Path) -> None:
    _ours(tmp_path, "ours.db").create_namespace("s")
    _theirs(tmp_path, "theirs.db").create_namespace("s")

    def ddl(name: str) -> list[Any]:
        with sqlite3.connect(tmp_path / name) as conn:
            return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()

    def namespaces(name: str) -> list[Any]:
        with sqlite3.connect(tmp_path / name) as conn:
            return conn.execute("SELECT * FROM iceberg_namespace_properties").fetchall()

    assert ddl("ours.db") == ddl("theirs.db")
    assert namespaces("ours.db") == namespaces("theirs.db") == [("s3pump", "s", "exists", "true")]


def test_what_one_catalog_commits_the_other_reads_and_appends_to(tmp_path: Path) -> None:
    ours = _ours(tmp_path)
    ours.create_namespace("s")
    table = ours.create_table(("s", "t"), schema=ROWS.schema)
    table.append(ROWS)
    theirs = _theirs(tmp_path)
    assert theirs.list_tables("s") == [("s", "t")]
    read = theirs.load_table(("s", "t"))
    assert _ids(read) == [1, 2, 3]
    read.append(ROWS.set_column(0, "id", pa.array([4, 5, 6], pa.int64())))
    again = ours.load_table("s.t")
    assert _ids(again) == [1, 2, 3, 4, 5, 6]
    assert len(again.metadata.snapshots) == 2
    with sqlite3.connect(tmp_path / "c.db") as conn:  # the row points at the newest metadata, the one before kept
        (location, previous), = conn.execute("SELECT metadata_location, previous_metadata_location "
                                             "FROM iceberg_tables").fetchall()
    assert location == again.metadata_location and previous is not None and previous != location
    assert ours.table_exists(("s", "t")) and not ours.table_exists(("s", "other"))
    ours.drop_table(("s", "t"))
    with pytest.raises(NoSuchTableError):
        theirs.load_table(("s", "t"))


def test_a_writer_that_lost_the_race_is_refused_and_the_winners_commit_stays(tmp_path: Path) -> None:
    from pyiceberg.table.update import SetPropertiesUpdate

    ours = _ours(tmp_path)
    ours.create_namespace("s")
    ours.create_table(("s", "t"), schema=ROWS.schema)
    other = _ours(tmp_path)
    write_metadata = SqliteCatalog._write_metadata
    raced: list[str] = []

    def race(metadata: Any, io: Any, path: str) -> None:  # between staging and the swap, another writer commits
        write_metadata(metadata, io, path)
        if not raced:
            raced.append(path)
            other.load_table(("s", "t")).transaction().set_properties(k="theirs").commit_transaction()

    ours._write_metadata = race  # type: ignore[method-assign]
    with pytest.raises(CommitFailedException, match="updated by another process"):
        ours.commit_table(ours.load_table(("s", "t")), (), (SetPropertiesUpdate(updates={"k": "ours"}),))
    assert raced and _theirs(tmp_path).load_table(("s", "t")).properties["k"] == "theirs"


def test_a_stale_table_is_refused_by_its_requirements_and_an_append_is_retried_once(tmp_path: Path) -> None:
    from pyiceberg.table.update import AssertRefSnapshotId, SetPropertiesUpdate

    ours = _ours(tmp_path)
    ours.create_namespace("s")
    ours.create_table(("s", "t"), schema=ROWS.schema)
    stale = ours.load_table(("s", "t"))
    ours.load_table(("s", "t")).append(ROWS)
    with pytest.raises(CommitFailedException):  # "main" was created since
        ours.commit_table(stale, (AssertRefSnapshotId(ref="main", snapshot_id=None),),
                          (SetPropertiesUpdate(updates={"k": "v"}),))
    assert "k" not in ours.load_table(("s", "t")).properties
    stale.append(ROWS.set_column(0, "id", pa.array([4, 5, 6], pa.int64())))  # pyiceberg rebases a fast append
    assert _ids(_theirs(tmp_path).load_table(("s", "t"))) == [1, 2, 3, 4, 5, 6]


def test_names_namespaces_and_refusals(tmp_path: Path) -> None:
    ours = _ours(tmp_path)
    with pytest.raises(NoSuchNamespaceError):
        ours.create_table(("s", "t"), schema=ROWS.schema)
    ours.create_namespace("s")
    ours.create_namespace_if_not_exists("s")
    with pytest.raises(NamespaceAlreadyExistsError):
        ours.create_namespace("s")
    assert not ours.namespace_exists("s_x") and not ours.namespace_exists("S")
    ours.create_table(("s", "t"), schema=ROWS.schema)
    with pytest.raises(TableAlreadyExistsError):
        ours.create_table(("s", "t"), schema=ROWS.schema)
    with pytest.raises(NoSuchTableError):
        ours.drop_table(("s", "nope"))
    with pytest.raises(NoSuchNamespaceError):
        ours.list_tables("nope")
    ours.register_table(("s", "again"), ours.load_table(("s", "t")).metadata_location)
    assert sorted(ours.list_tables("s")) == [("s", "again"), ("s", "t")]
    other = SqliteCatalog("another", str(tmp_path / "c.db"), warehouse=f"file://{tmp_path}/wh")
    assert not other.namespace_exists("s") and not other.table_exists(("s", "t"))  # keyed by catalog name
    with pytest.raises(NotImplementedError, match="SqlCatalog"):
        ours.rename_table(("s", "t"), ("s", "u"))


def test_a_v0_file_is_used_as_it_is_and_rows_of_views_are_no_tables(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with sqlite3.connect(db) as conn:  # pyiceberg < 0.10's tables: no iceberg_type
        conn.execute("CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) "
                     "NOT NULL, table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000), "
                     "previous_metadata_location VARCHAR(1000), PRIMARY KEY (catalog_name, table_namespace, "
                     "table_name))")
    ours = _ours(tmp_path)
    ours.create_namespace("s")
    ours.create_table(("s", "t"), schema=ROWS.schema).append(ROWS)
    with sqlite3.connect(db) as conn:
        assert "iceberg_type" not in {r[1] for r in conn.execute("PRAGMA table_info(iceberg_tables)")}
    assert _ids(_theirs(tmp_path).load_table(("s", "t"))) == [1, 2, 3]

    typed = tmp_path / "typed"
    typed.mkdir()
    ours = _ours(typed)
    ours.create_namespace("s")
    ours.create_table(("s", "t"), schema=ROWS.schema)
    with sqlite3.connect(typed / "c.db") as conn:
        assert conn.execute("SELECT iceberg_type FROM iceberg_tables").fetchall() == [("TABLE",)]
        conn.execute("INSERT INTO iceberg_tables VALUES ('s3pump', 's', 'v', 'file:///x.metadata.json', NULL, "
                     "'VIEW')")
    assert not ours.table_exists(("s", "v")) and ours.list_tables("s") == [("s", "t")]


@pytest.mark.parametrize(("uri", "path"), [
    ("sqlite:////abs/c.db", "/abs/c.db"), ("sqlite:///rel/c.db", "rel/c.db"), ("sqlite://", None),
    ("sqlite:///:memory:", None), ("sqlite:///c.db?mode=ro", None), ("postgresql://u@h/db", None),
    ("https://rest.example/catalog", None),
])
def test_which_uris_are_a_local_sqlite_file(uri: str, path: str | None) -> None:
    assert sqlite_path(uri) == path
