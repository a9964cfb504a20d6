"""awscrt's error names, mapped to the s3pump error tree (no ``AWS_ERROR_...`` name reaches a user).

awscrt reports a failed request with an error name (``AWS_IO_SOCKET_CLOSED``,
``AWS_ERROR_S3_SLOW_DOWN``, ...), sometimes with the HTTP status and error document and sometimes
without them (it consumes some S3 answers itself). :func:`crt_error` turns each name s3pump can meet
into a class of :mod:`s3pump.errors` with a one-line message; the name itself goes only to the
``--debug`` log and to the error's ``code`` (which the retry rules read, never a user).

A name this table does not know is a defect to map, not a network error to retry: the item fails
with :class:`~s3pump.errors.ClientLibraryError` (awscrt's own sentence, no name).
``tests/unit/test_crt_errors.py`` checks every name of the families below against the installed
awscrt.
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from ..errors import (
    BadDigestError,
    ClientLibraryError,
    ClockSkewError,
    CredentialsError,
    FatalStoreError,
    NetworkError,
    RequestTimeoutError,
    S3PumpError,
    ServerError,
    SourceChangedError,
    SourceUnreadableError,
    ThrottlingError,
    classify_store_error,
    open_files_error,
)

__all__ = ["FAMILIES", "clock_skew_error", "crt_error", "known"]

_log = logging.getLogger("s3pump.store")

#: awscrt turns these S3 answers into its own names and drops the status and body: restore them.
_S3_STATUS = {
    "AWS_ERROR_S3_INTERNAL_ERROR": (500, "InternalError"),
    "AWS_ERROR_S3_SLOW_DOWN": (503, "SlowDown"),
    "AWS_ERROR_S3_REQUEST_TIMEOUT": (400, "RequestTimeout"),
}

_CANCELLED = frozenset({"AWS_ERROR_S3_CANCELED", "AWS_ERROR_HTTP_STREAM_CANCELLED", "AWS_ERROR_S3_PAUSED"})
_TIMEOUTS = frozenset({
    "AWS_ERROR_HTTP_RESPONSE_FIRST_BYTE_TIMEOUT", "AWS_IO_SOCKET_TIMEOUT",
    "AWS_ERROR_HTTP_CONNECTION_MANAGER_ACQUISITION_TIMEOUT", "AWS_ERROR_HTTP_CHANNEL_THROUGHPUT_FAILURE",
    "AWS_IO_TLS_NEGOTIATION_TIMEOUT",
})
#: the body sent was not as long as its Content-Length: the source shrank (or grew) while it was read
_SOURCE_CHANGED = frozenset({
    "AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH", "AWS_ERROR_HTTP_OUTGOING_STREAM_LENGTH_INCORRECT",
    "AWS_ERROR_S3_FILE_MODIFIED", "AWS_IO_STREAM_INVALID_SEEK_POSITION",
})
_SOURCE_UNREADABLE = frozenset({
    "AWS_ERROR_FILE_OPEN_FAILURE", "AWS_ERROR_FILE_READ_FAILURE", "AWS_ERROR_FILE_INVALID_PATH",
    "AWS_ERROR_NO_PERMISSION", "AWS_IO_STREAM_READ_FAILED", "AWS_IO_STREAM_SEEK_FAILED",
    "AWS_IO_STREAM_GET_LENGTH_FAILED", "AWS_ERROR_S3_CHECKSUM_CALCULATION_FAILED", "AWS_ERROR_STREAM_UNSEEKABLE",
    "AWS_IO_STREAM_SEEK_UNSUPPORTED", "AWS_IO_STREAM_GET_LENGTH_UNSUPPORTED", "AWS_IO_FILE_VALIDATION_FAILURE",
    "AWS_ERROR_FILE_WRITE_FAILURE",
})
#: the server's answer was not what S3 answers (a missing header, a bad length): retried
_BAD_ANSWER = frozenset({
    "AWS_ERROR_S3_MISSING_CONTENT_RANGE_HEADER", "AWS_ERROR_S3_INVALID_CONTENT_RANGE_HEADER",
    "AWS_ERROR_S3_MISSING_CONTENT_LENGTH_HEADER", "AWS_ERROR_S3_INVALID_CONTENT_LENGTH_HEADER",
    "AWS_ERROR_S3_MISSING_ETAG", "AWS_ERROR_S3_INVALID_RESPONSE_STATUS", "AWS_ERROR_S3_MISSING_UPLOAD_ID",
    "AWS_ERROR_S3_LIST_PARTS_PARSE_FAILED", "AWS_ERROR_S3_NON_RECOVERABLE_ASYNC_ERROR",
    "AWS_ERROR_HTTP_INVALID_STATUS_CODE", "AWS_ERROR_HTTP_PROTOCOL_ERROR", "AWS_ERROR_HTTP_UNKNOWN",
    "AWS_ERROR_HTTP_INVALID_BODY_STREAM", "AWS_ERROR_HTTP_SWITCHED_PROTOCOLS", "AWS_ERROR_HTTP_UNSUPPORTED_PROTOCOL",
    "AWS_ERROR_S3_OBJECT_MODIFIED", "AWS_ERROR_S3_INTERNAL_BUFFER_SIZE_MISMATCH_RETRYING_WITH_RANGE",
    "AWS_ERROR_HTTP_HEADER_NOT_FOUND",
})
#: the client's own memory bound: back off and retry, as for throttling
_MEMORY = frozenset({"AWS_ERROR_S3_EXCEEDS_MEMORY_LIMIT", "AWS_ERROR_S3_BUFFER_ALLOCATION_FAILED"})
#: a request s3pump built wrongly, or a setting awscrt refuses: fatal for the item, with the words
_BAD_REQUEST = frozenset({
    "AWS_ERROR_HTTP_INVALID_HEADER_FIELD", "AWS_ERROR_HTTP_INVALID_HEADER_NAME", "AWS_ERROR_HTTP_INVALID_HEADER_VALUE",
    "AWS_ERROR_HTTP_INVALID_METHOD", "AWS_ERROR_HTTP_INVALID_PATH", "AWS_ERROR_HTTP_MISSING_BODY_STREAM",
    "AWS_ERROR_S3_INVALID_RANGE_HEADER", "AWS_ERROR_S3_MULTIRANGE_HEADER_UNSUPPORTED",
    "AWS_ERROR_S3_INVALID_MEMORY_LIMIT_CONFIG", "AWS_ERROR_S3_PART_SIZE_EXCEEDS_MEMORY_LIMIT",
    "AWS_ERROR_S3_PROXY_PARSE_FAILED", "AWS_ERROR_S3_UNSUPPORTED_PROXY_SCHEME", "AWS_ERROR_S3_RESUME_FAILED",
    "AWS_ERROR_S3_RESUMED_PART_CHECKSUM_MISMATCH", "AWS_ERROR_S3_METRIC_DATA_NOT_AVAILABLE",
    "AWS_ERROR_S3_REQUEST_HAS_COMPLETED", "AWS_ERROR_S3_RECV_FILE_ALREADY_EXISTS", "AWS_ERROR_S3_RECV_FILE_NOT_FOUND",
    "AWS_ERROR_HTTP_CONNECTION_MANAGER_INVALID_STATE_FOR_ACQUIRE",
    "AWS_ERROR_HTTP_CONNECTION_MANAGER_VENDED_CONNECTION_UNDERFLOW", "AWS_ERROR_HTTP_REACTION_REQUIRED",
    "AWS_ERROR_HTTP_DATA_NOT_AVAILABLE", "AWS_ERROR_HTTP_CALLBACK_FAILURE", "AWS_ERROR_HTTP_STREAM_NOT_ACTIVATED",
    "AWS_ERROR_HTTP_STREAM_HAS_COMPLETED", "AWS_ERROR_HTTP_MANUAL_WRITE_NOT_ENABLED",
    "AWS_ERROR_HTTP_MANUAL_WRITE_HAS_COMPLETED", "AWS_ERROR_HTTP_PROTOCOL_SWITCH_FAILURE",
    "AWS_ERROR_HTTP_STREAM_MANAGER_UNEXPECTED_HTTP_VERSION", "AWS_ERROR_HTTP_WEBSOCKET_UPGRADE_FAILURE",
    "AWS_ERROR_HTTP_WEBSOCKET_CLOSE_FRAME_SENT", "AWS_ERROR_HTTP_WEBSOCKET_IS_MIDCHANNEL_HANDLER",
    "AWS_ERROR_HTTP_WEBSOCKET_PROTOCOL_ERROR", "AWS_ERROR_HTTP_PROXY_STRATEGY_NTLM_CHALLENGE_TOKEN_MISSING",
    "AWS_ERROR_HTTP_PROXY_STRATEGY_TOKEN_RETRIEVAL_FAILURE", "AWS_IO_SOCKET_UNSUPPORTED_ADDRESS_FAMILY",
    "AWS_IO_SOCKET_INVALID_OPERATION_FOR_TYPE", "AWS_IO_SOCKET_INVALID_OPTIONS", "AWS_IO_SOCKET_ADDRESS_IN_USE",
    "AWS_IO_SOCKET_INVALID_ADDRESS", "AWS_IO_SOCKET_ILLEGAL_OPERATION_FOR_STATE",
    "AWS_IO_SOCKET_MISSING_EVENT_LOOP", "AWS_ERROR_S3EXPRESS_CREATE_SESSION_FAILED",
})
_OUT_OF_FILES = frozenset({"AWS_ERROR_MAX_FDS_EXCEEDED"})
_CLOCK_SKEW = frozenset({"AWS_ERROR_S3_REQUEST_TIME_TOO_SKEWED"})

#: name prefixes whose every member is mapped (by a set above or by the prefix rule in crt_error)
FAMILIES = ("AWS_ERROR_S3_", "AWS_ERROR_HTTP_", "AWS_IO_SOCKET_", "AWS_IO_DNS_", "AWS_IO_TLS_", "AWS_IO_STREAM_",
            "AWS_ERROR_FILE_", "AWS_IO_FILE_", "AWS_AUTH_SIGNING_", "AWS_AUTH_CREDENTIALS_", "AWS_ERROR_S3EXPRESS_")
#: builtin exceptions awscrt raises for some of its codes (awscrt.exceptions.from_code)
_BUILTINS = {"FileNotFoundError": "AWS_ERROR_FILE_INVALID_PATH", "MemoryError": "AWS_ERROR_S3_BUFFER_ALLOCATION_FAILED",
             "BrokenPipeError": "AWS_IO_BROKEN_PIPE", "BlockingIOError": "AWS_IO_READ_WOULD_BLOCK"}


def _sentence(message: str) -> str:
    """awscrt's message as a clause: no trailing period, first letter lower-cased."""
    text = message.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text else "an error in the S3 client"


def known(name: str) -> bool:
    """Whether ``name`` has a mapping of its own (not :class:`~s3pump.errors.ClientLibraryError`)."""
    return _mapped(name, "", "s3://b/k", "host") is not None


def _mapped(name: str, message: str, what: str, host: str) -> S3PumpError | None:
    words = _sentence(message)
    if name in _CANCELLED:
        return NetworkError(f"{what}: request cancelled", code=name)
    if name in _S3_STATUS:
        status, code = _S3_STATUS[name]
        return classify_store_error(status, code, "", what=what)
    if name in _CLOCK_SKEW:
        return clock_skew_error(what, None, None)
    if name in _TIMEOUTS:
        return RequestTimeoutError(f"{what}: {host} did not answer in time", code=name)
    if name in _SOURCE_CHANGED:
        return SourceChangedError(f"{what}: file changed while uploading (it no longer has the size that was "
                                  "being sent); not completed, rerun to upload the new version")
    if name in _SOURCE_UNREADABLE:
        reason = "permission denied; check the file's permissions" if "PERMISSION" in name else words
        return SourceUnreadableError(f"{what}: cannot read the source file: {reason}")
    if name in _OUT_OF_FILES:
        return open_files_error()
    if name in _MEMORY:
        return ThrottlingError(f"{what}: the S3 client's memory limit is reached; retrying", code=name)
    if name in _BAD_ANSWER:
        return ServerError(f"{what}: {host} sent an answer S3 would not send ({words})", code=name)
    if name in _BAD_REQUEST:
        return FatalStoreError(f"{what}: the request could not be made ({words}); please report this", code=name)
    if name == "AWS_ERROR_S3_RESPONSE_CHECKSUM_MISMATCH":
        return BadDigestError(f"{what}: the answer was corrupted in transit (checksum mismatch)", code=name)
    if name.startswith(("AWS_AUTH_SIGNING_", "AWS_AUTH_CREDENTIALS_", "AWS_AUTH_SIGV4A", "AWS_AUTH_PROVIDER")):
        return CredentialsError(f"{what}: cannot sign the request ({words}); check the credentials "
                                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, --profile)", code=name)
    if name.startswith("AWS_IO_DNS_"):
        return NetworkError(f"{what}: the host name {host} does not resolve ({words}); check --endpoint-url",
                            code=name)
    if name.startswith("AWS_IO_TLS_"):
        return NetworkError(f"{what}: the TLS connection to {host} failed; check --endpoint-url (http or https?) "
                            "and the server's certificate", code=name)
    if name == "AWS_IO_SOCKET_CONNECTION_REFUSED":
        return NetworkError(f"{what}: {host} refused the connection; check --endpoint-url and that the server is up",
                            code=name)
    if name.startswith("AWS_IO_SOCKET_") or name in (
            "AWS_ERROR_HTTP_CONNECTION_CLOSED", "AWS_ERROR_HTTP_SERVER_CLOSED", "AWS_IO_BROKEN_PIPE",
            "AWS_ERROR_HTTP_GOAWAY_RECEIVED", "AWS_ERROR_HTTP_RST_STREAM_RECEIVED", "AWS_ERROR_HTTP_RST_STREAM_SENT",
            "AWS_ERROR_HTTP_CONNECTION_MANAGER_SHUTTING_DOWN", "AWS_ERROR_HTTP_STREAM_MANAGER_SHUTTING_DOWN",
            "AWS_ERROR_HTTP_STREAM_MANAGER_CONNECTION_ACQUIRE_FAILURE", "AWS_ERROR_HTTP_STREAM_IDS_EXHAUSTED",
            "AWS_ERROR_HTTP_MAX_CONCURRENT_STREAMS_EXCEEDED", "AWS_ERROR_HTTP_PROXY_CONNECT_FAILED",
            "AWS_ERROR_HTTP_PROXY_CONNECT_FAILED_RETRYABLE",
            "AWS_ERROR_HTTP_CONNECTION_MANAGER_MAX_PENDING_ACQUISITIONS_EXCEEDED", "AWS_IO_READ_WOULD_BLOCK"):
        return NetworkError(f"{what}: the connection to {host} was lost ({words}); check --endpoint-url and that "
                            "the server is up", code=name)
    return None


def crt_error(error: BaseException, what: str, host: str) -> S3PumpError:
    """The s3pump error for an awscrt failure without an HTTP answer (``error`` is an
    ``awscrt.exceptions.AwsCrtError`` or a builtin exception awscrt raised for its code)."""
    name = getattr(error, "name", None) or _BUILTINS.get(type(error).__name__, type(error).__name__)
    message = getattr(error, "message", None) or str(error)
    mapped = _mapped(name, message, what, host)
    if mapped is not None:
        return mapped
    _log.debug("%s: unmapped awscrt error %s (%s)", what, name, message)
    text = _sentence(message).replace(name, "").strip() or "an error in the S3 client"
    return ClientLibraryError(f"{what}: the S3 client failed ({text}); this is an s3pump defect, please report it "
                       "(--debug logs the details)", code=name)


_TIME_RE = {tag: re.compile(rb"<" + tag + rb">([^<]+)</" + tag + rb">") for tag in (b"ServerTime", b"RequestTime")}


def _parse_time(text: str) -> float | None:
    """An ISO 8601 time (``2026-12-07T06:50:00Z``, ``20261207T065000Z``) or an HTTP date, as epoch seconds."""
    text = text.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y%m%dT%H%M%SZ"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return parsed.timestamp()


def _span(seconds: float) -> str:
    s = round(abs(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} h {m} min {sec} s"
    if m:
        return f"{m} min {sec} s"
    return f"{sec} s"


def clock_skew_error(what: str, body: bytes | None, headers: Sequence[tuple[str, str]] | None) -> ClockSkewError:
    """403 RequestTimeTooSkewed as one line naming the difference: the server's time (the error's
    ``ServerTime``, else its ``Date`` header) against this machine's clock."""
    server: float | None = None
    if body:
        m = _TIME_RE[b"ServerTime"].search(body)
        if m:
            server = _parse_time(m.group(1).decode("ascii", "replace"))
    if server is None and headers:
        for k, v in headers:
            if k.lower() == "date":
                server = _parse_time(v)
                break
    local = time.time()
    if server is None:
        return ClockSkewError(f"{what}: the server says this machine's clock is off (RequestTimeTooSkewed); set the "
                              "clock right (NTP: timedatectl set-ntp true) and rerun", code="RequestTimeTooSkewed")
    diff = local - server
    side = "ahead of" if diff > 0 else "behind"
    shown = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(server))
    here = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(local))
    return ClockSkewError(f"{what}: this machine's clock is {_span(diff)} {side} the server's (local {here}, server "
                          f"{shown}; S3 allows 15 min); set the clock right (NTP: timedatectl set-ntp true) and rerun",
                          code="RequestTimeTooSkewed")
