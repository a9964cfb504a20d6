"""s3pump: move data into S3 and S3-compatible object stores, fast, in bounded memory, losing nothing.

Public API (everything else is private and may change)::

    upload(paths, "s3://bucket/prefix", config) -> UploadReport
    sync(source_dir, "s3://bucket/prefix", config, mode=..., delete=False, dry_run=False) -> SyncReport
    stream(readable, "s3://bucket/key", config, expected_size_bytes=None) -> StreamReport
    export_table(db, table, "s3://bucket/prefix", config, ...) -> ExportReport
    TransferConfig                      one frozen, validated config (units in names)
    errors: S3PumpError and its tree    every class of s3pump.errors, importable from s3pump
"""

from typing import TYPE_CHECKING

from .errors import (  # the whole error tree (errors.py is loaded by any job anyway)
    AccessDeniedError,
    BadDigestError,
    BrokenListingError,
    CancelledError,
    CertificateError,
    ClientLibraryError,
    ClockSkewError,
    ConcurrentChangeError,
    CredentialsError,
    DeleteLimitError,
    EndpointUnreachableError,
    FatalStoreError,
    InvalidKeyError,
    JournalBusyError,
    KeyClashError,
    LocalStateError,
    NetworkError,
    NoSuchBucketError,
    NoSuchUploadError,
    OpenFilesError,
    PathNotFoundError,
    RequestTimeoutError,
    RetryableStoreError,
    S3PumpError,
    ServerError,
    SourceChangedError,
    SourceError,
    SourceNotFoundError,
    SourceTruncatedError,
    SourceUnreadableError,
    StoreError,
    ThrottlingError,
    UsageError,
    WorkerLostError,
    WorkerMismatchError,
    WrongRegionError,
)

if TYPE_CHECKING:  # the lazy names below, for type checkers
    from .config import TransferConfig
    from .jobs.export import export_table
    from .jobs.stream import stream
    from .jobs.sync import sync
    from .jobs.upload import upload
    from .reports import ExportReport, FailedFile, StreamReport, SyncReport, UploadReport

# Load lazily (PEP 562): `import s3pump` or the CLI must not pay for pyarrow when uploading, nor for
# the config and reports when printing its version.
_LAZY = {
    "TransferConfig": ".config",
    "FailedFile": ".reports",
    "UploadReport": ".reports",
    "upload": ".jobs.upload",
    "sync": ".jobs.sync",
    "SyncReport": ".reports",
    "stream": ".jobs.stream",
    "StreamReport": ".reports",
    "export_table": ".jobs.export",
    "ExportReport": ".reports",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 's3pump' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "BadDigestError",
    "BrokenListingError",
    "CancelledError",
    "CertificateError",
    "ClientLibraryError",
    "ClockSkewError",
    "ConcurrentChangeError",
    "CredentialsError",
    "DeleteLimitError",
    "EndpointUnreachableError",
    "ExportReport",
    "FailedFile",
    "FatalStoreError",
    "InvalidKeyError",
    "JournalBusyError",
    "KeyClashError",
    "LocalStateError",
    "NetworkError",
    "NoSuchBucketError",
    "NoSuchUploadError",
    "OpenFilesError",
    "PathNotFoundError",
    "RequestTimeoutError",
    "RetryableStoreError",
    "S3PumpError",
    "ServerError",
    "SourceChangedError",
    "SourceError",
    "SourceNotFoundError",
    "SourceTruncatedError",
    "SourceUnreadableError",
    "StoreError",
    "StreamReport",
    "SyncReport",
    "ThrottlingError",
    "TransferConfig",
    "UploadReport",
    "UsageError",
    "WorkerLostError",
    "WorkerMismatchError",
    "WrongRegionError",
    "__version__",
    "export_table",
    "stream",
    "sync",
    "upload",
]
