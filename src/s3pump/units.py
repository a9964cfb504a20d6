"""Parsing and formatting of byte sizes, rates and durations.

Suffixes follow SI and IEC: ``K``/``KB`` = 1,000, ``Ki``/``KiB`` = 1,024, and
likewise M, G, T. So ``--bwlimit 20M`` is 20,000,000 bytes/s and
``--part-size 8MiB`` is 8,388,608 bytes.

The aws cli's ``s3`` settings in ``~/.aws/config`` (``multipart_chunksize = 64MB``) use
binary units for every spelling (``KB`` = ``KiB`` = 1,024): :func:`parse_aws_size_bytes`
reads them so (AWS CLI User Guide, "AWS CLI S3 configuration").
"""

from __future__ import annotations

import re

from .errors import UsageError

__all__ = [
    "GIB", "KIB", "MIB", "format_bytes", "format_rate", "parse_aws_size_bytes", "parse_duration_s", "parse_size_bytes",
]

#: Binary units in bytes, the one home of these constants: ``8 * MIB`` is 8,388,608 bytes.
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_DURATION_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_size_bytes(text: str | int, *, what: str = "size") -> int:
    """Parse ``"4KiB"``, ``"8MiB"``, ``"1.5G"``, ``"100"`` into bytes (``K``/``M``/``G`` are powers of
    1000, ``KiB``/``MiB``/``GiB`` powers of 1024).

    Raises:
        UsageError: the text is not a size.
    """
    return _parse_size(text, what, "use e.g. 4KiB, 8MiB, 10M or 1G", aws=False)


def parse_aws_size_bytes(text: str | int, *, what: str = "size") -> int:
    """Parse a size as the aws cli reads its ``s3`` config: ``"64MB"`` and ``"64MiB"`` are both
    64 * 1024**2 bytes, ``"1048576"`` is bytes.

    Raises:
        UsageError: the text is not a size.
    """
    return _parse_size(text, what, "use e.g. 8MB (aws: MB = MiB) or 8388608", aws=True)


def _parse_size(text: str | int, what: str, hint: str, *, aws: bool) -> int:
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(text)
    if not m:
        raise UsageError(f"{what}: {text!r} is not a size; {hint}")
    number, prefix, binary, _ = m.groups()
    base = 1024 if binary or aws else 1000
    return int(float(number) * base ** _POWERS[prefix.lower()])


def parse_duration_s(text: str | float, *, what: str = "duration") -> float:
    """Parse ``"30s"``, ``"5m"``, ``"24h"``, ``"250ms"`` or a bare number of seconds.

    Raises:
        UsageError: the text is not a duration.
    """
    if isinstance(text, int | float):
        return float(text)
    m = _DURATION_RE.match(text)
    if not m:
        raise UsageError(f"{what}: {text!r} is not a duration; use e.g. 30s, 5m or 24h")
    number, unit = m.groups()
    return float(number) * _DURATION_S[(unit or "s").lower()]


def format_rate(bytes_per_s: float) -> str:
    """A rate in the units of :func:`format_bytes` (one unit system for sizes and rates):
    ``format_rate(12582912) == "12.0 MiB/s"``."""
    return format_bytes(bytes_per_s) + "/s"


def format_bytes(n: float) -> str:
    """Format a byte count with IEC units: ``format_bytes(8388608) == "8.0 MiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover
