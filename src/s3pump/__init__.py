"""s3pump: move data into S3 and S3-compatible object stores, fast, in bounded memory, losing nothing.

Public API (everything else is private and may change)::

    upload(paths, "s3://bucket/prefix", config) -> UploadReport
    sync(source_dir, "s3://bucket/prefix", config, mode=..., delete=False, dry_run=False) -> SyncReport
    export_table(db, table, "s3://bucket/prefix", config, ...) -> ExportReport
    TransferConfig                      one frozen, validated config (units in names)
    errors: S3PumpError and its tree    see s3pump.errors
"""

from .config import TransferConfig
from .errors import (
    AccessDeniedError,
    CancelledError,
    CredentialsError,
    InvalidKeyError,
    NetworkError,
    NoSuchBucketError,
    RetryableStoreError,
    S3PumpError,
    SourceChangedError,
    SourceError,
    StoreError,
    ThrottlingError,
    UsageError,
)
from .export.report import ExportReport
from .jobs.export import export_table
from .jobs.sync import SyncReport, sync
from .jobs.upload import upload
from .report import FailedFile, UploadReport

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "CancelledError",
    "CredentialsError",
    "ExportReport",
    "FailedFile",
    "InvalidKeyError",
    "NetworkError",
    "NoSuchBucketError",
    "RetryableStoreError",
    "S3PumpError",
    "SourceChangedError",
    "SourceError",
    "StoreError",
    "SyncReport",
    "ThrottlingError",
    "TransferConfig",
    "UploadReport",
    "UsageError",
    "__version__",
    "export_table",
    "sync",
    "upload",
]
