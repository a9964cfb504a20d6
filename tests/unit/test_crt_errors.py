"""No awscrt error name reaches a user: every name s3pump can meet maps to a class of errors.py with
a message of its own (issue 24); an unknown one is a defect, fatal for the item, not a network error."""

from __future__ import annotations

import _awscrt
import pytest
from awscrt.exceptions import AwsCrtError, from_code

from s3pump.errors import (
    ClientLibraryError,
    ClockSkewError,
    CredentialsError,
    NetworkError,
    OpenFilesError,
    RequestTimeoutError,
    S3PumpError,
    ServerError,
    SourceChangedError,
    SourceUnreadableError,
    ThrottlingError,
)
from s3pump.store.crt_errors import FAMILIES, clock_skew_error, crt_error, known


def _awscrt_names() -> dict[str, int]:
    """Every error name of the installed awscrt in the families s3pump's requests can meet."""
    out: dict[str, int] = {}
    for code in range(0, 0x10000):
        name = _awscrt.get_error_name(code)
        if name and name.startswith(FAMILIES):
            out[name] = code
    for extra in ("AWS_ERROR_NO_PERMISSION", "AWS_ERROR_MAX_FDS_EXCEEDED", "AWS_IO_BROKEN_PIPE",
                  "AWS_ERROR_STREAM_UNSEEKABLE"):
        for code in range(0, 0x2000):
            if _awscrt.get_error_name(code) == extra:
                out[extra] = code
    return out


NAMES = _awscrt_names()


def test_the_families_are_there() -> None:
    assert len(NAMES) > 150, sorted(NAMES)[:20]
    assert "AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH" in NAMES
    assert "AWS_ERROR_S3_REQUEST_TIME_TOO_SKEWED" in NAMES


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_name_maps_to_a_class_with_a_message_without_the_name(name: str) -> None:
    error = from_code(NAMES[name])
    mapped = crt_error(error, "s3://b/k", "127.0.0.1:9000")
    assert isinstance(mapped, S3PumpError)
    assert known(name), f"{name} has no mapping of its own"
    assert not isinstance(mapped, ClientLibraryError), name
    text = str(mapped)
    assert "AWS_ERROR" not in text and "AWS_IO" not in text and "AWS_AUTH" not in text and name not in text, text
    assert text.startswith("s3://b/k: ") or mapped.stops_run, text
    assert "\n" not in text


@pytest.mark.parametrize(("name", "cls"), [
    ("AWS_ERROR_S3_INCORRECT_CONTENT_LENGTH", SourceChangedError),
    ("AWS_ERROR_HTTP_OUTGOING_STREAM_LENGTH_INCORRECT", SourceChangedError),
    ("AWS_ERROR_S3_REQUEST_TIME_TOO_SKEWED", ClockSkewError),
    ("AWS_ERROR_S3_SLOW_DOWN", ThrottlingError),
    ("AWS_ERROR_S3_INTERNAL_ERROR", ServerError),
    ("AWS_ERROR_S3_REQUEST_TIMEOUT", RequestTimeoutError),
    ("AWS_ERROR_HTTP_RESPONSE_FIRST_BYTE_TIMEOUT", RequestTimeoutError),
    ("AWS_IO_SOCKET_CONNECTION_REFUSED", NetworkError),
    ("AWS_IO_SOCKET_CLOSED", NetworkError),
    ("AWS_ERROR_HTTP_CONNECTION_CLOSED", NetworkError),
    ("AWS_IO_DNS_INVALID_NAME", NetworkError),
    ("AWS_ERROR_MAX_FDS_EXCEEDED", OpenFilesError),
    ("AWS_ERROR_NO_PERMISSION", SourceUnreadableError),
    ("AWS_IO_STREAM_READ_FAILED", SourceUnreadableError),
    ("AWS_ERROR_S3_EXCEEDS_MEMORY_LIMIT", ThrottlingError),
])
def test_the_classes_that_matter(name: str, cls: type[S3PumpError]) -> None:
    assert type(crt_error(from_code(NAMES[name]), "s3://b/k", "h")) is cls


def test_builtin_exceptions_awscrt_raises_are_mapped() -> None:
    assert isinstance(crt_error(FileNotFoundError(), "s3://b/k", "h"), SourceUnreadableError)
    assert isinstance(crt_error(MemoryError(), "s3://b/k", "h"), ThrottlingError)
    assert isinstance(crt_error(BrokenPipeError(), "s3://b/k", "h"), NetworkError)


def test_an_unknown_name_is_a_fatal_client_error_without_the_name() -> None:
    error = AwsCrtError(code=99999, name="AWS_ERROR_SOMETHING_NEW", message="Something new went wrong.")
    mapped = crt_error(error, "s3://b/k", "h")
    assert type(mapped) is ClientLibraryError
    assert not mapped.retryable
    assert "AWS_ERROR" not in str(mapped)
    assert "something new went wrong" in str(mapped)
    assert mapped.code == "AWS_ERROR_SOMETHING_NEW"  # kept for the --debug log, not shown


def test_credentials_errors_of_the_signer() -> None:
    names = [n for n in NAMES if n.startswith("AWS_AUTH_SIGNING_")]
    assert names
    for n in names:
        assert isinstance(crt_error(from_code(NAMES[n]), "s3://b/k", "h"), CredentialsError)


def test_clock_skew_message_names_the_difference() -> None:
    import time

    server = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600 + 125))
    body = (f"<Error><Code>RequestTimeTooSkewed</Code><RequestTime>x</RequestTime>"
            f"<ServerTime>{server}</ServerTime></Error>").encode()
    e = clock_skew_error("s3://b/k", body, None)
    assert e.exit_code == 2 and e.stops_run
    assert "1 h 2 min" in str(e) and "behind the server's" in str(e), str(e)
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() - 20 * 60))
    e = clock_skew_error("s3://b/k", None, [("Date", date)])
    assert "20 min" in str(e) and "ahead of the server's" in str(e), str(e)
