"""What the mixins of :class:`~s3pump.store.s3.S3Store` (``s3_reads.py``, ``s3_multipart.py``, ``s3_buckets.py``)
use of it: one protocol, so each mixin's methods are checked against the store they run in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..awsconfig import AwsSettings
from ..retry import RetryPolicy
from .base import ObjectAttributes

__all__ = ["S3Host"]


class S3Host(Protocol):
    """The store's retry policy, region and settings, its checksum algorithm, and its two ways of sending a
    request: awscrt (``_crt_call``) and botocore (``_call``, ``_call_once`` on ``_boto``)."""

    retry: RetryPolicy
    region: str
    settings: AwsSettings
    _checksum_name: str | None

    @property
    def _boto(self) -> Any: ...

    def _crt_call(self, method: str, bucket: str, key: str | None, query: str, operation: str, *,
                  body: bytes = b"", headers: Sequence[tuple[str, str]] = (),
                  retry: bool = False) -> tuple[int, list[tuple[str, str]], bytes]: ...

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any: ...

    def _call_once(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any: ...

    def _new_object_headers(self, attrs: ObjectAttributes) -> list[tuple[str, str]]: ...

    def _delete(self, bucket: str, objects: list[dict[str, str]]) -> None: ...
