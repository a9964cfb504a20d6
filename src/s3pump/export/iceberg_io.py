"""pyiceberg's FileIO for s3pump: the table's metadata, manifests and scanned data files read and written
through the run's ``Store``.

:class:`EndpointFileIO` is named by ``py-io-impl`` in ``export/iceberg_table.py``'s properties, and pyiceberg
builds it from those properties alone. The properties name a store registered here (:func:`register_store`):
while the FileIO's endpoint and access key are still that store's own (a REST catalog may hand out others for
its tables), every ``s3://`` file pyiceberg opens, writes or deletes goes through the store: the run's endpoint,
proxy, CA bundle, credentials and retry policy, over the same awscrt client as the data files (one door to the
store). A file is read whole (GetObject) and written whole (one PutObject when the writer closes it): metadata
files are small (``*.metadata.json``, manifest lists, manifests), and so are the data files a scan reads here,
compaction's (``export/iceberg_compact.py``: files below 3/4 of the target size; pyiceberg >= 0.10 opens every
data file of a scan with ``FileIO.new_input(path).open()``, ``pyiceberg.io.pyarrow._task_to_record_batches``).

What stays with pyarrow's ``S3FileSystem`` (``PyArrowFileIO``, set up with the run's endpoint, region,
credentials and CA bundle): any file of a FileIO whose store is not registered or not its own.
"""

from __future__ import annotations

import io
import itertools
import threading
import weakref
from typing import Any

from pyiceberg.io import InputFile, InputStream, OutputFile, OutputStream
from pyiceberg.io.pyarrow import PyArrowFileIO

from ..store.base import ObjectAttributes, Store
from ..store.waiting import put_and_wait
from .iceberg_write import PARQUET_TYPE, data_file_attrs
from .state import get_object_or_none

__all__ = ["STORE_KEY", "EndpointFileIO", "StoreInputFile", "StoreOutputFile", "register_store"]

STORE_KEY = "s3pump.store"  #: the FileIO property naming a registered store
TIMEOUT_KEY = "s3pump.request-timeout-s"  #: the FileIO property: seconds a PUT may take per attempt
_STORES: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_NUMBERS = itertools.count(1)
_LOCK = threading.Lock()
_SCHEMES = ("s3://", "s3a://", "s3n://")


def register_store(store: Store) -> str:
    """The name under which ``store`` serves :class:`EndpointFileIO` (held weakly: registered while it lives)."""
    with _LOCK:
        for name, known in _STORES.items():
            if known is store:
                return name
        name = f"store-{next(_NUMBERS)}"
        _STORES[name] = store
        return name


def _split(location: str) -> tuple[str, str]:
    bucket, _, key = location.split("://", 1)[1].partition("/")
    return bucket, key


class EndpointFileIO(PyArrowFileIO):
    """``PyArrowFileIO`` whose ``s3://`` files go through a registered store (see the module docstring); the
    pyarrow client it keeps for scans checks https certificates against ``s3pump.ca-bundle`` and sends a file
    smaller than a part as one PutObject (``allow_delayed_open``)."""

    def _store(self) -> Store | None:
        store = _STORES.get(self.properties.get(STORE_KEY, ""))
        settings = getattr(store, "settings", None)
        if settings is None:
            return store  # a store without an endpoint (tests' in-memory store): its own by construction
        frozen = settings.credentials.get_frozen_credentials()
        own = (self.properties.get("s3.access-key-id") == frozen.access_key
               and self.properties.get("s3.endpoint") == settings.endpoint_url)
        return store if own else None

    def new_input(self, location: str) -> InputFile:  # type: ignore[override]  # (PyArrowFileIO narrows it)
        store = self._store() if location.startswith(_SCHEMES) else None
        return StoreInputFile(location, store) if store is not None else super().new_input(location)

    def new_output(self, location: str) -> OutputFile:  # type: ignore[override]
        store = self._store() if location.startswith(_SCHEMES) else None
        if store is None:
            return super().new_output(location)
        return StoreOutputFile(location, store, timeout_s=float(self.properties.get(TIMEOUT_KEY, "60")))

    def delete(self, location: str | InputFile | OutputFile) -> None:
        path = location if isinstance(location, str) else location.location
        store = self._store() if path.startswith(_SCHEMES) else None
        if store is None:
            super().delete(location)
            return
        bucket, key = _split(path)
        store.delete_objects(bucket, [key])

    def _initialize_s3_fs(self, netloc: str | None) -> Any:
        fs = super()._initialize_s3_fs(netloc)
        extra: dict[str, Any] = {"allow_delayed_open": True}
        bundle = self.properties.get("s3pump.ca-bundle")
        if bundle:
            extra["tls_ca_file_path"] = bundle
        # the same client, rebuilt with these options (S3FileSystem's options, as pickling reads them back)
        rebuild, (kwargs,) = fs.__reduce__()
        return rebuild({**kwargs, **extra})


class StoreInputFile(InputFile):
    """An object read whole through a store (GetObject); its length from HeadObject.

    Raises (from ``open`` and ``len``): FileNotFoundError: no such object; StoreError: the request failed.
    """

    def __init__(self, location: str, store: Store) -> None:
        super().__init__(location)
        self._store, (self._bucket, self._key) = store, _split(location)

    def __len__(self) -> int:
        info = self._store.head_object(self._bucket, self._key)
        if info is None:
            raise FileNotFoundError(f"no such object: {self.location}")
        return info.size_bytes

    def exists(self) -> bool:
        return self._store.head_object(self._bucket, self._key) is not None

    def open(self, seekable: bool = True) -> InputStream:
        body = get_object_or_none(self._store, self._bucket, self._key)
        if body is None:
            raise FileNotFoundError(f"no such object: {self.location}")
        return io.BytesIO(body)


class StoreOutputFile(OutputFile):
    """An object written whole through a store: the bytes are kept until the stream is closed, then one
    PutObject (retried by the store's policy, ``timeout_s`` per attempt); nothing is stored before that.

    Raises: FileExistsError: ``create(overwrite=False)`` and the object exists; StoreError: the PUT failed.
    """

    def __init__(self, location: str, store: Store, *, timeout_s: float) -> None:
        super().__init__(location)
        self._store, (self._bucket, self._key), self._timeout_s = store, _split(location), timeout_s

    def __len__(self) -> int:
        return len(self.to_input_file())

    def exists(self) -> bool:
        return self._store.head_object(self._bucket, self._key) is not None

    def to_input_file(self) -> InputFile:
        return StoreInputFile(self.location, self._store)

    def create(self, overwrite: bool = False) -> OutputStream:
        if not overwrite and self.exists():
            raise FileExistsError(f"the object exists: {self.location}")
        return _PutOnClose(self)

    def put(self, body: bytes) -> None:
        put_and_wait(self._store, self._bucket, self._key, body, self.attrs(), timeout_s=self._timeout_s)

    def attrs(self) -> ObjectAttributes:
        """What every object of the run carries (the store's configuration: ``--acl``, ``--sse``,
        ``--storage-class``, ``--metadata``, ...), with this file's content type: JSON for a metadata file,
        Parquet for a data file (a cluster worker's), none for Avro (manifests and manifest lists)."""
        name = self._key.rsplit("/", 1)[-1]
        kind = "application/json" if name.endswith(".json") else PARQUET_TYPE if name.endswith(".parquet") else None
        return data_file_attrs(getattr(self._store, "config", None), kind)


class _PutOnClose(io.BytesIO):
    """The bytes written, stored by one PutObject at ``close`` (once)."""

    def __init__(self, target: StoreOutputFile) -> None:
        super().__init__()
        self._target: StoreOutputFile | None = target

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is not None:  # the writer failed: nothing is stored
            self._target = None
        super().__exit__(*exc)

    def close(self) -> None:
        target, self._target = self._target, None
        if target is not None and not self.closed:
            body = self.getvalue()
            super().close()
            target.put(body)
            return
        super().close()
