"""awscrt's S3 client under :class:`~s3pump.store.s3.S3Store`: the endpoint's addressing, the client, and one
request of either plane.

* Data plane (PutObject, UploadPart): :meth:`CrtRequests._start`; for a file, awscrt reads the bytes itself
  (``send_filepath``), Python only builds the request. awscrt's own retries and multipart splitting are off: the
  s3pump engine owns retries (counted, budgeted) and multipart (journaled, resumable).
* Control plane: :meth:`CrtRequests._crt_call`, one request whose answer is read whole, retried by the store's
  policy when idempotent. Until the endpoint has answered once, a refusal or silence ends the run after two
  attempts, and an https endpoint silent for :data:`TLS_PROBE_AFTER_S` has its certificate checked.

awscrt has no endpoint URL: a custom endpoint is reached by sending its ``host:port`` as the Host header with
path-style ``/bucket/key`` paths, and ``tls_mode=DISABLED`` for ``http://`` (see shared notes on SeaweedFS).
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from awscrt import auth, http, s3
from awscrt import io as crt_io

from ..awsconfig import AwsSettings, StaticCredentials
from ..config import TransferConfig
from ..errors import RequestTimeoutError, StoreError, classify_store_error
from ..retry import RetryPolicy
from ..units import GIB
from .base import DoneCallback, ObjectAttributes, PutResult
from .body import StreamBody
from .s3_failures import RequestFailures, http_reason, no_answer

__all__ = ["CRT_ALGORITHMS", "NO_SPLIT_BYTES", "TLS_PROBE_AFTER_S", "CrtRequest", "CrtRequests", "Endpoint",
           "endpoint_of"]

_log = logging.getLogger("s3pump.store")

CRT_ALGORITHMS = {
    "CRC32C": s3.S3ChecksumAlgorithm.CRC32C,
    "CRC32": s3.S3ChecksumAlgorithm.CRC32,
    "CRC64NVME": s3.S3ChecksumAlgorithm.CRC64NVME,
    "SHA1": s3.S3ChecksumAlgorithm.SHA1,
    "SHA256": s3.S3ChecksumAlgorithm.SHA256,
}
NO_SPLIT_BYTES = 5 * GIB  # awscrt must never split a PutObject itself
TLS_PROBE_AFTER_S = 1.5  # an https endpoint silent this long on its first request: check its certificate


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The endpoint as awscrt addresses it: a bucket in the path (path style) or in the host name
    (virtual-hosted style; Amazon S3 User Guide, "Virtual hosting of buckets")."""

    scheme: str
    host: str  # host[:port], sent as the Host header
    path_style: bool

    def host_for(self, bucket: str) -> str:
        return self.host if self.path_style else f"{bucket}.{self.host}"

    def path_for(self, bucket: str, key: str) -> str:
        quoted = quote(key, safe="/~")
        return f"/{bucket}/{quoted}" if self.path_style else f"/{quoted}"


def endpoint_of(settings: AwsSettings) -> Endpoint:
    """awscrt's view of the endpoint botocore resolved (awsconfig.py): scheme, Host, style."""
    if settings.endpoint_url:
        parts = urlsplit(settings.endpoint_url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return Endpoint(parts.scheme, host, settings.path_style)
    return Endpoint("https", f"s3.{settings.region}.amazonaws.com", settings.path_style)


class CrtRequest:
    """Holds an awscrt S3Request alive and forwards ``cancel``."""

    __slots__ = ("_request",)

    def __init__(self, request: s3.S3Request) -> None:
        self._request = request

    def cancel(self) -> None:
        self._request.cancel()


class CrtRequests(RequestFailures):
    """awscrt's client and requests, a base of :class:`~s3pump.store.s3.S3Store` (which sets the attributes)."""

    retry: RetryPolicy
    _endpoint: Endpoint
    _answered: threading.Event  # set once the endpoint answered any request
    _silent_failures: int  # requests that got no answer at all before the endpoint ever answered
    _checksum_name: str | None
    _checksum_config: s3.S3ChecksumConfig | None
    _checksum_header: str | None
    _crt: s3.S3Client

    def _credentials_provider(self) -> auth.AwsCredentialsProvider:
        creds = self.settings.credentials
        if isinstance(creds, StaticCredentials):  # resolved without botocore (awsconfig.py)
            frozen = creds.get_frozen_credentials()
            return auth.AwsCredentialsProvider.new_static(frozen.access_key, frozen.secret_key, frozen.token)
        import botocore.credentials

        if not isinstance(creds, botocore.credentials.RefreshableCredentials):
            frozen = creds.get_frozen_credentials()
            return auth.AwsCredentialsProvider.new_static(frozen.access_key, frozen.secret_key, frozen.token)

        def get_credentials() -> auth.AwsCredentials:
            frozen = creds.get_frozen_credentials()  # botocore refreshes SSO/role/process/IMDS credentials
            return auth.AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token)

        return auth.AwsCredentialsProvider.new_delegate(get_credentials)

    def _make_crt_client(self, config: TransferConfig) -> s3.S3Client:
        signing = s3.create_default_s3_signing_config(
            region=self.region, credential_provider=self._credentials_provider()
        )
        tls = s3.S3RequestTlsMode.DISABLED if self._endpoint.scheme == "http" else s3.S3RequestTlsMode.ENABLED
        return s3.S3Client(
            region=self.region,
            signing_config=signing,
            tls_mode=tls,
            tls_connection_options=self._tls_connection_options(config),
            part_size=config.part_size_bytes,
            multipart_upload_threshold=NO_SPLIT_BYTES,
            memory_limit=max(1 << 30, 2 * config.max_parts_in_flight * config.part_size_bytes),
            retry_config=s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE),
            connect_timeout_ms=int(config.connect_timeout_s * 1000),
            max_active_connections_override=(config.max_concurrency if config.adaptive_concurrency
                                             else config.concurrency),
        )

    def _tls_connection_options(self, config: TransferConfig) -> crt_io.TlsConnectionOptions | None:
        """awscrt's TLS options for an https endpoint with a CA bundle or ``--no-verify-ssl``; None
        (awscrt's default: the system's trust store) otherwise, and for ``http://``."""
        if self._endpoint.scheme == "http" or (self.settings.ca_bundle is None and config.verify_ssl):
            return None
        options = crt_io.TlsContextOptions()
        if self.settings.ca_bundle is not None:
            options.override_default_trust_store_from_path(None, self.settings.ca_bundle)
        if not config.verify_ssl:
            options.verify_peer = False
        return crt_io.ClientTlsContext(options).new_connection_options()

    def _headers(self, bucket: str, size: int, attrs: ObjectAttributes) -> http.HttpHeaders:
        h = [("Host", self._endpoint.host_for(bucket)), ("Content-Length", str(size))]
        if attrs.content_type:
            h.append(("Content-Type", attrs.content_type))
        h.extend(attrs.headers())
        return http.HttpHeaders(h)

    def _start(
        self, *, bucket: str, key: str, method_path: str, size: int, attrs: ObjectAttributes,
        on_done: DoneCallback, kind: s3.S3RequestType, operation: str | None,
        send_filepath: str | None = None, body: bytes | memoryview | StreamBody | None = None,
    ) -> CrtRequest:
        headers = self._headers(bucket, size, attrs)
        checksum_config = self._checksum_config
        given = None if body is None or isinstance(body, bytes | memoryview) else getattr(body, "checksum", None)
        if (given is not None and checksum_config is not None and self._checksum_header
                and given[0] == self._checksum_name):
            # the source computed the body's checksum as it read it (a stream's part): send that,
            # rather than have awscrt read the bytes once more; the server checks it all the same
            headers.add(self._checksum_header, given[1])
            checksum_config = None
        request = http.HttpRequest(
            "PUT", method_path, headers,
            None if body is None else io.BytesIO(body) if isinstance(body, bytes | memoryview) else body.reader(),
        )
        response_headers: list[tuple[str, str]] = []
        checksum_header = self._checksum_header
        what = f"s3://{bucket}/{key}"

        answered = self._answered

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            if not answered.is_set():  # set takes the Event's lock: once, not on every request
                answered.set()
            response_headers.extend(headers)

        def done(error: Exception | None = None, status_code: int | None = None,
                 error_body: bytes | None = None, error_headers: list[tuple[str, str]] | None = None,
                 **_: Any) -> None:
            if error is None:
                got = {k.lower(): v for k, v in reversed(response_headers)}  # one pass; the first of a name wins
                etag = got.get("etag", "").strip('"')
                checksum = got.get(checksum_header.lower()) if checksum_header else None
                on_done(PutResult(etag, checksum, got.get("x-amz-version-id")))
            else:
                on_done(self._crt_error(error, status_code, error_body, what, error_headers or response_headers))

        crt_request = self._crt.make_request(
            type=kind,
            operation_name=operation,
            request=request,
            send_filepath=send_filepath,
            checksum_config=checksum_config,
            on_headers=on_headers,
            on_done=done,
        )
        return CrtRequest(crt_request)

    def _crt_call(
        self, method: str, bucket: str, key: str | None, query: str, operation: str, *,
        body: bytes = b"", headers: Sequence[tuple[str, str]] = (), retry: bool = False,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """:meth:`_crt_once`; with ``retry`` (idempotent calls only), retried by :attr:`retry`.

        While the endpoint has never answered (a wrong endpoint, a server that is down or hangs),
        a refusal or a timeout is retried once (a timeout said on stderr), then ends the run.

        Raises:
            EndpointUnreachableError: the endpoint refused or did not answer twice (exit 2).
            StoreError: from the tree.
        """
        def once() -> tuple[int, list[tuple[str, str]], bytes]:
            try:
                return self._crt_once(method, bucket, key, query, operation, body=body, headers=headers)
            except StoreError as e:
                if self._answered.is_set() or not no_answer(e):
                    raise
                with self._lock:
                    self._silent_failures += 1
                    failures = self._silent_failures
                if not retry or failures >= 2:
                    raise self._unreachable(e) from None  # fatal: the policy does not retry it
                if isinstance(e, RequestTimeoutError):  # a refusal is quick: retried without a word
                    _log.warning("the endpoint %s %s; retrying", self.settings.endpoint_shown,
                                 self._failure_words(e))
                raise

        if not retry:
            return once()
        return self.retry.call(once, what=(key or bucket, None))

    def _crt_once(
        self, method: str, bucket: str, key: str | None, query: str, operation: str, *,
        body: bytes = b"", headers: Sequence[tuple[str, str]] = (),
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One control-plane request through awscrt (no boto3 needed); returns status, headers, body.

        awscrt checks the body of a 200 answer to any operation but GetObject for an error
        document (S3 may answer CompleteMultipartUpload so), and reports it as a failure.

        Raises:
            StoreError: from the tree.
        """
        path = self._endpoint.path_for(bucket, key) if key is not None else (
            f"/{bucket}" if self._endpoint.path_style else "/")
        if query:
            path = f"{path}?{query}"
        h = [("Host", self._endpoint.host_for(bucket)), ("Content-Length", str(len(body))), *headers]
        request = http.HttpRequest(method, path, http.HttpHeaders(h), io.BytesIO(body) if body else None)
        what = f"s3://{bucket}" if key is None else f"s3://{bucket}/{key}"
        response_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        box: list[Any] = []
        finished = threading.Event()

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            response_headers.extend(headers)

        def on_body(chunk: bytes, offset: int, **_: Any) -> None:
            chunks.append(bytes(chunk))

        def on_done(error: Exception | None = None, status_code: int | None = None,
                    error_body: bytes | None = None, error_headers: list[tuple[str, str]] | None = None,
                    **_: Any) -> None:
            box.append((error, status_code, error_body, error_headers))
            finished.set()

        crt_request = self._crt.make_request(
            type=s3.S3RequestType.DEFAULT, operation_name=operation, request=request,
            on_headers=on_headers, on_body=on_body, on_done=on_done)
        # an endpoint that never answered gets --read-timeout; one that did, the request timeout
        wait_s = self.config.request_timeout_s if self._answered.is_set() else self.config.read_timeout_s
        if (not self._answered.is_set() and self._endpoint.scheme == "https" and self.config.verify_ssl
                and not finished.wait(min(TLS_PROBE_AFTER_S, wait_s))):
            problem = self._certificate_problem()
            if problem is not None:
                crt_request.cancel()  # awscrt ends it when its handshake fails; nothing waits for that
                raise self._untrusted(problem)
        if not finished.wait(wait_s):
            crt_request.cancel()
            finished.wait(5.0)  # on_done follows the cancel; do not leave awscrt a dead callback
            raise classify_store_error(None, "RequestTimeout", f"{operation} did not answer", what=what)
        error, status, error_body, error_headers = box[0]
        if status:
            self._answered.set()
        _log.debug("%s %s (%s) -> %s", method, path, operation, status if error is None else f"{status} {error}")
        if error is not None:
            if method == "HEAD" and status and not error_body:  # HEAD answers carry no error document
                code = {404: "NoSuchBucket" if key is None else "NoSuchKey", 403: "AccessDenied"}.get(status)
                if code:
                    error_body = f"<Code>{code}</Code><Message>{http_reason(status)}</Message>".encode()
            raise self._crt_error(error, status, error_body, what, error_headers or response_headers)
        return int(status or 200), response_headers, b"".join(chunks)
