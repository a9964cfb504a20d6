"""Object stores behind one protocol: real S3 (awscrt + boto3) and an in-memory twin for tests."""

from .base import (
    CompletedPart,
    MultipartUploadInfo,
    ObjectAttributes,
    ObjectInfo,
    PutResult,
    Request,
    Store,
)
from .memory import MemoryStore
from .s3 import S3Store

__all__ = [
    "CompletedPart",
    "MemoryStore",
    "MultipartUploadInfo",
    "ObjectAttributes",
    "ObjectInfo",
    "PutResult",
    "Request",
    "S3Store",
    "Store",
]
