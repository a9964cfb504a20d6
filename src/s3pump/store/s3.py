"""S3Store: the Store protocol over real S3 or any S3-compatible endpoint.

* Data plane (PutObject, UploadPart): ``awscrt``'s S3 client. For a file, awscrt
  reads the bytes itself (``send_filepath``); Python only builds the request.
  awscrt's own retries and multipart splitting are off: the s3pump engine owns
  retries (counted, budgeted) and multipart (journaled, resumable).
* Control plane (multipart create/complete/abort/list, head, list, delete,
  buckets): boto3, which also resolves credentials and region through the
  standard chain (env, profile, SSO, container, IMDS).

awscrt has no endpoint URL: a custom endpoint is reached by sending its
``host:port`` as the Host header with path-style ``/bucket/key`` paths, and
``tls_mode=DISABLED`` for ``http://`` (see shared notes on SeaweedFS).
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import botocore.config
import botocore.exceptions
from awscrt import auth, http, s3

from ..config import TransferConfig
from ..errors import (
    AccessDeniedError,
    CredentialsError,
    FatalStoreError,
    NetworkError,
    StoreError,
    UsageError,
    classify_store_error,
)
from .base import (
    CompletedPart,
    DoneCallback,
    MultipartUploadInfo,
    ObjectAttributes,
    ObjectInfo,
    PutResult,
)
from .body import StreamBody

__all__ = ["S3Store"]

_CRT_ALGORITHMS = {
    "CRC32C": s3.S3ChecksumAlgorithm.CRC32C,
    "CRC32": s3.S3ChecksumAlgorithm.CRC32,
    "CRC64NVME": s3.S3ChecksumAlgorithm.CRC64NVME,
    "SHA1": s3.S3ChecksumAlgorithm.SHA1,
    "SHA256": s3.S3ChecksumAlgorithm.SHA256,
}
_CODE_RE = re.compile(rb"<Code>([^<]+)</Code>")
_MESSAGE_RE = re.compile(rb"<Message>([^<]*)</Message>")
# awscrt transport errors that mean "the connection went away": retryable.
# awscrt turns some S3 error responses into its own error names and drops the status and body
# (seen with 500 InternalError, 503 SlowDown and 400 RequestTimeout): map them back, so SlowDown
# is a ThrottlingError (the adaptive concurrency reacts to it), not a NetworkError.
_CRT_S3_STATUS_ERRORS = {
    "AWS_ERROR_S3_INTERNAL_ERROR": (500, "InternalError"),
    "AWS_ERROR_S3_SLOW_DOWN": (503, "SlowDown"),
    "AWS_ERROR_S3_REQUEST_TIMEOUT": (400, "RequestTimeout"),
}
_NETWORK_ERROR_HINTS = ("SOCKET", "CONNECTION", "HTTP_CONNECTION", "TLS", "IO_", "CLOSED", "TIMEOUT")
_NO_SPLIT_BYTES = 5 * 1024 * 1024 * 1024  # awscrt must never split a PutObject itself


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


def _resolve_endpoint(config: TransferConfig, region: str) -> _Endpoint:
    if config.endpoint_url:
        parts = urlsplit(config.endpoint_url)
        if not parts.hostname:
            raise UsageError(f"endpoint URL {config.endpoint_url!r} has no host")
        host = parts.netloc.rsplit("@", 1)[-1]
        return _Endpoint(parts.scheme, host, path_style=True)
    return _Endpoint("https", f"s3.{region}.amazonaws.com", path_style=False)


def _header(headers: Sequence[tuple[str, str]] | None, name: str) -> str | None:
    if not headers:
        return None
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


def _boto_error(err: Exception, what: str) -> StoreError:
    if isinstance(err, botocore.exceptions.ClientError):
        resp: dict[str, Any] = dict(err.response)
        code = resp.get("Error", {}).get("Code")
        status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == str(status):  # HEAD requests carry no body: the "code" is the status
            code = {404: "NoSuchBucket", 403: "AccessDenied"}.get(status)
        message = resp.get("Error", {}).get("Message", "")
        return classify_store_error(status, code, message, what=what)
    if isinstance(err, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return CredentialsError(
            f"{what}: no AWS credentials found; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --profile"
        )
    if isinstance(err, botocore.exceptions.ProfileNotFound):
        return CredentialsError(f"{what}: {err}")
    if isinstance(err, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectionError):
        return NetworkError(f"{what}: cannot connect ({err}); check --endpoint-url and that the server is up")
    if isinstance(err, botocore.exceptions.BotoCoreError):
        return NetworkError(f"{what}: {err}")
    raise err


class _SourceFailure(StoreError):
    """awscrt could not read the file it was to send: a local problem, not retryable."""

    retryable = False


class _CrtRequest:
    """Holds an awscrt S3Request alive and forwards ``cancel``."""

    __slots__ = ("_request",)

    def __init__(self, request: s3.S3Request) -> None:
        self._request = request

    def cancel(self) -> None:
        self._request.cancel()


class S3Store:
    """Store over S3: awscrt for PUT/UploadPart, boto3 for the control plane.

    Raises:
        UsageError: a bad endpoint URL or unknown profile.
    """

    def __init__(self, config: TransferConfig) -> None:
        self.config = config
        try:
            session = boto3.session.Session(
                profile_name=config.profile,
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key,
                aws_session_token=config.session_token,
                region_name=config.region,
            )
        except botocore.exceptions.ProfileNotFound as e:
            raise UsageError(f"--profile: {e}") from None
        self.region = session.region_name or "us-east-1"
        self._endpoint = _resolve_endpoint(config, self.region)
        self._botocore_credentials = session.get_credentials()
        boto_config = botocore.config.Config(
            max_pool_connections=max(16, min(config.concurrency, 64)),
            retries={"mode": "standard", "max_attempts": config.max_attempts},
            s3={"addressing_style": "path" if self._endpoint.path_style else "auto"},
            connect_timeout=config.connect_timeout_s,
            read_timeout=config.request_timeout_s,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._boto = session.client("s3", endpoint_url=config.endpoint_url, config=boto_config)
        self._checksum_name = None if config.checksum_algorithm == "none" else config.checksum_algorithm
        self._checksum_config = (
            s3.S3ChecksumConfig(
                algorithm=_CRT_ALGORITHMS[config.checksum_algorithm], location=s3.S3ChecksumLocation.TRAILER
            )
            if self._checksum_name
            else None
        )
        self._checksum_header = f"x-amz-checksum-{self._checksum_name.lower()}" if self._checksum_name else None
        self._crt = self._make_crt_client(config)
        # (bucket, key) -> time of a CreateMultipartUpload that failed retryably (see _abort_strays)
        self._create_doubts: dict[tuple[str, str], float] = {}
        self._closed = threading.Event()

    # ------------------------------------------------------------------ awscrt
    def _credentials_provider(self) -> auth.AwsCredentialsProvider:
        cfg = self.config
        if cfg.access_key_id and cfg.secret_access_key:
            return auth.AwsCredentialsProvider.new_static(
                cfg.access_key_id, cfg.secret_access_key, cfg.session_token
            )
        creds = self._botocore_credentials

        def get_credentials() -> auth.AwsCredentials:
            if creds is None:
                raise CredentialsError("no AWS credentials found; set AWS_ACCESS_KEY_ID or --profile")
            frozen = creds.get_frozen_credentials()  # refreshes SSO/IMDS/container credentials
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
            part_size=config.part_size_bytes,
            multipart_upload_threshold=_NO_SPLIT_BYTES,
            memory_limit=max(1 << 30, 2 * config.max_parts_in_flight * config.part_size_bytes),
            retry_config=s3.S3RetryConfig(retry_mode=s3.S3RetryMode.NONE),
            connect_timeout_ms=int(config.connect_timeout_s * 1000),
            max_active_connections_override=(config.max_concurrency if config.adaptive_concurrency
                                             else config.concurrency),
        )

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
        request = http.HttpRequest(
            "PUT", method_path, self._headers(bucket, size, attrs),
            None if body is None else io.BytesIO(body) if isinstance(body, bytes | memoryview) else body.reader(),
        )
        response_headers: list[tuple[str, str]] = []
        checksum_header = self._checksum_header
        what = f"s3://{bucket}/{key}"

        def on_headers(status_code: int, headers: list[tuple[str, str]], **_: Any) -> None:
            response_headers.extend(headers)

        def done(error: Exception | None = None, status_code: int | None = None,
                 error_body: bytes | None = None, **_: Any) -> None:
            if error is None:
                etag = (_header(response_headers, "ETag") or "").strip('"')
                checksum = _header(response_headers, checksum_header) if checksum_header else None
                on_done(PutResult(etag, checksum, _header(response_headers, "x-amz-version-id")))
            else:
                on_done(self._crt_error(error, status_code, error_body, what))

        crt_request = self._crt.make_request(
            type=kind,
            operation_name=operation,
            request=request,
            send_filepath=send_filepath,
            checksum_config=self._checksum_config,
            on_headers=on_headers,
            on_done=done,
        )
        return _CrtRequest(crt_request)

    @staticmethod
    def _crt_error(error: Exception, status: int | None, body: bytes | None, what: str) -> StoreError:
        code: str | None = None
        message = ""
        if body:
            m = _CODE_RE.search(body)
            code = m.group(1).decode("utf-8", "replace") if m else None
            mm = _MESSAGE_RE.search(body)
            message = mm.group(1).decode("utf-8", "replace") if mm else ""
        if not status:
            name = getattr(error, "name", type(error).__name__)
            if name == "AWS_ERROR_S3_CANCELED":
                return NetworkError(f"{what}: request cancelled", code=name)
            if name in _CRT_S3_STATUS_ERRORS:  # awscrt consumed the response: restore status and code
                crt_status, crt_code = _CRT_S3_STATUS_ERRORS[name]
                return classify_store_error(crt_status, crt_code, "", what=what)
            if name in ("AWS_ERROR_HTTP_RESPONSE_FIRST_BYTE_TIMEOUT", "AWS_IO_SOCKET_TIMEOUT"):
                return classify_store_error(None, "RequestTimeout", name, what=what)
            if any(hint in name for hint in _NETWORK_ERROR_HINTS):
                return NetworkError(f"{what}: {name}; check --endpoint-url and that the server is up",
                                    code=name)
            if name.startswith(("AWS_ERROR_FILE", "AWS_ERROR_NO_PERMISSION", "AWS_IO_FILE")):
                reason = "permission denied; check the file's permissions" if "PERMISSION" in name else name
                return _SourceFailure(f"{what}: cannot read the source file: {reason}", code=name)
            return NetworkError(f"{what}: {name}", code=name)
        return classify_store_error(status, code, message, what=what)

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
    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise _boto_error(e, what) from None

    def create_multipart_upload(self, bucket: str, key: str, attrs: ObjectAttributes) -> str:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if attrs.content_type:
            kwargs["ContentType"] = attrs.content_type
        if attrs.acl:
            kwargs["ACL"] = attrs.acl
        if attrs.sse:
            kwargs["ServerSideEncryption"] = attrs.sse
        if attrs.sse_kms_key_id:
            kwargs["SSEKMSKeyId"] = attrs.sse_kms_key_id
        if attrs.storage_class:
            kwargs["StorageClass"] = attrs.storage_class
        if attrs.metadata:
            kwargs["Metadata"] = dict(attrs.metadata)
        if self._checksum_name:
            kwargs["ChecksumAlgorithm"] = self._checksum_name
        started = time.time()
        try:
            resp = self._call(f"s3://{bucket}/{key}", self._boto.create_multipart_upload, **kwargs)
        except StoreError as e:
            if e.retryable:  # the server may have created an upload whose ID never reached us
                self._create_doubts.setdefault((bucket, key), started)
            raise
        upload_id = str(resp["UploadId"])
        since = self._create_doubts.pop((bucket, key), None)
        if resp.get("ResponseMetadata", {}).get("RetryAttempts", 0):
            since = min(since or started, started)
        if since is not None:
            self._abort_strays(bucket, key, upload_id, since)
        return upload_id

    def _abort_strays(self, bucket: str, key: str, keep_upload_id: str, since: float) -> None:
        """A CreateMultipartUpload that had to be retried may have created uploads we never heard
        of (the response was lost). Abort the uploads of exactly ``key`` initiated since the first
        attempt (60 s of clock slack), except ``keep_upload_id``. Best effort."""
        with contextlib.suppress(StoreError):
            for u in self.list_multipart_uploads(bucket, key):
                if u.key == key and u.upload_id != keep_upload_id and u.initiated >= since - 60.0:
                    self.abort_multipart_upload(bucket, key, u.upload_id)

    def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: Sequence[CompletedPart]
    ) -> PutResult:
        field = f"Checksum{self._checksum_name}" if self._checksum_name else None
        payload = []
        for p in parts:
            entry: dict[str, Any] = {"PartNumber": p.part_number, "ETag": f'"{p.etag}"'}
            if field and p.checksum:
                entry[field] = p.checksum
            payload.append(entry)
        resp = self._call(
            f"s3://{bucket}/{key}", self._boto.complete_multipart_upload,
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": payload},
        )
        return PutResult(str(resp.get("ETag", "")).strip('"'), None, resp.get("VersionId"))

    def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            self._call(f"s3://{bucket}/{key}", self._boto.abort_multipart_upload,
                       Bucket=bucket, Key=key, UploadId=upload_id)
        except StoreError as e:
            if e.code != "NoSuchUpload":
                raise

    def list_parts(self, bucket: str, key: str, upload_id: str) -> list[CompletedPart]:
        out: list[CompletedPart] = []
        field = f"Checksum{self._checksum_name}" if self._checksum_name else None
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "UploadId": upload_id}
        while True:
            resp = self._call(f"s3://{bucket}/{key}", self._boto.list_parts, **kwargs)
            for p in resp.get("Parts", []):
                out.append(CompletedPart(
                    p["PartNumber"], p["ETag"].strip('"'), p.get("Size", 0), p.get(field) if field else None,
                ))
            if not resp.get("IsTruncated"):
                return out
            kwargs["PartNumberMarker"] = resp["NextPartNumberMarker"]

    def list_multipart_uploads(self, bucket: str, prefix: str = "") -> Iterator[MultipartUploadInfo]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            resp = self._call(f"s3://{bucket}/{prefix}", self._boto.list_multipart_uploads, **kwargs)
            for u in resp.get("Uploads", []):
                yield MultipartUploadInfo(u["Key"], u["UploadId"], u["Initiated"].timestamp())
            if not resp.get("IsTruncated"):
                return
            kwargs["KeyMarker"] = resp.get("NextKeyMarker", "")
            kwargs["UploadIdMarker"] = resp.get("NextUploadIdMarker", "")

    def head_object(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            resp = self._call(f"s3://{bucket}/{key}", self._boto.head_object, Bucket=bucket, Key=key)
        except StoreError as e:
            if e.status == 404:
                return None
            raise
        return ObjectInfo(
            key, resp["ContentLength"], resp["ETag"].strip('"'), resp["LastModified"].timestamp(),
            dict(resp.get("Metadata", {})), resp.get("ServerSideEncryption"),
        )

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self._boto.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for o in page.get("Contents", []):
                    yield ObjectInfo(o["Key"], o["Size"], o["ETag"].strip('"'), o["LastModified"].timestamp())
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise _boto_error(e, f"s3://{bucket}/{prefix}") from None

    def get_object(self, bucket: str, key: str) -> bytes:
        resp = self._call(f"s3://{bucket}/{key}", self._boto.get_object, Bucket=bucket, Key=key)
        return bytes(resp["Body"].read())

    def delete_objects(self, bucket: str, keys: Sequence[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            resp = self._call(f"s3://{bucket}", self._boto.delete_objects,
                              Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            errors = resp.get("Errors", [])
            if errors:
                first = errors[0]
                raise classify_store_error(None, first.get("Code"), first.get("Message", ""),
                                           what=f"s3://{bucket}/{first.get('Key')}")

    def head_bucket(self, bucket: str) -> None:
        try:
            self._call(f"s3://{bucket}", self._boto.head_bucket, Bucket=bucket)
        except FatalStoreError as e:
            # A HEAD response has no body, so a bad signature or unknown access key also reads as
            # 403, and an expired session token as a bare 400. ListObjectsV2 returns the error
            # document with the real code; raise that one.
            if not isinstance(e, AccessDeniedError) and e.code is not None:
                raise
            self._call(f"s3://{bucket}", self._boto.list_objects_v2, Bucket=bucket, MaxKeys=1)
            raise

    def create_bucket(self, bucket: str) -> None:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1" and not self.config.endpoint_url:
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._call(f"s3://{bucket}", self._boto.create_bucket, **kwargs)
        except StoreError as e:
            if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def replace_metadata(
        self, bucket: str, key: str, attrs: ObjectAttributes, *, size_bytes: int, etag: str,
        version_id: str | None = None,
    ) -> PutResult:
        what = f"s3://{bucket}/{key}"
        source: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            source["VersionId"] = version_id
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Metadata": dict(attrs.metadata)}
        if attrs.content_type:
            kwargs["ContentType"] = attrs.content_type
        if attrs.acl:
            kwargs["ACL"] = attrs.acl
        if attrs.sse:
            kwargs["ServerSideEncryption"] = attrs.sse
        if attrs.sse_kms_key_id:
            kwargs["SSEKMSKeyId"] = attrs.sse_kms_key_id
        if attrs.storage_class:
            kwargs["StorageClass"] = attrs.storage_class
        if self._checksum_name:
            kwargs["ChecksumAlgorithm"] = self._checksum_name
        if size_bytes <= _NO_SPLIT_BYTES:  # CopyObject copies at most 5 GiB
            resp = self._call(what, self._boto.copy_object, CopySource=source, CopySourceIfMatch=f'"{etag}"',
                              MetadataDirective="REPLACE", **kwargs)
            result = resp.get("CopyObjectResult", {})
            return PutResult(str(result.get("ETag", "")).strip('"'), None, resp.get("VersionId"))
        upload_id = str(self._call(what, self._boto.create_multipart_upload, **kwargs)["UploadId"])
        try:
            part_size = max(512 * 1024 * 1024, -(-size_bytes // 10_000))
            parts: list[dict[str, Any]] = []
            for number, start in enumerate(range(0, size_bytes, part_size), 1):
                end = min(start + part_size, size_bytes) - 1
                resp = self._call(what, self._boto.upload_part_copy, Bucket=bucket, Key=key, UploadId=upload_id,
                                  PartNumber=number, CopySource=source, CopySourceIfMatch=f'"{etag}"',
                                  CopySourceRange=f"bytes={start}-{end}")
                entry: dict[str, Any] = {"PartNumber": number, "ETag": resp["CopyPartResult"]["ETag"]}
                field = f"Checksum{self._checksum_name}" if self._checksum_name else None
                if field and resp["CopyPartResult"].get(field):
                    entry[field] = resp["CopyPartResult"][field]
                parts.append(entry)
            done = self._call(what, self._boto.complete_multipart_upload, Bucket=bucket, Key=key,
                              UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(StoreError):
                self.abort_multipart_upload(bucket, key, upload_id)
            raise
        return PutResult(str(done.get("ETag", "")).strip('"'), None, done.get("VersionId"))

    @property
    def boto_client(self) -> Any:
        """The boto3 client of the control plane (for jobs that need an operation not listed here)."""
        return self._boto

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._boto.close()
            del self._crt
