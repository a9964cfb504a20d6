"""``s3://bucket/prefix`` parsing, and sanitizing of object keys.

Keys follow the S3 User Guide, "Naming Amazon S3 objects": at most 1,024 bytes
of UTF-8. s3pump also refuses keys that would be ambiguous or unsafe when
downloaded again: a leading ``/``, and ``.`` or ``..`` segments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidKeyError, UsageError

__all__ = ["S3Url", "join_key", "parse_s3_url", "sanitize_key"]

MAX_KEY_BYTES = 1024
# Bucket naming rules: S3 User Guide, "Bucket naming rules" (3-63 chars, lowercase, digits, . and -).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class S3Url:
    """A parsed destination: ``bucket`` and ``prefix`` (may be empty, may end with ``/``)."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key_url(self, key: str) -> str:
        """``s3://bucket/key`` for messages."""
        return f"s3://{self.bucket}/{key}"


def parse_s3_url(url: str) -> S3Url:
    """Parse ``s3://bucket[/prefix]``.

    Raises:
        UsageError: not an s3:// URL, or the bucket name breaks S3's naming rules.
    """
    if not url.startswith("s3://"):
        raise UsageError(f"{url!r} is not an S3 URL; use s3://bucket/prefix")
    rest = url[5:]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise UsageError(
            f"{url!r}: bucket name {bucket!r} is not valid (3-63 characters: a-z, 0-9, '.', '-')"
        )
    return S3Url(bucket=bucket, prefix=prefix)


def join_key(prefix: str, relative: str) -> str:
    """Join a destination prefix and a POSIX relative path with exactly one ``/``."""
    if not prefix:
        return relative
    if prefix.endswith("/"):
        return prefix + relative
    return f"{prefix}/{relative}"


def sanitize_key(key: str) -> str:
    """Return ``key`` if it is a safe S3 key, else raise.

    Raises:
        InvalidKeyError: leading ``/``, a ``.`` or ``..`` segment, an empty key, a name
            that is not valid UTF-8 (e.g. a non-UTF-8 file name), or over 1,024 bytes.
    """
    if not key:
        raise InvalidKeyError("empty key; give a file name or a prefix")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        shown = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise InvalidKeyError(f"key '{shown}' is not valid UTF-8; rename the file") from None
    if key.startswith("/"):
        raise InvalidKeyError(f"key {key!r} starts with '/'; S3 keys are relative")
    bounded = f"/{key}/"
    if "/./" in bounded or "/../" in bounded:  # a "." or ".." segment, without splitting every key
        raise InvalidKeyError(f"key {key!r} has a '.' or '..' segment; rename the path")
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"key {key[:60]!r}... is {len(encoded)} bytes; S3 allows at most {MAX_KEY_BYTES}"
        )
    if "\x00" in key:
        raise InvalidKeyError(f"key {key!r} contains a NUL byte")
    return key
