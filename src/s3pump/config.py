"""TransferConfig: every knob of a run, in one frozen, validated dataclass.

Each field documents its default, its unit and the environment variable that
overrides the default (``TransferConfig.from_env()``). Command-line flags
override the environment.

Memory bound of a run (the formula the engine enforces)::

    part buffers  <= max_parts_in_flight * part_size_bytes
    queued paths  <= walk_queue_size entries (about 200 bytes each)
    total         ~= max_parts_in_flight * part_size_bytes + 100 MiB (interpreter, awscrt, boto3)

Single-part PUTs are read from disk by awscrt itself (``send_filepath``), so
small files cost no Python buffers.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError
from .units import GIB, MIB, parse_duration_s, parse_size_bytes

__all__ = ["CHECKSUM_ALGORITHMS", "MAX_PARTS", "MAX_PART_SIZE_BYTES", "MIN_PART_SIZE_BYTES", "TransferConfig"]

#: S3 allows 1 to 10,000 parts; see the S3 API reference, UploadPart.
MAX_PARTS = 10_000
#: Every part but the last is at least 5 MiB (S3 API reference, UploadPart).
MIN_PART_SIZE_BYTES = 5 * MIB
#: A part is at most 5 GiB (S3 API reference, UploadPart).
MAX_PART_SIZE_BYTES = 5 * GIB

CHECKSUM_ALGORITHMS = ("CRC32C", "CRC32", "CRC64NVME", "SHA1", "SHA256", "none")
ACLS = (
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
)
#: ``--normalize-keys``: keep a name's bytes, or Unicode NFC.
NORMALIZE_KEYS = ("none", "nfc")
SSE_MODES = ("AES256", "aws:kms", "aws:kms:dsse")


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """All settings of a transfer. Frozen; build a changed copy with :meth:`replace`.

    Raises:
        UsageError: on construction, if a value is out of range.
    """

    # --- where and who -------------------------------------------------------------
    endpoint_url: str | None = None
    """S3 endpoint, e.g. ``http://127.0.0.1:8333``. None: AWS S3 for ``region``.
    Env: ``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``."""
    region: str | None = None
    """Region used to sign requests. None: from the profile, then ``us-east-1``.
    Env: ``AWS_REGION``, then ``AWS_DEFAULT_REGION``."""
    profile: str | None = None
    """Named profile of ``~/.aws/config``. Env: ``AWS_PROFILE``."""
    access_key_id: str | None = field(default=None, repr=False)
    """Explicit credentials (e.g. for ``--embedded``). None: the standard chain
    (env, profile, SSO, container, IMDS). Never logged."""
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    """PEM file of the CA certificates that sign an https endpoint's certificate (a private CA: MinIO,
    Ceph, an inspecting proxy). None: the profile's ``ca_bundle``, else the system's trust store.
    Env: ``AWS_CA_BUNDLE``."""
    verify_ssl: bool = True
    """Check an https endpoint's certificate (``--no-verify-ssl`` turns it off, with a warning, as the
    aws cli's flag does)."""

    # --- concurrency and sizing -----------------------------------------------------
    concurrency: int = 64
    """Requests (single PUTs and parts) in flight at once (the start value when adaptive).
    Env: ``S3PUMP_CONCURRENCY`` (a number, or ``auto``)."""
    part_size_bytes: int = 8 * MIB
    """Part size of multipart uploads; grows so an object never needs over 10,000 parts.
    Env: ``S3PUMP_PART_SIZE``."""
    multipart_threshold_bytes: int = 8 * MIB
    """Files larger than this use a multipart upload. Env: ``S3PUMP_MULTIPART_THRESHOLD``."""
    max_parts_in_flight: int = 8
    """Parts buffered in memory at once across all multipart uploads; the memory bound is
    ``max_parts_in_flight * part_size_bytes``. Env: ``S3PUMP_MAX_PARTS_IN_FLIGHT``."""
    walk_queue_size: int = 10_000
    """Files discovered but not yet scheduled; bounds walk memory. Env: ``S3PUMP_WALK_QUEUE``."""

    # --- retries ---------------------------------------------------------------------
    max_attempts: int = 6
    """Attempts per request (1 = no retries). Env: ``S3PUMP_MAX_ATTEMPTS``."""
    backoff_base_s: float = 0.1
    """Backoff before retry n is uniform(0, min(backoff_max_s, backoff_base_s * 2**n))
    (exponential, full jitter). Env: ``S3PUMP_BACKOFF_BASE``."""
    backoff_max_s: float = 20.0
    """Ceiling of one backoff. Env: ``S3PUMP_BACKOFF_MAX``."""
    retry_budget: int = 500
    """Retry quota of the run, as in the AWS SDKs' standard mode: a retry costs 5 tokens
    (10 after a timeout), a success refunds 1. With the quota spent, requests get one
    attempt, so a dead server cannot cause a retry storm. Env: ``S3PUMP_RETRY_BUDGET``."""
    outage_tolerance_s: float = 60.0
    """An endpoint that has answered this run and then stops answering (connections refused or
    reset, requests timing out) is an outage: for this long, such retries wait with capped backoff
    (at most 5 s) and spend neither attempts nor the budget, so a short outage costs time, not
    files. 0 turns it off. Env: ``S3PUMP_OUTAGE_TOLERANCE``."""
    request_timeout_s: float = 300.0
    """A request still unanswered after this long is cancelled and retried. It is the cap:
    a request of n bytes times out after ``min(request_timeout_s, 15 s + n / 256 KiB/s)``, so a
    stalled small PUT is retried sooner. Env: ``S3PUMP_REQUEST_TIMEOUT``."""
    connect_timeout_s: float = 10.0
    """TCP connect timeout (aws: ``--cli-connect-timeout``). Env: ``S3PUMP_CONNECT_TIMEOUT``."""
    read_timeout_s: float = 10.0
    """How long a control request (HeadBucket, listings, multipart create/complete) may wait for
    the server's answer before it is retried (aws: ``--cli-read-timeout``). While the endpoint has
    never answered, s3pump says so on stderr and gives up after two attempts (exit 2).
    Env: ``S3PUMP_READ_TIMEOUT``."""

    # --- integrity -------------------------------------------------------------------
    checksum_algorithm: str = "CRC32C"
    """Checksum sent with every PUT and part (``x-amz-checksum-*``) so the server rejects a
    corrupted body. ``none`` for servers without checksum support. Env: ``S3PUMP_CHECKSUM``."""

    # --- object attributes (raw S3 headers) ----------------------------------------------
    content_type: str | None = None
    """Content-Type of every object. None: guessed from the file name."""
    acl: str | None = None
    """Canned ACL (``x-amz-acl``), e.g. ``bucket-owner-full-control``."""
    sse: str | None = None
    """Server-side encryption (``x-amz-server-side-encryption``): AES256 or aws:kms."""
    sse_kms_key_id: str | None = None
    """KMS key for ``sse=aws:kms`` (``x-amz-server-side-encryption-aws-kms-key-id``)."""
    storage_class: str | None = None
    """Storage class (``x-amz-storage-class``), e.g. STANDARD_IA."""
    metadata: tuple[tuple[str, str], ...] = ()
    """User metadata as ``x-amz-meta-<k>: <v>`` pairs (ASCII)."""
    cache_control: str | None = None
    """Cache-Control of every object, e.g. ``max-age=3600``."""
    content_encoding: str | None = None
    """Content-Encoding, e.g. ``gzip`` (s3pump sends the bytes as they are)."""
    content_disposition: str | None = None
    """Content-Disposition, e.g. ``attachment; filename="a.csv"``."""
    content_language: str | None = None
    """Content-Language, e.g. ``en-US``."""
    expires: str | None = None
    """Expires, an HTTP date; ISO 8601 (``2026-12-31T00:00:00Z``) is converted to one."""
    tagging: str | None = None
    """Object tags in URL-query form, ``k1=v1&k2=v2`` (``x-amz-tagging``)."""

    # --- local side ------------------------------------------------------------------
    follow_symlinks: bool = False
    """Follow symbolic links while walking; off by default (links are skipped)."""
    preserve_attrs: bool = False
    """``--preserve-attrs``: a file's object also carries its mode, owner and group as user metadata
    under the names of rclone's local backend metadata: ``x-amz-meta-mode`` (``st_mode`` in octal as
    rclone writes it, ``100644``), ``x-amz-meta-uid`` and ``x-amz-meta-gid`` (decimal), which
    ``rclone copy --metadata`` restores (the owner only as root). Off by default (as aws and rclone)."""
    normalize_keys: str = "none"
    """``--normalize-keys``: ``none`` keeps a file name's bytes in its key (a tree holding names not in
    Unicode NFC, as macOS writes them, is warned about once); ``nfc`` writes keys in NFC, so a macOS
    tree (NFD names) and a Linux tree (NFC) of the same files map to the same keys, and sync compares
    them that way."""

    # --- limits (engine/limits.py) -----------------------------------------------------
    max_rps: float | None = None
    """At most this many requests a second (token bucket); None: unlimited. Env: ``S3PUMP_MAX_RPS``."""
    rps_burst: int | None = None
    """Requests the rate limit lets through at once after a pause; None: max(1, max_rps / 10)."""
    max_bandwidth_bps: int | None = None
    """Upload bandwidth cap in bytes/s, summed over all requests and paced as bytes are sent
    (files, parts and streams alike); None: unlimited. Env: ``S3PUMP_BWLIMIT``."""
    adaptive_concurrency: bool = False
    """``--concurrency auto``: AIMD between ``min_concurrency`` and ``max_concurrency``, starting at
    ``concurrency``. Env: ``S3PUMP_CONCURRENCY=auto``."""
    min_concurrency: int = 4
    """Floor of adaptive concurrency."""
    max_concurrency: int = 256
    """Ceiling of adaptive concurrency."""

    def __post_init__(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise UsageError(message)

        need(1 <= self.concurrency <= 4096, f"concurrency must be 1..4096, got {self.concurrency}")
        need(
            MIN_PART_SIZE_BYTES <= self.part_size_bytes <= MAX_PART_SIZE_BYTES,
            f"part size must be 5 MiB..5 GiB (S3 UploadPart limits), got {self.part_size_bytes} bytes",
        )
        need(self.multipart_threshold_bytes >= 0, "multipart threshold must be >= 0")
        need(1 <= self.max_parts_in_flight <= 1024, "max parts in flight must be 1..1024")
        need(self.walk_queue_size >= 1, "walk queue size must be >= 1")
        need(1 <= self.max_attempts <= 100, f"max attempts must be 1..100, got {self.max_attempts}")
        need(self.backoff_base_s >= 0 and self.backoff_max_s >= 0, "backoff must be >= 0")
        need(self.retry_budget >= 0, "retry budget must be >= 0")
        need(self.max_rps is None or self.max_rps > 0, "--max-rps must be > 0")
        need(self.rps_burst is None or self.rps_burst >= 1, "--rps-burst must be >= 1")
        need(self.max_bandwidth_bps is None or self.max_bandwidth_bps >= 1024, "--bwlimit must be >= 1 KB/s")
        need(1 <= self.min_concurrency <= self.max_concurrency <= 4096,
             "need 1 <= --min-concurrency <= --max-concurrency <= 4096")
        need(self.request_timeout_s > 0 and self.connect_timeout_s > 0 and self.read_timeout_s > 0,
             "timeouts must be > 0")
        need(
            self.checksum_algorithm in CHECKSUM_ALGORITHMS,
            f"checksum must be one of {', '.join(CHECKSUM_ALGORITHMS)}, got {self.checksum_algorithm!r}",
        )
        need(self.normalize_keys in NORMALIZE_KEYS,
             f"--normalize-keys must be one of {', '.join(NORMALIZE_KEYS)}, got {self.normalize_keys!r}")
        need(self.acl is None or self.acl in ACLS, f"acl must be one of {', '.join(ACLS)}")
        need(self.sse is None or self.sse in SSE_MODES, f"sse must be one of {', '.join(SSE_MODES)}")
        need(
            self.sse_kms_key_id is None or (self.sse or "").startswith("aws:kms"),
            "--sse-kms-key-id needs --sse aws:kms",
        )
        for name in ("cache_control", "content_encoding", "content_disposition", "content_language", "expires",
                     "tagging"):
            value = getattr(self, name)
            need(value is None or (value.isascii() and value.isprintable()),
                 f"--{name.replace('_', '-')} {value!r}: use printable ASCII")
        if self.tagging is not None:
            need(all(k for k, _, _ in (pair.partition("=") for pair in self.tagging.split("&"))),
                 f"--tagging {self.tagging!r}: use key1=value1&key2=value2")
        for k, v in self.metadata:
            need(k.isascii() and v.isascii() and k != "", f"metadata {k}={v}: keys and values must be ASCII")
        if self.endpoint_url is not None:
            need(
                self.endpoint_url.startswith(("http://", "https://")),
                f"endpoint URL must start with http:// or https://, got {self.endpoint_url!r}",
            )

    def replace(self, **changes: Any) -> TransferConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> TransferConfig:
        """Defaults, then the profile's aws cli ``s3`` settings (``max_concurrent_requests``,
        ``multipart_chunksize``, ``multipart_threshold``, ``max_bandwidth``; see
        :func:`s3pump.awsconfig.profile_transfer_defaults`), then the environment variables named
        on each field, then ``overrides`` (None values in ``overrides`` are ignored, so CLI flags
        left unset keep the env value). The profile is read only from the real environment
        (``env`` None): with an explicit ``env`` the AWS config files are not consulted.

        Raises:
            UsageError: a value is out of range or not a number/size/duration.
        """
        e = os.environ if env is None else env
        values: dict[str, Any] = {}
        profile = overrides.get("profile") or e.get("AWS_PROFILE") or None
        if env is None:
            from .awsconfig import profile_transfer_defaults

            values.update(profile_transfer_defaults(profile))
        ignore = e.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true"
        endpoint = None if ignore else e.get("AWS_ENDPOINT_URL_S3") or e.get("AWS_ENDPOINT_URL")
        if endpoint:
            values["endpoint_url"] = endpoint
        region = e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION")
        if region:
            values["region"] = region
        if e.get("AWS_PROFILE"):
            values["profile"] = e["AWS_PROFILE"]
        if e.get("AWS_CA_BUNDLE"):
            values["ca_bundle"] = e["AWS_CA_BUNDLE"]
        if e.get("S3PUMP_CONCURRENCY", "").lower() == "auto":
            values["adaptive_concurrency"] = True
            e = {k: v for k, v in e.items() if k != "S3PUMP_CONCURRENCY"}
        for name, var, conv in _ENV_FIELDS:
            if e.get(var):
                values[name] = conv(e[var])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_ENV_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("concurrency", "S3PUMP_CONCURRENCY", int),
    ("part_size_bytes", "S3PUMP_PART_SIZE", parse_size_bytes),
    ("multipart_threshold_bytes", "S3PUMP_MULTIPART_THRESHOLD", parse_size_bytes),
    ("max_parts_in_flight", "S3PUMP_MAX_PARTS_IN_FLIGHT", int),
    ("walk_queue_size", "S3PUMP_WALK_QUEUE", int),
    ("max_attempts", "S3PUMP_MAX_ATTEMPTS", int),
    ("backoff_base_s", "S3PUMP_BACKOFF_BASE", parse_duration_s),
    ("backoff_max_s", "S3PUMP_BACKOFF_MAX", parse_duration_s),
    ("retry_budget", "S3PUMP_RETRY_BUDGET", int),
    ("outage_tolerance_s", "S3PUMP_OUTAGE_TOLERANCE", parse_duration_s),
    ("request_timeout_s", "S3PUMP_REQUEST_TIMEOUT", parse_duration_s),
    ("connect_timeout_s", "S3PUMP_CONNECT_TIMEOUT", parse_duration_s),
    ("read_timeout_s", "S3PUMP_READ_TIMEOUT", parse_duration_s),
    ("checksum_algorithm", "S3PUMP_CHECKSUM", str),
    ("max_rps", "S3PUMP_MAX_RPS", float),
    ("max_bandwidth_bps", "S3PUMP_BWLIMIT", parse_size_bytes),
)
