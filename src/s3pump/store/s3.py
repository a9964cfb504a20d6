"""S3Store: the Store protocol over real S3 or any S3-compatible endpoint.

* Data plane (PutObject, UploadPart): ``awscrt``'s S3 client (``s3_crt.py``). For a file, awscrt reads the bytes
  itself (``send_filepath``); Python only builds the request. awscrt's own retries and multipart splitting are
  off: the s3pump engine owns retries (counted, budgeted) and multipart (journaled, resumable).
* Control plane: multipart create/complete/abort, HeadBucket, HeadObject, ListObjectsV2 (also with a
  delimiter), GetObject, CopyObject and UploadPartCopy also through awscrt (``CrtRequests._crt_call``), so an
  upload or a stream never loads boto3; the rarer calls (ListParts, ListMultipartUploads, ListBuckets, a
  streamed GetObject, DeleteObjects, CreateBucket, bucket configuration) through a botocore client, created on
  first use, that no code outside ``store/`` sees.
* Both take endpoint, region, addressing style and credentials from one
  :func:`s3pump.awsconfig.resolve_aws` (botocore's session, the aws cli's rules).
* Retries: awscrt's and botocore's own are off; the idempotent control-plane calls are retried by
  :attr:`S3Store.retry`, the run's :class:`~s3pump.retry.RetryPolicy` (see ``use_retry_policy``).
  Until the endpoint has answered once, a refusal or silence ends the run after two attempts.

The calls are grouped by what they do, as bases of :class:`S3Store`: ``s3_crt.py`` (the awscrt client and one
request of either plane), ``s3_failures.py`` (a failed request as the store's error, one line),
``s3_reads.py`` (HeadObject, ListBuckets, a one-level listing, a streamed GetObject), ``s3_multipart.py``
(multipart uploads and server-side copies), ``s3_buckets.py`` (bucket calls and versions); this module holds the
store itself: its set-up, the data plane, the listing, GetObject and DeleteObjects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

from awscrt import s3

from ..awsconfig import resolve_aws
from ..config import TransferConfig
from ..errors import classify_store_error
from ..retry import RetryPolicy
from .base import DoneCallback, ObjectAttributes, ObjectInfo
from .body import StreamBody
from .paging import PageGuard
from .s3_buckets import S3Buckets
from .s3_crt import CRT_ALGORITHMS, CrtRequest, CrtRequests, endpoint_of
from .s3_failures import boto_error
from .s3_multipart import S3Multipart
from .s3_reads import S3Reads

__all__ = ["S3Store"]


class S3Store(S3Multipart, S3Buckets, S3Reads, CrtRequests):
    """Store over S3: awscrt for the data plane and most control-plane calls, botocore for the rarer ones.
    The calls are in its bases (see the module docstring): :class:`~s3pump.store.s3_multipart.S3Multipart`,
    :class:`~s3pump.store.s3_buckets.S3Buckets`, :class:`~s3pump.store.s3_reads.S3Reads` and
    :class:`~s3pump.store.s3_crt.CrtRequests`.

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
        self._endpoint = endpoint_of(self.settings)
        self._answered = threading.Event()  # set once the endpoint answered any request
        self._silent_failures = 0  # requests that got no answer at all before the endpoint ever answered
        self._checksum_name = None if config.checksum_algorithm == "none" else config.checksum_algorithm
        self._checksum_config = (
            s3.S3ChecksumConfig(
                # as a header, not an aws-chunked trailer: the server then verifies a plain body (W1 on
                # SeaweedFS: ~8 % faster, the same as sending no checksum at all)
                algorithm=CRT_ALGORITHMS[config.checksum_algorithm], location=s3.S3ChecksumLocation.HEADER
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

    # ------------------------------------------------------------------ data plane
    def put_file(
        self, bucket: str, key: str, path: str, size_bytes: int, attrs: ObjectAttributes,
        on_done: DoneCallback,
    ) -> CrtRequest:
        return self._start(
            bucket=bucket, key=key, method_path=self._endpoint.path_for(bucket, key), size=size_bytes,
            attrs=attrs, on_done=on_done, kind=s3.S3RequestType.PUT_OBJECT, operation=None,
            send_filepath=path,
        )

    def put_bytes(
        self, bucket: str, key: str, body: bytes | memoryview | StreamBody, attrs: ObjectAttributes,
        on_done: DoneCallback,
    ) -> CrtRequest:
        return self._start(
            bucket=bucket, key=key, method_path=self._endpoint.path_for(bucket, key), size=len(body),
            attrs=attrs, on_done=on_done, kind=s3.S3RequestType.PUT_OBJECT, operation=None, body=body,
        )

    def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, body: bytes | memoryview | StreamBody,
        on_done: DoneCallback,
    ) -> CrtRequest:
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
        """One botocore call; its failure as the store's error (:func:`~s3pump.store.s3_failures.boto_error`)."""
        import botocore.exceptions

        try:
            result = fn(**kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            if isinstance(e, botocore.exceptions.ClientError):
                self._answered.set()
            raise boto_error(e, what, self.settings) from None
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

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            if self._boto_obj is not None:
                self._boto_obj.close()
            del self._crt
