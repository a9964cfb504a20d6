"""The command line's options, declared once, grouped into help panels, and mapped onto config.

Each option's help ends with its default and the environment variable that sets it, written as
``\\[default: …]`` / ``\\[env: …]`` (escaped: rich would take the brackets for markup). The
commands in :mod:`s3pump.cli` take these as parameters and hand their values to :func:`config_from`,
which maps flag names onto :class:`~s3pump.config.TransferConfig` fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .config import TransferConfig
from .errors import UsageError
from .units import parse_duration_s, parse_size_bytes

__all__ = ["config_from", "note"]

WHERE = "Where (endpoint, credentials)"
WHAT = "What to send"
SPEED = "How fast"
SAFETY = "Safety and resume"
OUTPUT = "Output"


def note(text: str, *, default: object = None, env: str | None = None) -> str:
    """``text`` with its default and environment variable, brackets escaped for rich."""
    if default is not None:
        text += f" \\[default: {default}]"
    if env:
        text += f" \\[env: {env}]"
    return text


def _opt(*names: str, help: str, panel: str, metavar: str | None = None, **kw: Any) -> Any:
    # a flag shows no type column (Typer would print "<bool>")
    return typer.Option(*names, help=help, rich_help_panel=panel, metavar=metavar if metavar is not None else "",
                        show_default=False, **kw)


# ---- where ----
Endpoint = Annotated[str | None, _opt("--endpoint-url", metavar="URL", panel=WHERE, help=note(
    "S3 endpoint, e.g. http://127.0.0.1:8333", default="the profile's, else AWS",
    env="AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL"))]
Region = Annotated[str | None, _opt("--region", metavar="REGION", panel=WHERE, help=note(
    "Signing region", default="from the profile, else us-east-1", env="AWS_REGION"))]
Profile = Annotated[str | None, _opt("--profile", metavar="NAME", panel=WHERE, help=note(
    "Profile of ~/.aws/config", env="AWS_PROFILE"))]
CaBundle = Annotated[str | None, _opt("--ca-bundle", metavar="FILE", panel=WHERE, help=note(
    "PEM file of the CA certificates of an https endpoint (a private CA)",
    default="the profile's ca_bundle, else the system's", env="AWS_CA_BUNDLE"))]
NoVerifySsl = Annotated[bool, _opt("--no-verify-ssl", panel=WHERE, help="Do not check the https endpoint's "
                                   "certificate (warned on stderr)")]
ConnectTimeout = Annotated[str | None, _opt("--connect-timeout", "--cli-connect-timeout", metavar="DURATION",
                                             panel=WHERE, help=note("TCP connect timeout", default="10s",
                                                                    env="S3PUMP_CONNECT_TIMEOUT"))]
ReadTimeout = Annotated[str | None, _opt("--read-timeout", "--cli-read-timeout", metavar="DURATION", panel=WHERE,
                                         help=note("How long to wait for an answer; an endpoint that never "
                                                   "answers ends the run after two tries", default="10s",
                                                   env="S3PUMP_READ_TIMEOUT"))]
Embedded = Annotated[bool, _opt("--embedded", panel=WHERE, help="Use the local SeaweedFS (started if needed; "
                                "creates the bucket)")]
# ---- what ----
ContentType = Annotated[str | None, _opt("--content-type", metavar="TYPE", panel=WHAT, help=note(
    "Content-Type", default="from the name"))]
Acl = Annotated[str | None, _opt("--acl", metavar="ACL", panel=WHAT, help="Canned ACL, e.g. bucket-owner-full-control")]
Sse = Annotated[str | None, _opt("--sse", metavar="AES256|aws:kms", panel=WHAT, help="Server-side encryption")]
SseKms = Annotated[str | None, _opt("--sse-kms-key-id", metavar="KEY", panel=WHAT, help="KMS key ID for --sse aws:kms")]
StorageClass = Annotated[str | None, _opt("--storage-class", metavar="CLASS", panel=WHAT,
                                          help="e.g. STANDARD_IA, GLACIER_IR")]
Metadata = Annotated[list[str] | None, _opt("--metadata", metavar="K=V", panel=WHAT,
                                            help="User metadata (repeatable)")]
CacheControl = Annotated[str | None, _opt("--cache-control", metavar="VALUE", panel=WHAT,
                                          help="Cache-Control, e.g. max-age=3600")]
ContentEncoding = Annotated[str | None, _opt("--content-encoding", metavar="VALUE", panel=WHAT,
                                             help="Content-Encoding, e.g. gzip")]
ContentDisposition = Annotated[str | None, _opt("--content-disposition", metavar="VALUE", panel=WHAT,
                                                help="Content-Disposition")]
ContentLanguage = Annotated[str | None, _opt("--content-language", metavar="VALUE", panel=WHAT,
                                             help="Content-Language, e.g. en-US")]
Expires = Annotated[str | None, _opt("--expires", metavar="TIME", panel=WHAT,
                                     help="Expires: an ISO 8601 time or an HTTP date")]
Tagging = Annotated[str | None, _opt("--tagging", metavar="K=V&K2=V2", panel=WHAT, help="Object tags")]
Include = Annotated[list[str] | None, _opt("--include", metavar="GLOB", panel=WHAT, help="Glob of paths to take; "
                                           "with --exclude, applied in order, the last match wins (as aws)")]
Exclude = Annotated[list[str] | None, _opt("--exclude", metavar="GLOB", panel=WHAT, help="Glob of paths to skip; "
                                           "with --include, applied in order, the last match wins (as aws)")]
FollowSymlinks = Annotated[bool, _opt("--follow-symlinks", panel=WHAT, help="Follow symbolic links")]
PreserveAttrs = Annotated[bool, _opt("--preserve-attrs", panel=WHAT, help=(
    "Also store each file's mode, uid and gid as metadata (rclone's names: mode, uid, gid), which "
    "rclone copy --metadata restores"))]
NormalizeKeys = Annotated[str | None, _opt("--normalize-keys", metavar="nfc|none", panel=WHAT, help=note(
    "Unicode form of the keys: nfc (a macOS tree's NFD names and a Linux tree's NFC names give the same "
    "keys) or none (a name's bytes; a tree holding NFD names is warned about)", default="none"))]
# ---- how fast ----
Concurrency = Annotated[str | None, _opt("--concurrency", "-c", metavar="N|auto", panel=SPEED, help=note(
    "Requests in flight, or 'auto' (adaptive)", default=64, env="S3PUMP_CONCURRENCY"))]
PartSize = Annotated[str | None, _opt("--part-size", metavar="SIZE", panel=SPEED, help=note(
    "Multipart part size, e.g. 64MiB", default="8MiB", env="S3PUMP_PART_SIZE"))]
MaxRps = Annotated[float | None, _opt("--max-rps", metavar="N", panel=SPEED, help=note(
    "At most N requests a second", env="S3PUMP_MAX_RPS"))]
RpsBurst = Annotated[int | None, _opt("--rps-burst", metavar="N", panel=SPEED, help=note(
    "Requests allowed at once after a pause", default="max-rps/10"))]
BwLimit = Annotated[str | None, _opt("--bwlimit", metavar="RATE", panel=SPEED, help=note(
    "Upload bandwidth cap in bytes/s, e.g. 10M (10^6), 8MiB (2^20)", env="S3PUMP_BWLIMIT"))]
Cluster = Annotated[str | None, _opt("--cluster", metavar="ADDRESS", panel=SPEED, help=note(
    "Run on Dask workers: local:N (N worker processes here) or a scheduler, tcp://host:8786 "
    "(needs s3pump\\[dask]; see docs/cluster.md)"))]
MinConcurrency = Annotated[int | None, _opt("--min-concurrency", metavar="N", panel=SPEED, help=note(
    "Floor for --concurrency auto", default=4))]
MaxConcurrency = Annotated[int | None, _opt("--max-concurrency", metavar="N", panel=SPEED, help=note(
    "Ceiling for --concurrency auto", default=256))]
# ---- safety ----
Checksum = Annotated[str | None, _opt("--checksum-algorithm", metavar="ALGO", panel=SAFETY, help=note(
    "CRC32C, CRC32, CRC64NVME, SHA1, SHA256, or none (servers without checksums)", default="CRC32C"))]
FailedList = Annotated[Path | None, _opt("--failed-list", metavar="FILE", panel=SAFETY, help=note(
    "Where to write the failed files", default="the state directory", env="S3PUMP_STATE_DIR"))]
# ---- output ----
Json = Annotated[bool, _opt("--json", panel=OUTPUT, help="One JSON event per object and a summary on stdout")]
NoProgress = Annotated[bool, _opt("--no-progress", panel=OUTPUT, help="No progress display")]
ProgressMode = Annotated[str | None, _opt("--progress", metavar="bar|plain|none", panel=OUTPUT, help=note(
    "bar (a live line), plain (a line every 5 s, for logs and CI) or none", default="bar on a terminal"))]
MetricsPort = Annotated[int | None, _opt("--metrics-port", metavar="PORT", panel=OUTPUT,
                                         help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics")]
MetricsFile = Annotated[Path | None, _opt("--metrics-file", metavar="FILE", panel=OUTPUT,
                                          help="Write the final summary and metrics as JSON")]
Debug = Annotated[bool, _opt("--debug", panel=OUTPUT, help="Debug logs on stderr (secrets redacted)")]

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


def config_from(params: dict[str, Any], **overrides: Any) -> TransferConfig:
    """Defaults < environment < flags: the config of a command's parameters (``locals()`` of the
    command; only the flags above are read). Sizes, rates and ``--concurrency auto`` are parsed here.

    Raises:
        UsageError: a flag's value is malformed.
    """
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
