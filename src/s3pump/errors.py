"""The s3pump error tree.

Every error s3pump raises or reports is one of these. Each class says whether
retrying the same request can succeed (``retryable``) and which process exit
code it maps to when it ends a run (``exit_code``)::

    S3PumpError                         fatal    exit 1
    ├── UsageError                      fatal    exit 2   bad flags, URL or config value
    │   ├── InvalidKeyError             fatal    exit 2   a key that fails sanitizing
    │   ├── JournalBusyError            fatal    exit 2   another live run holds this command's journal
    │   ├── PathNotFoundError           fatal    exit 2   a PATH argument that does not exist
    │   │                                                 (also a SourceNotFoundError)
    │   ├── KeyClashError               fatal    exit 2   two sources of one run map to one key
    │   ├── LocalStateError             fatal    exit 2   state dir, journal or failed-list not writable
    │   │   └── OpenFilesError          fatal    exit 2   the process ran out of file descriptors (EMFILE/ENFILE)
    │   ├── DeleteLimitError            fatal    exit 2   sync --delete would delete over --max-delete
    │   └── WorkerMismatchError         fatal    exit 2   a --cluster worker sees other files
    ├── SourceError                     fatal    exit 1   the local side
    │   ├── SourceNotFoundError         fatal    exit 1   missing path
    │   ├── SourceUnreadableError       fatal    exit 1   permission denied, I/O error, symlink loop
    │   ├── SourceChangedError          fatal    exit 1   file changed while it was uploaded
    │   └── SourceTruncatedError        fatal    exit 1   a stream ended short of --expected-size
    ├── StoreError                      fatal    exit 1   the remote side (S3 or a compatible store)
    │   ├── RetryableStoreError         retryable
    │   │   ├── ThrottlingError         retryable         503 SlowDown, 429 TooManyRequests
    │   │   ├── ServerError             retryable         other 5xx, 200-with-error on Complete
    │   │   ├── RequestTimeoutError     retryable         400 RequestTimeout, a stalled request
    │   │   ├── NetworkError            retryable         connection refused or reset
    │   │   └── BadDigestError          retryable         body corrupted in transit (checksum)
    │   └── FatalStoreError             fatal
    │       ├── NoSuchBucketError       fatal    exit 2   the bucket does not exist
    │       ├── CredentialsError        fatal    exit 2   bad/expired credentials, bad signature
    │       ├── WrongRegionError        fatal    exit 2   signed for another region than the bucket's
    │       ├── EndpointUnreachableError fatal   exit 2   the endpoint refused or never answered
    │       │   └── CertificateError    fatal    exit 2   an https endpoint's certificate is not trusted
    │       ├── AccessDeniedError       fatal             403 AccessDenied on one key
    │       ├── NoSuchUploadError       fatal             multipart upload ID no longer exists
    │       ├── ClockSkewError          fatal    exit 2   403 RequestTimeTooSkewed (after one retry)
    │       ├── ClientLibraryError      fatal             an awscrt error s3pump has no class for (a defect)
    │       ├── ConcurrentChangeError   fatal             a bucket setting changed under a read-modify-write
    │       └── BrokenListingError      fatal    exit 1   a listing truncated without a token, or looping
    ├── WorkerLostError                 fatal    exit 1   a --cluster shard's workers all died
    └── CancelledError                  fatal    exit 130 Ctrl-C / SIGTERM

Messages are one line, name the file, key or bucket, and say what to do.

``stops_run``: an error that no other item can escape (a skewed clock, no file descriptors left)
ends the whole run with its exit code, not just the item it hit.
"""

from __future__ import annotations

import errno
import re
import resource  # imported now: when the descriptors have run out, an import cannot open its file

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
    "ThrottlingError",
    "UsageError",
    "WorkerLostError",
    "WorkerMismatchError",
    "WrongRegionError",
    "is_out_of_files",
    "open_files_error",
    "source_os_error",
]

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


class S3PumpError(Exception):
    """Base of every s3pump error. Fatal unless a subclass says otherwise."""

    retryable: bool = False
    exit_code: int = EXIT_FAILURES
    #: the whole run stops for it (see the module docstring); the one line is printed once
    stops_run: bool = False


class UsageError(S3PumpError):
    """Bad command-line flags, destination URL or configuration value."""

    exit_code = EXIT_USAGE


class InvalidKeyError(UsageError):
    """A key fails sanitizing: leading ``/``, a ``..`` segment, not UTF-8, or over 1,024 bytes.

    S3 keys are at most 1,024 bytes of UTF-8; see the S3 User Guide, "Naming objects".
    """


class JournalBusyError(UsageError):
    """Another live run of the same command (same sources, destination and endpoint) holds its
    resume journal; running both would mix their uploads. Wait for it, or stop it."""


class KeyClashError(UsageError):
    """Two or more sources of one run map to the same key; nothing was uploaded.

    The message has one line per key (``s3://bucket/key: a and b map to this key; ...``).
    """


class LocalStateError(UsageError):
    """A local file s3pump keeps cannot be written: the state directory, the resume journal (read-only,
    or its disk full) or the failed-list. The message names the path and what to do.

    Raised before any upload when the file cannot be created; when it fails mid-run, the run stops
    first (in-flight multipart uploads are aborted, so none is left open).
    """


class DeleteLimitError(UsageError):
    """``sync --delete`` would delete more than ``--max-delete`` allows: nothing was deleted."""


class OpenFilesError(LocalStateError):
    """The process ran out of file descriptors (EMFILE: ``ulimit -n``; ENFILE: the system's table).
    Nothing a retry of the same file can fix: the run stops with one line naming the limit."""

    stops_run = True


def open_files_error(err: OSError | None = None, where: str = "") -> OpenFilesError:
    """The one-line :class:`OpenFilesError` for an EMFILE/ENFILE (``where``: the path being opened)."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = f"{soft}" if soft != resource.RLIM_INFINITY else "unlimited"
    except (OSError, ValueError):
        limit = "?"
    at = f" (opening {where})" if where else ""
    if err is not None and err.errno == errno.ENFILE:
        return OpenFilesError(f"the system ran out of open files (ENFILE){at}; close other programs or raise "
                              "fs.file-max, or lower --concurrency")
    return OpenFilesError(f"too many open files: this process may open only {limit} (ulimit -n){at}; raise it "
                          "(ulimit -n 4096) or lower --concurrency")


def source_os_error(path: str, err: OSError, advice: str = "") -> SourceUnreadableError | OpenFilesError:
    """A source that cannot be opened or read: :class:`SourceUnreadableError` for that item, or, when
    the process is out of file descriptors, the run-wide :class:`OpenFilesError`."""
    if is_out_of_files(err):
        return open_files_error(err, path)
    return SourceUnreadableError(f"{path}: {err.strerror or err}{advice}")


def is_out_of_files(err: BaseException) -> bool:
    """Whether ``err`` is an EMFILE/ENFILE (an OSError, or one in its cause/context chain)."""
    seen = 0
    e: BaseException | None = err
    while e is not None and seen < 8:
        if isinstance(e, OSError) and e.errno in (errno.EMFILE, errno.ENFILE):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


class WorkerMismatchError(UsageError):
    """A ``--cluster`` worker sees a sampled source path with another size or mtime than the
    coordinator (or not at all): the nodes do not share the tree. Raised before any upload."""


class WorkerLostError(S3PumpError):
    """A ``--cluster`` shard did not finish: the workers that ran it died (more often than
    ``distributed.scheduler.allowed-failures``). Its files are reported failed; a rerun retries them."""


class SourceError(S3PumpError):
    """Something is wrong on the local side (a file, a directory, stdin)."""


class SourceNotFoundError(SourceError):
    """A source path does not exist."""


class SourceUnreadableError(SourceError):
    """A source path exists but cannot be read (permissions, I/O error, symlink loop)."""


class PathNotFoundError(UsageError, SourceNotFoundError):
    """A path named on the command line does not exist: a usage error, as in the aws cli
    (``the path nosuchfile.txt does not exist``, exit 2, nothing sent)."""

    exit_code = EXIT_USAGE


class SourceChangedError(SourceError):
    """A file changed size or mtime while it was being uploaded; its object was not completed."""


class SourceTruncatedError(SourceError):
    """A stream ended with a byte count other than the one expected; no object was created."""


class StoreError(S3PumpError):
    """The object store answered with an error, or could not be reached.

    ``status`` is the HTTP status (``None`` for transport errors), ``code`` the
    S3 error code (e.g. ``SlowDown``) or the transport error name.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RetryableStoreError(StoreError):
    """A store error that the same request may survive if retried after a backoff."""

    retryable = True


class ThrottlingError(RetryableStoreError):
    """503 SlowDown or 429: the store asks the client to slow down."""


class ServerError(RetryableStoreError):
    """A 5xx other than SlowDown, or a 200 response that carries an error body."""


class RequestTimeoutError(RetryableStoreError):
    """400 RequestTimeout, or a request that stalled past s3pump's own timeout."""


class NetworkError(RetryableStoreError):
    """The connection was refused, reset or closed before a response arrived."""


class BadDigestError(RetryableStoreError):
    """The store rejected the body because its checksum did not match (corrupted in transit)."""


class FatalStoreError(StoreError):
    """A store error that retrying the same request cannot fix."""


class NoSuchBucketError(FatalStoreError):
    """The bucket does not exist. Create it, check the name, or use ``--embedded``."""

    exit_code = EXIT_USAGE


class CredentialsError(FatalStoreError):
    """Credentials are missing, wrong or expired, or the request signature does not match."""

    exit_code = EXIT_USAGE


class WrongRegionError(FatalStoreError):
    """The server says the bucket is in another region than the one requests are signed for (400
    AuthorizationHeaderMalformed with its ``<Region>``, a 301 PermanentRedirect, or a 400/301 with an
    ``x-amz-bucket-region`` header; S3 API reference, "Error responses"): not a wrong secret key, and
    no request of the run can succeed. One line naming the region, exit 2."""

    exit_code = EXIT_USAGE
    stops_run = True


class EndpointUnreachableError(FatalStoreError):
    """The endpoint refused the connection or never answered a request, even after a retry: a
    wrong ``--endpoint-url``/profile endpoint, a server that is down, or a firewall."""

    exit_code = EXIT_USAGE


class CertificateError(EndpointUnreachableError):
    """An https endpoint's certificate is not trusted (an unknown CA, an expired certificate, another
    host's name): give its CA with ``--ca-bundle``/``AWS_CA_BUNDLE``/the profile's ``ca_bundle``."""


class AccessDeniedError(FatalStoreError):
    """403 AccessDenied for this key: a policy refuses the request."""


class NoSuchUploadError(FatalStoreError):
    """The multipart upload ID is unknown to the store (completed, aborted or expired)."""


class ClockSkewError(FatalStoreError):
    """403 RequestTimeTooSkewed: the server finds the request's time too far from its own (AWS allows
    15 minutes). One retry (a re-signed request) is allowed; then no request of the run can succeed:
    it stops, naming the difference between the local clock and the server's."""

    exit_code = EXIT_USAGE
    stops_run = True


class ClientLibraryError(FatalStoreError):
    """An error of the S3 client library (awscrt) that s3pump has no class for: fatal for the item,
    a defect to report; the library's error name is only in the ``--debug`` log."""


class ConcurrentChangeError(FatalStoreError):
    """A bucket configuration s3pump read, changed and wrote back (lifecycle rules) was changed by
    someone else meanwhile: what the server holds is not what s3pump wrote. Check and run again."""


class BrokenListingError(FatalStoreError):
    """A paginated listing the server cannot complete: a page says it is truncated but gives no
    continuation token or marker, or a continuation comes a second time (the listing loops). Raised
    before the caller acts on the partial listing (``sync`` plans and deletes nothing). See
    :mod:`s3pump.store.paging`."""


class CancelledError(S3PumpError):
    """The run was cancelled (Ctrl-C, SIGTERM, or ``Run.cancel``). Open multipart uploads were
    aborted, or, where a resume journal records them (``upload`` without ``--no-resume``), kept
    for a rerun of the same command to resume; ``kept_uploads`` says how many were kept."""

    exit_code = EXIT_CANCELLED

    def __init__(self, message: str = "cancelled", *, kept_uploads: int = 0) -> None:
        super().__init__(message)
        self.kept_uploads = kept_uploads


_RETRYABLE_BY_CODE: dict[str, type[RetryableStoreError]] = {
    "SlowDown": ThrottlingError,
    "Throttling": ThrottlingError,
    "ThrottlingException": ThrottlingError,
    "TooManyRequests": ThrottlingError,
    "RequestLimitExceeded": ThrottlingError,
    "RequestTimeout": RequestTimeoutError,
    "InternalError": ServerError,
    "ServiceUnavailable": ServerError,
    "BadDigest": BadDigestError,
    "InvalidDigest": BadDigestError,
    "XAmzContentChecksumMismatch": BadDigestError,
    "XAmzContentSHA256Mismatch": BadDigestError,
    "IncompleteBody": NetworkError,
}

_FATAL_BY_CODE: dict[str, type[FatalStoreError]] = {
    "NoSuchBucket": NoSuchBucketError,
    "InvalidAccessKeyId": CredentialsError,
    "SignatureDoesNotMatch": CredentialsError,
    "ExpiredToken": CredentialsError,
    "InvalidToken": CredentialsError,
    "TokenRefreshRequired": CredentialsError,
    "AccessDenied": AccessDeniedError,
    "NoSuchUpload": NoSuchUploadError,
    "NotImplemented": FatalStoreError,  # 501: the server has no such operation; asking again cannot help
    "RequestTimeTooSkewed": ClockSkewError,
}

_ADVICE: dict[type[StoreError], str] = {
    NoSuchBucketError: "create the bucket, check its name, or pass --embedded",
    CredentialsError: (
        "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile) or refresh the session token"
    ),
    AccessDeniedError: "check the bucket policy and the IAM permissions for this key",
    NetworkError: "check --endpoint-url and that the server is running",
}


#: Error codes of a request sent to (or signed for) another region than the bucket's.
_REGION_CODES = frozenset({"AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException"})
_EXPECTING = re.compile(r"expecting '([a-z0-9-]+)'")


def classify_store_error(
    status: int | None, code: str | None, message: str, *, what: str, region: str | None = None,
    signed_region: str | None = None,
) -> StoreError:
    """Map an HTTP status and S3 error code to the right class of the tree.

    ``what`` names the bucket or key (``s3://bucket/key``) for the one-line message.
    S3 error codes follow the S3 API reference, "Error responses". ``region``: the region the answer
    names (its ``<Region>`` element or ``x-amz-bucket-region`` header); with a 301/400 or a region
    error code and a region other than ``signed_region`` (the one requests are signed for), the
    error is a :class:`WrongRegionError` that names it.
    """
    if region is None and code == "AuthorizationHeaderMalformed":
        m = _EXPECTING.search(message)  # "...; the region 'us-east-1' is wrong; expecting 'eu-west-1'"
        region = m.group(1) if m else None
    if region and region != signed_region and (code in _REGION_CODES or status in (301, 307, 400)):
        detail = code or f"HTTP {status}"
        signed = f", not {signed_region}" if signed_region else ""
        return WrongRegionError(f"{what}: the server expects requests signed for region {region}{signed} (it answered "
                                f"{detail}; not a wrong key); use --region {region} (or AWS_REGION, or the profile's "
                                "region)", status=status, code=code)
    cls: type[StoreError]
    if code in _FATAL_BY_CODE:
        cls = _FATAL_BY_CODE[code]
    elif code in _RETRYABLE_BY_CODE:
        cls = _RETRYABLE_BY_CODE[code]
    elif status in (429, 503):
        cls = ThrottlingError
    elif status is not None and status >= 500:
        cls = ServerError
    elif status == 403:
        cls = AccessDeniedError
    elif status == 404 and code is None:
        cls = NoSuchBucketError
    elif status is None:
        cls = NetworkError
    else:
        cls = FatalStoreError
    detail = code or (f"HTTP {status}" if status else "transport error")
    text = f"{what}: {detail}"
    if message and message != code:
        text += f" ({message})"
    advice = _ADVICE.get(cls)
    if advice:
        text += f"; {advice}"
    return cls(text, status=status, code=code)
