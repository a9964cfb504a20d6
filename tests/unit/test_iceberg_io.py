"""``export/iceberg_io.py``: pyiceberg's FileIO over a registered store (metadata read and written whole)."""

from __future__ import annotations

import pytest

pytest.importorskip("pyiceberg")

from s3pump.export.iceberg_io import STORE_KEY, EndpointFileIO, StoreInputFile, StoreOutputFile, register_store
from s3pump.store.memory import MemoryStore


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    s.create_bucket("lake")
    return s


def test_a_registered_store_serves_the_file_io(store: MemoryStore) -> None:
    fio = EndpointFileIO({STORE_KEY: register_store(store)})
    out = fio.new_output("s3://lake/t/metadata/00000-a.metadata.json")
    assert isinstance(out, StoreOutputFile) and not out.exists()
    with out.create() as f:
        f.write(b'{"format-version": 2}')
        assert store.head_object("lake", "t/metadata/00000-a.metadata.json") is None  # nothing before close
    assert store.get_object("lake", "t/metadata/00000-a.metadata.json") == b'{"format-version": 2}'
    src = fio.new_input("s3://lake/t/metadata/00000-a.metadata.json")
    assert isinstance(src, StoreInputFile) and src.exists() and len(src) == 21
    with src.open() as f:
        assert f.read() == b'{"format-version": 2}'
    fio.delete("s3://lake/t/metadata/00000-a.metadata.json")
    assert store.head_object("lake", "t/metadata/00000-a.metadata.json") is None
    assert register_store(store) == fio.properties[STORE_KEY]  # one name per store


def test_create_refuses_an_existing_object_unless_overwriting(store: MemoryStore) -> None:
    fio = EndpointFileIO({STORE_KEY: register_store(store)})
    with fio.new_output("s3://lake/m.avro").create() as f:
        f.write(b"one")
    with pytest.raises(FileExistsError):
        fio.new_output("s3://lake/m.avro").create()
    with fio.new_output("s3://lake/m.avro").create(overwrite=True) as f:
        f.write(b"two")
    assert store.get_object("lake", "m.avro") == b"two"


def test_a_missing_object_is_file_not_found(store: MemoryStore) -> None:
    fio = EndpointFileIO({STORE_KEY: register_store(store)})
    src = fio.new_input("s3://lake/none.json")
    assert not src.exists()
    with pytest.raises(FileNotFoundError):
        src.open()
    with pytest.raises(FileNotFoundError):
        len(src)


def test_a_writer_that_fails_stores_nothing(store: MemoryStore) -> None:
    fio = EndpointFileIO({STORE_KEY: register_store(store)})
    with pytest.raises(RuntimeError), fio.new_output("s3://lake/half.avro").create() as f:
        f.write(b"half")
        raise RuntimeError("the writer failed")
    assert store.head_object("lake", "half.avro") is None


def test_without_a_registered_store_the_pyarrow_file_io_is_used() -> None:
    from pyiceberg.io.pyarrow import PyArrowFile

    fio = EndpointFileIO({STORE_KEY: "store-none", "s3.region": "us-east-1"})
    assert isinstance(fio.new_input("s3://lake/x.json"), PyArrowFile)
    assert isinstance(fio.new_output("s3://lake/x.json"), PyArrowFile)


def test_a_file_io_with_other_credentials_or_endpoint_than_the_stores_does_not_use_it(store: MemoryStore) -> None:
    """A REST catalog may hand out its own credentials or endpoint for a table: then the store is not its door."""
    from types import SimpleNamespace

    from pyiceberg.io.pyarrow import PyArrowFile

    frozen = SimpleNamespace(access_key="AKID", secret_key="s", token=None)
    settings = SimpleNamespace(endpoint_url="http://127.0.0.1:9", credentials=SimpleNamespace(
        get_frozen_credentials=lambda: frozen))
    store.settings = settings  # type: ignore[attr-defined]
    name = register_store(store)
    own = {STORE_KEY: name, "s3.access-key-id": "AKID", "s3.secret-access-key": "s",
           "s3.endpoint": "http://127.0.0.1:9", "s3.region": "r"}
    assert isinstance(EndpointFileIO(own).new_input("s3://lake/x.json"), StoreInputFile)
    for other in ({"s3.access-key-id": "VENDED"}, {"s3.endpoint": "http://elsewhere:9"}):
        assert isinstance(EndpointFileIO({**own, **other}).new_input("s3://lake/x.json"), PyArrowFile)
