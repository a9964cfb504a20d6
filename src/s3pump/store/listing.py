"""ListObjectsV2 answers, parsed fast (S3 API reference, ListObjectsV2).

botocore's parser costs about 60 µs of CPU per listed object (XML to dicts, a datetime per
LastModified); a no-op sync of 100,000 files would spend most of its time there. The C
ElementTree parser takes a few µs per object. Keys are requested URL-encoded
(``encoding-type=url``) and decoded here as botocore does (``unquote_plus``), so any key
survives the XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import unquote_plus

from ..errors import FatalStoreError
from .base import ObjectInfo

__all__ = ["parse_list_page"]

#: The root element of a ListObjectsV2 answer (its local name; any namespace, or none).
_ROOT = "ListBucketResult"


def parse_list_page(raw: bytes, *, what: str = "ListObjectsV2") -> tuple[list[ObjectInfo], bool, str | None]:
    """One ListObjectsV2 page: (objects, is truncated, next continuation token).

    The tags are read in whatever XML namespace the root element uses, or none: AWS answers in
    ``http://s3.amazonaws.com/doc/2006-03-01/``, s3rver in ``http://doc.s3.amazonaws.com/2006-03-01``
    and other servers in none, and a namespace we do not know must not read as an empty listing
    (a sync would then upload everything again and ``--delete`` delete nothing).

    Raises:
        FatalStoreError: the body is not XML, or its root is not ``ListBucketResult``; ``what``
            (e.g. ``s3://bucket/prefix``) names the listing in the one-line message.
    """
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        raise FatalStoreError(f"{what}: the listing is not XML ({e}); is the endpoint an S3 server?") from None
    ns, _, local = root.tag.rpartition("}")
    if local != _ROOT:
        raise FatalStoreError(f"{what}: the listing's root element is <{local}>, not <{_ROOT}>; "
                              "is the endpoint an S3 server?")
    ns = f"{ns}}}" if ns else ""
    url_encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
    times: dict[str, float] = {}
    objects = []
    for c in root.iter(f"{ns}Contents"):
        key = c.findtext(f"{ns}Key") or ""
        if url_encoded and ("%" in key or "+" in key):  # nothing to decode in most keys
            key = unquote_plus(key)
        stamp = c.findtext(f"{ns}LastModified") or ""
        ts = times.get(stamp)
        if ts is None:
            ts = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0
            times[stamp] = ts
        objects.append(ObjectInfo(key, int(c.findtext(f"{ns}Size") or 0),
                                  (c.findtext(f"{ns}ETag") or "").strip('"'), ts))
    truncated = (root.findtext(f"{ns}IsTruncated") or "").strip().lower() == "true"
    return objects, truncated, root.findtext(f"{ns}NextContinuationToken")
