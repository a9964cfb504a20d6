"""The command line's flags mapped onto :class:`~s3pump.config.TransferConfig`: defaults < environment < flags.

A command hands :func:`config_from` the values of its option groups (and single options); only the
flags that name a config field are read, sizes, rates, durations and ``--concurrency auto`` parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import TransferConfig
from ..errors import UsageError
from ..units import parse_duration_s, parse_size_bytes

__all__ = ["config_from"]

#: flag parameter -> TransferConfig field, for the flags whose names differ
_FIELDS = {"part_size": "part_size_bytes", "bwlimit": "max_bandwidth_bps", "connect_timeout": "connect_timeout_s",
           "read_timeout": "read_timeout_s"}
#: every TransferConfig field a flag can set
_CONFIG_FLAGS = frozenset({
    "endpoint_url", "region", "profile", "concurrency", "part_size", "checksum_algorithm", "content_type", "acl",
    "sse", "sse_kms_key_id", "storage_class", "metadata", "follow_symlinks", "max_rps", "rps_burst", "bwlimit",
    "min_concurrency", "max_concurrency", "connect_timeout", "read_timeout", "cache_control", "content_encoding",
    "content_disposition", "content_language", "expires", "tagging", "ca_bundle", "preserve_attrs",
    "normalize_keys",
})


def config_from(*values: Mapping[str, Any], **overrides: Any) -> TransferConfig:
    """Defaults < environment < flags: the config of a command's option values (its groups'
    :class:`~s3pump.commands.groups.Opts` and single options, by parameter name; only the flags above
    are read; ``overrides`` are config fields set as given). Sizes, rates, durations and
    ``--concurrency auto`` are parsed here; ``--no-verify-ssl`` is warned about on stderr.

    Raises:
        UsageError: a flag's value is malformed.
    """
    params: dict[str, Any] = {}
    for part in values:
        params.update(part)
    flags: dict[str, Any] = {_FIELDS.get(k, k): v for k, v in params.items() if k in _CONFIG_FLAGS}
    flags.update(overrides)
    if params.get("no_verify_ssl"):
        import sys

        flags["verify_ssl"] = False
        print("s3pump: warning: --no-verify-ssl: the endpoint's TLS certificate is not checked; anyone on "
              "the way can read and change the data", file=sys.stderr)
    concurrency = flags.get("concurrency")
    if isinstance(concurrency, str):
        if concurrency.lower() == "auto":
            flags["concurrency"] = None
            flags["adaptive_concurrency"] = True
        elif concurrency.isdigit():
            flags["concurrency"] = int(concurrency)
        else:
            raise UsageError(f"--concurrency {concurrency!r}: give a number or 'auto'")
    for name in ("follow_symlinks", "preserve_attrs"):
        if flags.get(name) is False:
            flags[name] = None  # an unset flag keeps the environment's value
    if isinstance(flags.get("normalize_keys"), str):
        flags["normalize_keys"] = flags["normalize_keys"].lower()
    if flags.get("max_bandwidth_bps") is not None:
        flags["max_bandwidth_bps"] = parse_size_bytes(flags["max_bandwidth_bps"], what="--bwlimit")
    for name in ("connect_timeout_s", "read_timeout_s"):
        if isinstance(flags.get(name), str):
            flags[name] = parse_duration_s(flags[name], what="--" + name[:-2].replace("_", "-"))
    if flags.get("expires"):
        flags["expires"] = _http_date(flags["expires"])
    if flags.get("part_size_bytes") is not None:
        flags["part_size_bytes"] = parse_size_bytes(flags["part_size_bytes"], what="--part-size")
    if "metadata" in flags:
        flags["metadata"] = _metadata_pairs(flags["metadata"]) or None
    return TransferConfig.from_env(**flags)


def _http_date(text: str) -> str:
    """``--expires``: an ISO 8601 time becomes an HTTP date; anything else is sent as given."""
    import datetime as dt
    from email.utils import format_datetime

    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return format_datetime(when if when.tzinfo else when.replace(tzinfo=dt.UTC), usegmt=True)


def _metadata_pairs(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise UsageError(f"--metadata {item!r}: use key=value")
        pairs.append((k, v))
    return tuple(pairs)
