"""The remote side of a sync: ListObjectsV2, streamed page by page, parsed fast.

botocore's response parser costs about 60 us of CPU per listed object (XML to dicts,
a datetime per LastModified); a no-op sync of 100,000 files would spend most of its
time there. So for a store that exposes its boto3 client (``S3Store.boto_client``, the
documented escape hatch), each page is still requested and signed by botocore (retries,
credentials, endpoint, errors all unchanged), but a ``before-parse`` hook hands the raw
XML body to this module, which reads it with the C ElementTree parser (a few us per
object), and leaves botocore only a skeleton (IsTruncated, NextContinuationToken) to
parse. The hook acts only on calls made from :func:`list_remote` (a thread-local flag),
so other users of the same client see normal responses.

Keys are requested URL-encoded (``EncodingType=url``, as botocore does by default) and
decoded here like botocore does (``unquote_plus``), so any key survives the XML.
See the S3 API reference, ListObjectsV2.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from ..errors import S3PumpError, classify_store_error
from ..store.base import ObjectInfo, Store

__all__ = ["list_remote"]

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_HOOK_ID = "s3pump-fast-list-objects-v2"
_RAW = "S3PumpRawListBody"
_local = threading.local()
_TRUNCATED_RE = re.compile(rb"<IsTruncated>\s*true\s*</IsTruncated>", re.IGNORECASE)
_TOKEN_RE = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")


def _stash_body(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore ``before-parse.s3.ListObjectsV2`` hook: keep the raw body, leave a skeleton."""
    if not getattr(_local, "active", False) or response_dict.get("status_code") != 200:
        return
    body = response_dict.get("body")
    if not isinstance(body, bytes | bytearray):
        return
    customized_response_dict[_RAW] = bytes(body)
    token = _TOKEN_RE.search(body)
    response_dict["body"] = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        + (b"<IsTruncated>true</IsTruncated>" if _TRUNCATED_RE.search(body) else b"<IsTruncated>false</IsTruncated>")
        + (b"<NextContinuationToken>" + token.group(1) + b"</NextContinuationToken>" if token else b"")
        + b"</ListBucketResult>"
    )


def _parse_page(raw: bytes) -> Iterator[ObjectInfo]:
    root = ET.fromstring(raw)
    url_encoded = (root.findtext(f"{_NS}EncodingType") or "").lower() == "url"
    times: dict[str, float] = {}
    for c in root.iter(f"{_NS}Contents"):
        key = c.findtext(f"{_NS}Key") or ""
        if url_encoded:
            key = unquote_plus(key)
        stamp = c.findtext(f"{_NS}LastModified") or ""
        ts = times.get(stamp)
        if ts is None:
            ts = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0
            times[stamp] = ts
        yield ObjectInfo(key, int(c.findtext(f"{_NS}Size") or 0), (c.findtext(f"{_NS}ETag") or "").strip('"'), ts)


def _store_error(e: Exception, what: str) -> S3PumpError:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return classify_store_error(status, err.get("Code"), err.get("Message", ""), what=what)
    return classify_store_error(None, None, str(e), what=what)


def list_remote(store: Store, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
    """Every object under ``prefix``, page by page (order as the store lists it).

    Raises:
        StoreError: from the tree (NoSuchBucket, credentials, network), as ``Store.list_objects``.
    """
    client = getattr(store, "boto_client", None)
    if client is None or not hasattr(client, "meta"):
        yield from store.list_objects(bucket, prefix)
        return
    client.meta.events.register("before-parse.s3.ListObjectsV2", _stash_body, unique_id=_HOOK_ID)
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "EncodingType": "url", "MaxKeys": 1000}
    what = f"s3://{bucket}/{prefix}"
    while True:
        _local.active = True
        try:
            resp = client.list_objects_v2(**kwargs)
        except Exception as e:
            if type(e).__module__.startswith(("botocore", "boto3")):
                raise _store_error(e, what) from None
            raise
        finally:
            _local.active = False
        raw = resp.get(_RAW)
        if raw is None:  # the hook did not run (another client type): botocore parsed it
            decode = str(resp.get("EncodingType", "")).lower() == "url"
            for o in resp.get("Contents", []):
                key = unquote_plus(o["Key"]) if decode else o["Key"]
                yield ObjectInfo(key, o["Size"], o["ETag"].strip('"'), o["LastModified"].timestamp())
        else:
            yield from _parse_page(raw)
        token = resp.get("NextContinuationToken")
        if not resp.get("IsTruncated") or not token:
            return
        kwargs["ContinuationToken"] = token
