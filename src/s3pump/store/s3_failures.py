"""What a failed request of :class:`~s3pump.store.s3.S3Store` means, as the store's errors (``errors.py``): S3's
error documents and bodiless answers, awscrt's errors (``crt_errors.py``: no awscrt name reaches a user),
botocore's exceptions, and the one-line explanations of an endpoint that never answered (refused, unknown host,
silent, an untrusted certificate, a proxy that is down) or of a clock that is off.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..awsconfig import NO_CREDENTIALS_MESSAGE, AwsSettings
from ..config import TransferConfig
from ..errors import (
    CertificateError,
    CredentialsError,
    EndpointUnreachableError,
    NetworkError,
    RequestTimeoutError,
    S3PumpError,
    StoreError,
    classify_store_error,
)
from .crt_errors import clock_skew_error, crt_error

__all__ = ["RequestFailures", "boto_error", "header", "http_reason", "no_answer"]

_REGION_RE = re.compile(rb"<Region>([a-z0-9-]+)</Region>")
_CODE_RE = re.compile(rb"<Code>([^<]+)</Code>")
_MESSAGE_RE = re.compile(rb"<Message>([^<]*)</Message>")


def http_reason(status: int) -> str:
    """``404`` -> ``Not Found`` (the reason phrase, for messages about bodiless answers)."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def header(headers: Sequence[tuple[str, str]] | None, name: str) -> str | None:
    """The value of header ``name`` (any case) in an answer's ``(name, value)`` pairs; None if absent."""
    if not headers:
        return None
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


def boto_error(err: Exception, what: str, settings: AwsSettings | None = None) -> StoreError:
    import botocore.exceptions  # loaded with boto3, which only the rarer calls need

    if isinstance(err, botocore.exceptions.ClientError):
        resp: dict[str, Any] = dict(err.response)
        code = resp.get("Error", {}).get("Code")
        status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == str(status):  # HEAD requests carry no body: the "code" is the status
            code = {404: "NoSuchBucket", 403: "AccessDenied"}.get(status)
        message = resp.get("Error", {}).get("Message", "")
        region = resp.get("Error", {}).get("Region") or \
            resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
        return classify_store_error(status, code, message, what=what, region=region,
                                    signed_region=settings.region if settings else None)
    if isinstance(err, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return CredentialsError(
            f"{what}: {NO_CREDENTIALS_MESSAGE}")
    if isinstance(err, botocore.exceptions.ProfileNotFound):
        return CredentialsError(f"{what}: {err}")
    if isinstance(err, botocore.exceptions.SSLError):
        from .tlsprobe import untrusted_message, verify_failure_in

        problem = verify_failure_in(str(err))
        if problem is not None:
            endpoint = settings.endpoint_shown if settings else str(err.kwargs.get("endpoint_url", what))
            return CertificateError(untrusted_message(endpoint, settings.ca_bundle if settings else None, problem),
                                    code="CertificateError")
    if isinstance(err, botocore.exceptions.ProxyConnectionError):
        from .proxy import shown

        proxy = shown(str(err.kwargs.get("proxy_url", "")))  # no credentials in a message
        return EndpointUnreachableError(f"{what}: the proxy {proxy} cannot be reached; check HTTP_PROXY/"
                                        "HTTPS_PROXY and NO_PROXY, and that the proxy is up", code="ProxyError")
    if isinstance(err, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectionError):
        return NetworkError(f"{what}: cannot connect ({err}); check --endpoint-url and that the server is up")
    if isinstance(err, botocore.exceptions.BotoCoreError):
        return NetworkError(f"{what}: {err}")
    raise err


def no_answer(error: StoreError) -> bool:
    """The endpoint gave no answer at all: refused, unknown host, or silent until the read timeout.
    (A connection reset or a closed connection may be a flaky network: retried as usual.)"""
    if isinstance(error, RequestTimeoutError):
        return error.status is None
    code = error.code or ""
    return isinstance(error, NetworkError) and ("REFUSED" in code or "DNS" in code)


class RequestFailures:
    """The explanations of failed requests, a base of :class:`~s3pump.store.s3.S3Store` (its endpoint, settings,
    configuration and lock)."""

    config: TransferConfig
    settings: AwsSettings
    region: str
    _lock: threading.Lock
    _endpoint: Any  # s3_crt.Endpoint: scheme and host

    def _server_date_headers(self) -> list[tuple[str, str]]:
        """The headers (``Date``) of an unsigned HEAD of the endpoint, asked once (3 s at most): what the
        server's clock says, for a RequestTimeTooSkewed whose own answer awscrt consumed."""
        with self._lock:
            probed: list[tuple[str, str]] | None = getattr(self, "_date_probe", None)
            if probed is not None:
                return probed
            import http.client

            cls = http.client.HTTPSConnection if self._endpoint.scheme == "https" else http.client.HTTPConnection
            try:
                conn = cls(self._endpoint.host, timeout=3.0)
                try:
                    conn.request("HEAD", "/")
                    probed = [(k, v) for k, v in conn.getresponse().getheaders() if k.lower() == "date"]
                finally:
                    conn.close()
            except (OSError, http.client.HTTPException):
                probed = []
            self._date_probe = probed
            return probed

    def _failure_words(self, error: StoreError) -> str:
        if isinstance(error, RequestTimeoutError):
            return f"does not answer (no response in {self.config.read_timeout_s:g} s)"
        if "REFUSED" in (error.code or ""):
            return "refused the connection"
        if "DNS" in (error.code or ""):
            return "has a host name that does not resolve"
        return "cannot be reached (the connection was lost)"

    def _certificate_problem(self) -> str | None:
        from .tlsprobe import certificate_problem

        parts = urlsplit(self.settings.endpoint_shown)
        return certificate_problem(parts.hostname or "", parts.port or 443, self.settings.ca_bundle)

    def _untrusted(self, problem: str) -> CertificateError:
        from .tlsprobe import untrusted_message

        return CertificateError(untrusted_message(self.settings.endpoint_shown, self.settings.ca_bundle, problem),
                                code="CertificateError")

    def _unreachable(self, error: StoreError) -> EndpointUnreachableError:
        from .proxy import proxy_for

        proxy = proxy_for(self.settings.endpoint_shown)
        if proxy is not None:
            return EndpointUnreachableError(
                f"the proxy {proxy[0]} ({proxy[1]}, for {self.settings.endpoint_shown}) "
                f"{self._failure_words(error)}; check {proxy[1]} and NO_PROXY, and that the proxy is up",
                code=error.code)
        where = "--endpoint-url/the profile's endpoint_url" if self.settings.endpoint_url else "the network"
        return EndpointUnreachableError(
            f"the endpoint {self.settings.endpoint_shown} {self._failure_words(error)}; check {where} "
            "and that the server is up", code=error.code)

    def _crt_error(
        self, error: Exception, status: int | None, body: bytes | None, what: str,
        headers: Sequence[tuple[str, str]] | None = None,
    ) -> S3PumpError:
        """The s3pump error of a failed awscrt request: by the S3 error document when there is an
        answer, else by awscrt's error name (store/crt_errors.py: no name reaches a user)."""
        code: str | None = None
        message = ""
        if body:
            m = _CODE_RE.search(body)
            code = m.group(1).decode("utf-8", "replace") if m else None
            mm = _MESSAGE_RE.search(body)
            message = mm.group(1).decode("utf-8", "replace") if mm else ""
        if code == "RequestTimeTooSkewed" or getattr(error, "name", None) == "AWS_ERROR_S3_REQUEST_TIME_TOO_SKEWED":
            # awscrt may consume the answer (no ServerTime, no Date): ask the endpoint its time once
            return clock_skew_error(what, body, headers if body or headers else self._server_date_headers())
        if not status:
            return crt_error(error, what, self._endpoint.host)
        rm = _REGION_RE.search(body) if body else None
        region = rm.group(1).decode("ascii", "replace") if rm else header(headers, "x-amz-bucket-region")
        return classify_store_error(status, code, message, what=what, region=region, signed_region=self.region)
