"""``cleanup --iceberg``'s choice of files (``export/iceberg_orphans.py``), without a server: which metadata files
count, what is a candidate, the grace period, and a table left alone."""

from __future__ import annotations

import pytest

from s3pump.export import iceberg_orphans
from s3pump.export.iceberg_orphans import find_orphans, metadata_version
from s3pump.store.base import ObjectInfo


def obj(key: str, modified: float = 100.0) -> ObjectInfo:
    return ObjectInfo(key, 1, "e", modified)


def test_metadata_version_reads_pyiceberg_and_hadoop_names() -> None:
    assert metadata_version("00007-0f3c.metadata.json") == 7
    assert metadata_version("v12.metadata.json") == 12
    assert metadata_version("00001.metadata.json") == 1
    assert metadata_version("current.metadata.json") is None


def test_snapshots_of_every_newest_metadata_file_count_and_young_files_are_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two metadata files of the highest version (a commit that lost a race and the winner): the files either
    references are kept; the older version's references do not count; a young unreferenced file is kept;
    metadata files and other files are never candidates."""
    refs = {"00002-a.metadata.json": {"s3://b/t/T/data/a.parquet", "s3://b/t/T/metadata/snap-a.avro"},
            "00002-b.metadata.json": {"s3://b/t/T/data/b.parquet"},
            "00001-o.metadata.json": {"s3://b/t/T/data/old.parquet"}}
    monkeypatch.setattr(iceberg_orphans, "_referenced", lambda location, props: refs[location.rsplit("/", 1)[1]])
    keys = ["t/T/metadata/" + n for n in refs] + [
        "t/T/data/a.parquet", "t/T/data/b.parquet", "t/T/data/old.parquet", "t/T/data/x/killed.parquet",
        "t/T/metadata/snap-a.avro", "t/T/metadata/killed-m0.avro", "t/T/metadata/x.stats", "t/T/other.txt",
        "t/U/data/not-a-table.parquet"]
    objects = [obj(k) for k in keys] + [obj("t/T/data/young.parquet", 500.0)]
    asked: list[int] = []
    [table] = find_orphans("b", objects, 200.0, lambda: asked.append(1) or {})
    assert table.root == "t/T" and table.error is None and asked == [1]
    assert table.orphans == ["t/T/data/old.parquet", "t/T/data/x/killed.parquet", "t/T/metadata/killed-m0.avro"]
    assert table.kept == ["t/T/data/young.parquet"]


def test_a_table_whose_metadata_names_carry_no_version_is_left_alone() -> None:
    objects = [obj("t/T/metadata/current.metadata.json"), obj("t/T/data/a.parquet")]
    [table] = find_orphans("b", objects, 200.0, lambda: pytest.fail("no table to read"))
    assert table.orphans == [] and table.error is not None and "current.metadata.json" in table.error
