"""The command line's shared options, declared once, in their help panels, and in groups.

Each option's help ends with its default and the environment variable that sets it, written as
``\\[default: …]`` / ``\\[env: …]`` (escaped: rich would take the brackets for markup). A command
takes a single option as a parameter annotated with its type here (``debug: Debug = False``), or a
whole group as one parameter defaulting to the group (``where: Opts = WHERE_OPTS``; see
:mod:`s3pump.commands.groups`), and hands the values to :func:`s3pump.commands.config.config_from`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .groups import OptionGroup

__all__ = ["ENDPOINT_OPTS", "FILTER_OPTS", "HEADER_OPTS", "METRICS_OPTS", "OBJECT_OPTS", "OUTPUT_OPTS", "RATE_OPTS",
           "SCALE_OPTS", "SPEED_OPTS", "TREE_OPTS", "WHERE_OPTS", "note"]

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

# ---- the groups commands share (each in its panel's order; a group is spliced where a parameter defaults to it)
ENDPOINT_OPTS = OptionGroup(endpoint_url=(Endpoint, None), region=(Region, None), profile=(Profile, None),
                            ca_bundle=(CaBundle, None), no_verify_ssl=(NoVerifySsl, False))
WHERE_OPTS = ENDPOINT_OPTS + OptionGroup(embedded=(Embedded, False), connect_timeout=(ConnectTimeout, None),
                                         read_timeout=(ReadTimeout, None))
FILTER_OPTS = OptionGroup(include=(Include, None), exclude=(Exclude, None))
TREE_OPTS = OptionGroup(follow_symlinks=(FollowSymlinks, False), preserve_attrs=(PreserveAttrs, False),
                        normalize_keys=(NormalizeKeys, None))
HEADER_OPTS = OptionGroup(content_type=(ContentType, None), acl=(Acl, None), sse=(Sse, None),
                          sse_kms_key_id=(SseKms, None), storage_class=(StorageClass, None),
                          metadata=(Metadata, None))
OBJECT_OPTS = HEADER_OPTS + OptionGroup(
    cache_control=(CacheControl, None), content_encoding=(ContentEncoding, None),
    content_disposition=(ContentDisposition, None), content_language=(ContentLanguage, None),
    expires=(Expires, None), tagging=(Tagging, None))
RATE_OPTS = OptionGroup(max_rps=(MaxRps, None), rps_burst=(RpsBurst, None), bwlimit=(BwLimit, None))
SCALE_OPTS = OptionGroup(min_concurrency=(MinConcurrency, None), max_concurrency=(MaxConcurrency, None),
                         cluster=(Cluster, None))
SPEED_OPTS = OptionGroup(concurrency=(Concurrency, None), part_size=(PartSize, None)) + RATE_OPTS + SCALE_OPTS
METRICS_OPTS = OptionGroup(metrics_port=(MetricsPort, None), metrics_file=(MetricsFile, None),
                           progress=(ProgressMode, None))
OUTPUT_OPTS = METRICS_OPTS + OptionGroup(json_output=(Json, False), no_progress=(NoProgress, False),
                                         debug=(Debug, False))
