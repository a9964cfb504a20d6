"""S3Store: the Store protocol over real S3 or any S3-compatible endpoint.

* Data plane (PutObject, UploadPart): ``awscrt``'s S3 client. For a file, awscrt
  reads the bytes itself (``send_filepath``); Python only builds the request.
  awscrt's own retries and multipart splitting are off: the s3pump engine owns
  retries (counted, budgeted) and multipart (journaled, resumable).
* Control plane: multipart create/complete/abort, HeadBucket, HeadObject, ListObjectsV2 (also with a
  delimiter), CopyObject and UploadPartCopy also through awscrt (:meth:`S3Store._crt_call`), so an
  upload or a stream never loads boto3; the rarer calls (ListParts, ListMultipartUploads, ListBuckets,
  GetObject, DeleteObjects, CreateBucket) through a botocore client, created on first use, that no
  code outside ``store/`` sees.
* Both take endpoint, region, addressing style and credentials from one
  :func:`s3pump.awsconfig.resolve_aws` (botocore's session, the aws cli's rules).
* Retries: awscrt's and botocore's own are off; the idempotent control-plane calls are retried by
  :attr:`S3Store.retry`, the run's :class:`~s3pump.retry.RetryPolicy` (see ``use_retry_policy``).
  Until the endpoint has answered once, a refusal or silence ends the run after two attempts
  (:meth:`S3Store._crt_call`).

awscrt has no endpoint URL: a custom endpoint is reached by sending its
``host:port`` as the Host header with path-style ``/bucket/key`` paths, and
``tls_mode=DISABLED`` for ``http://`` (see shared notes on SeaweedFS).
"""

from __future__ import annotations

import html
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from awscrt import auth, http, s3
from awscrt import io as crt_io

from ..awsconfig import NO_CREDENTIALS_MESSAGE, AwsSettings, StaticCredentials, resolve_aws
from ..config import TransferConfig
from ..errors import (
    AccessDeniedError,
    CertificateError,
    CredentialsError,
    EndpointUnreachableError,
    FatalStoreError,
    NetworkError,
    RequestTimeoutError,
    S3PumpError,
    StoreError,
    UsageError,
    classify_store_error,
)
from ..retry import RetryPolicy
from ..units import GIB
from .base import (
    CompletedPart,
    DoneCallback,
    MultipartUploadInfo,
    ObjectAttributes,
    ObjectInfo,
    ObjectVersion,
    PutResult,
)
from .body import StreamBody
from .crt_errors import clock_skew_error, crt_error
from .paging import PageGuard
from .s3_reads import S3Reads

__all__ = ["S3Store"]

_log = logging.getLogger("s3pump.store")

_CRT_ALGORITHMS = {
    "CRC32C": s3.S3ChecksumAlgorithm.CRC32C,
    "CRC32": s3.S3ChecksumAlgorithm.CRC32,
    "CRC64NVME": s3.S3ChecksumAlgorithm.CRC64NVME,
    "SHA1": s3.S3ChecksumAlgorithm.SHA1,
    "SHA256": s3.S3ChecksumAlgorithm.SHA256,
}
_REGION_RE = re.compile(rb"<Region>([a-z0-9-]+)</Region>")
_CODE_RE = re.compile(rb"<Code>([^<]+)</Code>")
_UPLOAD_ID_RE = re.compile(rb"<UploadId>([^<]+)</UploadId>")
_ETAG_RE = re.compile(rb"<ETag>([^<]+)</ETag>")
_MESSAGE_RE = re.compile(rb"<Message>([^<]*)</Message>")
_NO_SPLIT_BYTES = 5 * GIB  # awscrt must never split a PutObject itself
_TLS_PROBE_AFTER_S = 1.5  # an https endpoint silent this long on its first request: check its certificate


@dataclass(frozen=True, slots=True)
class _Endpoint:
    scheme: str
    host: str  # host[:port], sent as the Host header
    path_style: bool

    def host_for(self, bucket: str) -> str:
        return self.host if self.path_style else f"{bucket}.{self.host}"

    def path_for(self, bucket: str, key: str) -> str:
        quoted = quote(key, safe="/~")
        return f"/{bucket}/{quoted}" if self.path_style else f"/{quoted}"


def _endpoint_of(settings: AwsSettings) -> _Endpoint:
    """awscrt's view of the endpoint botocore resolved (awsconfig.py): scheme, Host, style."""
    if settings.endpoint_url:
        parts = urlsplit(settings.endpoint_url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return _Endpoint(parts.scheme, host, settings.path_style)
    return _Endpoint("https", f"s3.{settings.region}.amazonaws.com", settings.path_style)


def _http_reason(status: int) -> str:
    """``404`` -> ``Not Found`` (the reason phrase, for messages about bodiless answers)."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _etag_in(body: bytes) -> str:
    """The ETag in an XML answer (CompleteMultipartUpload, CopyObject, UploadPartCopy), unquoted."""
    m = _ETAG_RE.search(body)
    return html.unescape(m.group(1).decode()).strip('"') if m else ""


def _checksum_re(algorithm: str) -> re.Pattern[bytes]:
    """The ``<ChecksumCRC32C>``-style element of an XML answer."""
    return re.compile(rb"<Checksum" + algorithm.encode() + rb">([^<]+)</Checksum")


def _header(headers: Sequence[tuple[str, str]] | None, name: str) -> str | None:
    if not headers:
        return None
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


def _boto_error(err: Exception, what: str, settings: AwsSettings | None = None) -> StoreError:
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


def _no_answer(error: StoreError) -> bool:
    """The endpoint gave no answer at all: refused, unknown host, or silent until the read timeout.
    (A connection reset or a closed connection may be a flaky network: retried as usual.)"""
    if isinstance(error, RequestTimeoutError):
        return error.status is None
    code = error.code or ""
    return isinstance(error, NetworkError) and ("REFUSED" in code or "DNS" in code)


class _CrtRequest:
    """Holds an awscrt S3Request alive and forwards ``cancel``."""

    __slots__ = ("_request",)

    def __init__(self, request: s3.S3Request) -> None:
        self._request = request

    def cancel(self) -> None:
        self._request.cancel()


class S3Store(S3Reads):
    """Store over S3: awscrt for PUT/UploadPart, boto3 for the control plane. The calls that read
    without writing (HeadObject, ListBuckets, a one-level listing, a streamed GetObject) are in
    :class:`~s3pump.store.s3_reads.S3Reads`.

    Raises:
        UsageError: a bad endpoint URL or unknown profile.
        CredentialsError: no credentials anywhere in botocore's chain.
    """

    def __init__(self, config: TransferConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._boto_obj: Any = None
        static = ((config.access_key_id, config.secret_access_key, config.session_token)
                  if config.access_key_id and config.secret_access_key else None)
        # one resolution (botocore's, with the aws cli's rules) for both planes: see awsconfig.py
        self.settings = resolve_aws(endpoint_url=config.endpoint_url, region=config.region,
                                    profile=config.profile, static_credentials=static,
                                    ca_bundle=config.ca_bundle)
        self.region = self.settings.region
        self._endpoint = _endpoint_of(self.settings)
        self._answered = threading.Event()  # set once the endpoint answered any request
        self._silent_failures = 0  # requests that got no answer at all before the endpoint ever answered
        self._checksum_name = None if config.checksum_algorithm == "none" else config.checksum_algorithm
        self._checksum_config = (
            s3.S3ChecksumConfig(
                # as a header, not an aws-chunked trailer: the server then verifies a plain body (W1 on
                # SeaweedFS: ~8 % faster, the same as sending no checksum at all)
                algorithm=_CRT_ALGORITHMS[config.checksum_algorithm], location=s3.S3ChecksumLocation.HEADER
            )
            if self._checksum_name
            else None
        )
        self._checksum_header = f"x-amz-checksum-{self._checksum_name.lower()}" if self._checksum_name else None
        self._crt = self._make_crt_client(config)
        #: The retry policy of this store's idempotent control-plane calls; a run shares its own
        #: (see :meth:`use_retry_policy`), so these retries spend the run's budget and are counted.
        self.retry = RetryPolicy.from_config(config)
        self._closed = threading.Event()

    # ------------------------------------------------------------------ botocore, created on first use
    @property
    def _boto(self) -> Any:
        """The botocore S3 client of the control plane (listing, head, delete, copy), created on first
        use from the same session, endpoint, region and addressing style as awscrt's requests."""
        if self._boto_obj is None:
            with self._lock:
                if self._boto_obj is None:
                    import botocore.config

                    cfg = self.config
                    boto_config = botocore.config.Config(
                        max_pool_connections=max(16, min(cfg.concurrency, 64)),
                        retries={"mode": "standard", "total_max_attempts": 1},  # self.retry retries
                        s3={"addressing_style": "path" if self._endpoint.path_style else "virtual"},
                        connect_timeout=cfg.connect_timeout_s, read_timeout=cfg.read_timeout_s,
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    )
                    verify: bool | str | None = (False if not cfg.verify_ssl
                                                 else self.settings.ca_bundle or None)
                    if verify is False:  # said once by the CLI (--no-verify-ssl), not per request
                        import warnings

                        import urllib3

                        warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
                    self._boto_obj = self.settings.session.create_client(
                        "s3", endpoint_url=self.settings.endpoint_url, region_name=self.region,
                        config=boto_config, verify=verify)
        return self._boto_obj

    # ------------------------------------------------------------------ awscrt
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
            multipart_upload_threshold=_NO_SPLIT_BYTES,
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
    ) -> _CrtRequest:
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
        return _CrtRequest(crt_request)

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
                if self._answered.is_set() or not _no_answer(e):
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
                and not finished.wait(min(_TLS_PROBE_AFTER_S, wait_s))):
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
                    error_body = f"<Code>{code}</Code><Message>{_http_reason(status)}</Message>".encode()
            raise self._crt_error(error, status, error_body, what, error_headers or response_headers)
        return int(status or 200), response_headers, b"".join(chunks)

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
        region = rm.group(1).decode("ascii", "replace") if rm else _header(headers, "x-amz-bucket-region")
        return classify_store_error(status, code, message, what=what, region=region, signed_region=self.region)

    # ------------------------------------------------------------------ data plane
    def put_file(
        self, bucket: str, key: str, path: str, size_bytes: int, attrs: ObjectAttributes,
        on_done: DoneCallback,
    ) -> _CrtRequest:
        return self._start(
            bucket=bucket, key=key, method_path=self._endpoint.path_for(bucket, key), size=size_bytes,
            attrs=attrs, on_done=on_done, kind=s3.S3RequestType.PUT_OBJECT, operation=None,
            send_filepath=path,
        )

    def put_bytes(
        self, bucket: str, key: str, body: bytes | memoryview | StreamBody, attrs: ObjectAttributes,
        on_done: DoneCallback,
    ) -> _CrtRequest:
        return self._start(
            bucket=bucket, key=key, method_path=self._endpoint.path_for(bucket, key), size=len(body),
            attrs=attrs, on_done=on_done, kind=s3.S3RequestType.PUT_OBJECT, operation=None, body=body,
        )

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: bytes | memoryview | StreamBody,
        on_done: DoneCallback,
    ) -> _CrtRequest:
        path = f"{self._endpoint.path_for(bucket, key)}?partNumber={part_number}&uploadId={quote(upload_id, safe='')}"
        return self._start(
            bucket=bucket, key=key, method_path=path, size=len(body), attrs=ObjectAttributes(),
            on_done=on_done, kind=s3.S3RequestType.DEFAULT, operation="UploadPart", body=body,
        )

    # ------------------------------------------------------------------ control plane
    def use_retry_policy(self, policy: RetryPolicy) -> None:
        """Retry the idempotent control-plane calls with ``policy`` (a run's, shared with its engine)."""
        self.retry = policy

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """A botocore call (all of them idempotent), retried by :attr:`retry`."""
        return self.retry.call(lambda: self._call_once(what, fn, **kwargs), what=(what, None))

    def _call_once(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """One botocore call; its failure as the store's error (:func:`_boto_error`)."""
        import botocore.exceptions

        try:
            result = fn(**kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            if isinstance(e, botocore.exceptions.ClientError):
                self._answered.set()
            raise _boto_error(e, what, self.settings) from None
        self._answered.set()
        return result

    def _new_object_headers(self, attrs: ObjectAttributes) -> list[tuple[str, str]]:
        """The headers that fix a new object's attributes (CreateMultipartUpload, CopyObject)."""
        headers = attrs.headers()
        if attrs.content_type:
            headers.append(("Content-Type", attrs.content_type))
        if self._checksum_name:
            headers.append(("x-amz-checksum-algorithm", self._checksum_name))
        if attrs.checksum_type:
            headers.append(("x-amz-checksum-type", attrs.checksum_type))
        return headers

    def create_multipart_upload(self, bucket: str, key: str, attrs: ObjectAttributes) -> str:
        headers = self._new_object_headers(attrs)
        _, _, body = self._crt_call("POST", bucket, key, "uploads", "CreateMultipartUpload", headers=headers)
        m = _UPLOAD_ID_RE.search(body)
        if m is None:
            raise classify_store_error(200, "InternalError", "no UploadId in the answer", what=f"s3://{bucket}/{key}")
        return m.group(1).decode()

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[CompletedPart],
        full_object_checksum: tuple[str, str] | None = None,
    ) -> PutResult:
        field = f"Checksum{self._checksum_name}" if self._checksum_name else None
        full: list[tuple[str, str]] = []
        if full_object_checksum is not None:
            algorithm, value = full_object_checksum
            full = [(f"x-amz-checksum-{algorithm.lower()}", value), ("x-amz-checksum-type", "FULL_OBJECT")]
        xml = ['<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">']
        for p in parts:
            xml.append(f"<Part><PartNumber>{p.part_number}</PartNumber><ETag>&quot;{p.etag}&quot;</ETag>")
            if field and p.checksum:
                xml.append(f"<{field}>{p.checksum}</{field}>")
            xml.append("</Part>")
        xml.append("</CompleteMultipartUpload>")
        _, headers, body = self._crt_call("POST", bucket, key, f"uploadId={quote(upload_id, safe='')}",
                                          "CompleteMultipartUpload", body="".join(xml).encode(),
                                          headers=[("Content-Type", "application/xml"), *full])
        return PutResult(_etag_in(body), None, _header(headers, "x-amz-version-id"))

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        try:  # one request, not retried here: the caller retries an abort (Store.abort_multipart_upload)
            self._crt_call("DELETE", bucket, key, f"uploadId={quote(upload_id, safe='')}", "AbortMultipartUpload")
        except StoreError as e:
            if e.code != "NoSuchUpload":
                raise

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[CompletedPart]:
        out: list[CompletedPart] = []
        field = f"Checksum{self._checksum_name}" if self._checksum_name else None
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
        guard = PageGuard(f"s3://{bucket}/{key} (upload {upload_id})", "ListParts", "NextPartNumberMarker")
        while True:
            resp = self._call(f"s3://{bucket}/{key}", self._boto.list_parts, **kwargs)
            for p in resp.get("Parts", []):
                out.append(CompletedPart(
                    p["PartNumber"], p["ETag"].strip('"'), p.get("Size", 0), p.get(field) if field else None,
                ))
            parts = resp.get("Parts", [])
            marker = guard.next(bool(resp.get("IsTruncated")), resp.get("NextPartNumberMarker") or None,
                                parts[0]["PartNumber"] if parts else None)
            if marker is None:
                return out
            kwargs["PartNumberMarker"] = marker

    def list_multipart_uploads(self, bucket: str, prefix: str = "") -> Iterator[MultipartUploadInfo]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        guard = PageGuard(f"s3://{bucket}/{prefix}", "ListMultipartUploads", "NextKeyMarker", prefix)
        while True:
            resp = self._call(f"s3://{bucket}/{prefix}", self._boto.list_multipart_uploads, **kwargs)
            uploads = resp.get("Uploads", [])
            markers = guard.next(bool(resp.get("IsTruncated")),  # before the page is handed out (and aborted)
                                 (resp.get("NextKeyMarker") or "", resp.get("NextUploadIdMarker") or ""),
                                 (uploads[0]["Key"], uploads[0]["UploadId"]) if uploads else None)
            for u in uploads:
                if guard.keep(u["Key"]):  # a server that ignores Prefix lists every upload of the bucket
                    yield MultipartUploadInfo(u["Key"], u["UploadId"], u["Initiated"].timestamp())
            if markers is None:
                return
            kwargs["KeyMarker"], kwargs["UploadIdMarker"] = markers  # type: ignore[misc]

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """ListObjectsV2 over awscrt, 1,000 keys a page, parsed by store/listing.py (sync, ``ls --recursive``)."""
        token: str | None = None
        guard = PageGuard(f"s3://{bucket}/{prefix}", "ListObjectsV2", "NextContinuationToken", prefix)
        while True:
            query = f"encoding-type=url&list-type=2&max-keys=1000&prefix={quote(prefix, safe='')}"
            if token:
                query += f"&continuation-token={quote(token, safe='')}"
            _, _, body = self._crt_call("GET", bucket, None, query, "ListObjectsV2", retry=True)
            from .listing import parse_list_page  # imported by the jobs that list

            objects, truncated, next_token = parse_list_page(body, what=f"s3://{bucket}/{prefix}")
            # checked before the page is handed out: a looping page is not read twice
            token = guard.next(truncated, next_token, objects[0].key if objects else None)  # type: ignore[assignment]
            if prefix and not all(o.key.startswith(prefix) for o in objects):  # a server that ignores prefix
                objects = [o for o in objects if guard.keep(o.key)]
            yield from objects
            if token is None:
                return

    def get_object(self, bucket: str, key: str) -> bytes:
        """GetObject over awscrt, the whole body in memory (small objects: export's state, Iceberg metadata);
        retried by the store's policy. A 404 raises :class:`StoreError` with ``status`` 404."""
        _, _, body = self._crt_call("GET", bucket, key, "", "GetObject", retry=True)
        return body

    def delete_objects(self, bucket: str, keys: Sequence[str]) -> None:
        self._delete(bucket, [{"Key": k} for k in keys])

    def _delete(self, bucket: str, objects: list[dict[str, str]]) -> None:
        """DeleteObjects, 1,000 objects a request (S3 API reference, DeleteObjects); the first refusal
        is raised."""
        for i in range(0, len(objects), 1000):
            resp = self._call(f"s3://{bucket}", self._boto.delete_objects,
                              Bucket=bucket, Delete={"Objects": objects[i : i + 1000], "Quiet": True})
            errors = resp.get("Errors", [])
            if errors:
                first = errors[0]
                raise classify_store_error(None, first.get("Code"), first.get("Message", ""),
                                           what=f"s3://{bucket}/{first.get('Key')}")

    def head_bucket(self, bucket: str) -> None:
        try:
            self._crt_call("HEAD", bucket, None, "", "HeadBucket", retry=True)
        except FatalStoreError as e:
            # A HEAD response has no body, so a bad signature or unknown access key also reads as
            # 403, and an expired session token as a bare 400. ListObjectsV2 returns the error
            # document with the real code; raise that one.
            if not isinstance(e, AccessDeniedError) and e.code is not None:
                raise
            self._crt_call("GET", bucket, None, "list-type=2&max-keys=1", "ListObjectsV2", retry=True)
            raise

    def create_bucket(self, bucket: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1" and not self.settings.endpoint_url:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._call(f"s3://{bucket}", self._boto.create_bucket, **kwargs)
        except StoreError as e:
            if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def delete_bucket(self, bucket: str) -> None:
        self._call(f"s3://{bucket}", self._boto.delete_bucket, Bucket=bucket)

    # ------------------------------------------------------------------ bucket configuration (boto3)
    def get_bucket_lifecycle(self, bucket: str) -> list[dict[str, Any]]:
        try:
            resp = self._call(f"s3://{bucket}", self._boto.get_bucket_lifecycle_configuration, Bucket=bucket)
        except StoreError as e:
            if e.code == "NoSuchLifecycleConfiguration":
                return []
            raise
        return list(resp.get("Rules", []))

    def put_bucket_lifecycle(self, bucket: str, rules: Sequence[dict[str, Any]]) -> None:
        if not rules:
            self._call(f"s3://{bucket}", self._boto.delete_bucket_lifecycle, Bucket=bucket)
            return
        self._call(f"s3://{bucket}", self._boto.put_bucket_lifecycle_configuration, Bucket=bucket,
                   LifecycleConfiguration={"Rules": list(rules)})

    def get_bucket_versioning(self, bucket: str) -> str | None:
        resp = self._call(f"s3://{bucket}", self._boto.get_bucket_versioning, Bucket=bucket)
        status = resp.get("Status")
        return str(status) if status else None

    def put_bucket_versioning(self, bucket: str, enabled: bool) -> None:
        self._call(f"s3://{bucket}", self._boto.put_bucket_versioning, Bucket=bucket,
                   VersioningConfiguration={"Status": "Enabled" if enabled else "Suspended"})

    def list_object_versions(self, bucket: str, prefix: str = "") -> Iterator[ObjectVersion]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        guard = PageGuard(f"s3://{bucket}/{prefix}", "ListObjectVersions", "NextKeyMarker", prefix)
        while True:
            resp = self._call(f"s3://{bucket}/{prefix}", self._boto.list_object_versions, **kwargs)
            first = (resp.get("Versions") or resp.get("DeleteMarkers") or [None])[0]
            markers = guard.next(bool(resp.get("IsTruncated")),  # before the page is handed out (and deleted)
                                 (resp.get("NextKeyMarker") or "", resp.get("NextVersionIdMarker") or ""),
                                 (first["Key"], first.get("VersionId")) if first else None)
            for v in resp.get("Versions", []):
                if guard.keep(v["Key"]):
                    yield ObjectVersion(v["Key"], v.get("VersionId") or "null", bool(v.get("IsLatest")),
                                        v.get("Size", 0), v.get("ETag", "").strip('"'))
            for m in resp.get("DeleteMarkers", []):
                if guard.keep(m["Key"]):
                    yield ObjectVersion(m["Key"], m.get("VersionId") or "null", bool(m.get("IsLatest")),
                                        delete_marker=True)
            if markers is None:
                return
            kwargs["KeyMarker"], kwargs["VersionIdMarker"] = markers  # type: ignore[misc]

    def delete_versions(self, bucket: str, versions: Sequence[tuple[str, str]]) -> None:
        self._delete(bucket, [{"Key": k, "VersionId": v} for k, v in versions])

    def replace_metadata(
        self, bucket: str, key: str, attrs: ObjectAttributes, *, size_bytes: int, etag: str,
        version_id: str | None = None,
    ) -> PutResult:
        # CopyObject onto itself, through awscrt, so a stream never loads boto3. Objects over 5 GiB
        # are copied in parts by s3pump.engine.copy (upload_part_copy).
        if size_bytes > _NO_SPLIT_BYTES:
            raise UsageError(f"s3://{bucket}/{key}: CopyObject copies at most 5 GiB; copy in parts")
        _, headers, body = self._crt_call(
            "PUT", bucket, key, "", "CopyObject", retry=True,
            headers=[*self._copy_source(bucket, key, etag, version_id), ("x-amz-metadata-directive", "REPLACE"),
                     *self._new_object_headers(attrs)])
        return PutResult(_etag_in(body), None, _header(headers, "x-amz-version-id"))

    def upload_part_copy(
        self, bucket: str, key: str, upload_id: str, part_number: int, start: int, end: int, *, etag: str,
        version_id: str | None = None,
    ) -> CompletedPart:
        _, _, body = self._crt_call(
            "PUT", bucket, key, f"partNumber={part_number}&uploadId={quote(upload_id, safe='')}",
            "UploadPartCopy", retry=True,
            headers=[*self._copy_source(bucket, key, etag, version_id),
                     ("x-amz-copy-source-range", f"bytes={start}-{end - 1}")])
        checksum = _checksum_re(self._checksum_name).search(body) if self._checksum_name else None
        return CompletedPart(part_number, _etag_in(body), end - start, checksum.group(1).decode() if checksum else None)

    @staticmethod
    def _copy_source(bucket: str, key: str, etag: str, version_id: str | None) -> list[tuple[str, str]]:
        source = "/" + quote(f"{bucket}/{key}", safe="/~")
        if version_id:
            source += f"?versionId={quote(version_id, safe='')}"
        return [("x-amz-copy-source", source), ("x-amz-copy-source-if-match", f'"{etag}"')]

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            if self._boto_obj is not None:
                self._boto_obj.close()
            del self._crt
