"""ListObjectsV2 answers, parsed fast (S3 API reference, ListObjectsV2).

botocore's parser costs about 60 µs of CPU per listed object (XML to dicts, a datetime per
LastModified); a no-op sync of 100,000 files would spend most of its time there. Building an
ElementTree and reading it costs about 17 µs per object. The answers S3 servers send are plain
XML (no DTD, no CDATA, no attributes but the root's namespace), so a page that is exactly that is
read by one regular expression over its bytes, about 1.5 µs per object; any other page (a
prefixed namespace, attributes, comments, CDATA, another encoding, a tag the fast reader did not
account for) is read by ElementTree, and the two readers agree on every page the fast one takes
(tests/unit/test_listing.py compares them on generated pages). Keys are requested URL-encoded
(``encoding-type=url``) and decoded here as botocore does (``unquote_plus``), so any key survives
the XML.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from urllib.parse import unquote_plus

from ..errors import FatalStoreError
from .base import ObjectInfo

__all__ = ["object_info_from_head", "parse_common_prefixes", "parse_list_page"]

#: The root element of a ListObjectsV2 answer (its local name; any namespace, or none).
_ROOT = "ListBucketResult"

Page = tuple[list[ObjectInfo], bool, str | None]


def parse_list_page(raw: bytes, *, what: str = "ListObjectsV2") -> Page:
    """One ListObjectsV2 page: (objects, is truncated, next continuation token).

    The tags are read in whatever XML namespace the root element uses, or none: AWS answers in
    ``http://s3.amazonaws.com/doc/2006-03-01/``, s3rver in ``http://doc.s3.amazonaws.com/2006-03-01``
    and other servers in none, and a namespace we do not know must not read as an empty listing
    (a sync would then upload everything again and ``--delete`` delete nothing).

    Raises:
        FatalStoreError: the body is not XML, or its root is not ``ListBucketResult``; ``what``
            (e.g. ``s3://bucket/prefix``) names the listing in the one-line message.
    """
    page = _parse_plain(raw)
    return page if page is not None else _parse_tree(raw, what)


# ---------------------------------------------------------------------- the fast reader
#: The XML declaration (UTF-8 or none declared) and the root start tag, with at most a default namespace.
_PLAIN_START = re.compile(
    rb'\s*(?:<\?xml\s+version="1\.[01]"(?:\s+encoding="[Uu][Tt][Ff]-?8")?(?:\s+standalone="(?:yes|no)")?\s*\?>\s*)?'
    rb'<ListBucketResult(?:\s+xmlns="[^"<>&]*")?\s*>')
#: What the fast reader does not read as ElementTree would: a comment, CDATA or declaration (``<!``),
#: a carriage return (XML reads CR LF as LF), a namespace prefix on an object's tags.
_NOT_PLAIN = (b"<!", b"\r", b":Contents", b":Key")
#: The fields read from each ``Contents``, in the order the first one holds them.
_FIELDS = (b"Key", b"ETag", b"Size", b"LastModified")
_TOP = {name: re.compile(rb"<%s>([^<]*)</%s>" % (name, name))
        for name in (b"IsTruncated", b"NextContinuationToken", b"EncodingType")}
_ENTITY = re.compile(r"&(?:(amp|lt|gt|quot|apos);|#([0-9]+);|#x([0-9a-fA-F]+);)?")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


#: A field's text: no markup, no entity (an ETag's quotes, as ``"``, ``&#34;`` or ``&quot;``, aside).
_VALUE = {b"Key": rb"<Key>([^<&]*)</Key>", b"Size": rb"<Size>([^<&]*)</Size>",
          b"LastModified": rb"<LastModified>([^<&]*)</LastModified>",
          b"ETag": rb'<ETag>(?:"|&#34;|&quot;)?([^<&"]*)(?:"|&#34;|&quot;)?</ETag>'}


@functools.cache
def _contents_pattern(order: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """One ``Contents`` with these fields in this order, each plain text (no markup, no entity)."""
    return re.compile(rb"<Contents>%s.*?</Contents>" % b"".join(rb".*?" + _VALUE[name] for name in order), re.S)


def _parse_plain(raw: bytes) -> Page | None:
    """The page read by regular expressions, or None where ElementTree must read it.

    Every server sends each object's fields in one order (AWS: Key, LastModified, ETag, ..., Size;
    SeaweedFS: Key, ETag, Size, ..., LastModified), taken from the first ``Contents``. One match per
    ``Contents`` is then the proof that each object was read within its own element: a match that
    ran on into the next one (a field missing, in another order, with attributes, or text with an
    entity in it) leaves fewer matches than objects, and ElementTree reads the page.
    """
    start = _PLAIN_START.match(raw)
    if start is None or not raw.rstrip().endswith(b"</ListBucketResult>") or any(s in raw for s in _NOT_PLAIN):
        return None
    objects: list[ObjectInfo] = []
    try:
        top = {name: _text(m.group(1)) if (m := rx.search(raw)) else None for name, rx in _TOP.items()}
        first = raw.find(b"<Contents>")
        if first >= 0:
            block = raw[first:raw.find(b"</Contents>", first)]
            order = tuple(name for _, name in sorted((block.find(b"<%s>" % name), name) for name in _FIELDS
                                                      if b"<%s>" % name in block))
            if len(order) != len(_FIELDS):  # ElementTree reads what is missing as empty
                return None
            matches = _contents_pattern(order).findall(raw, first)
            if len(matches) != raw.count(b"<Contents>"):
                return None
            at = {name: i for i, name in enumerate(order)}
            k, e, s, t = (at[name] for name in _FIELDS)
            url_encoded = (top[b"EncodingType"] or "").lower() == "url"
            times: dict[bytes, float] = {}
            for row in matches:
                key = row[k].decode()
                if url_encoded and ("%" in key or "+" in key):  # nothing to decode in most keys
                    key = unquote_plus(key)
                stamp = row[t]
                ts = times.get(stamp)
                if ts is None:
                    ts = times[stamp] = _timestamp(stamp.decode())
                objects.append(ObjectInfo(key, int(row[s] or 0), row[e].decode(), ts))
    except (ValueError, UnicodeDecodeError):  # ElementTree reads it, or names the fault
        return None
    truncated = (top[b"IsTruncated"] or "").strip().lower() == "true"
    return objects, truncated, top[b"NextContinuationToken"]


def _text(value: bytes) -> str:
    """An element's text: UTF-8 with XML's five named entities and character references decoded.

    Raises:
        ValueError: an ``&`` that starts none of those (not XML: ElementTree names the fault).
    """
    return _ENTITY.sub(_entity, value.decode()) if b"&" in value else value.decode()


def _entity(m: re.Match[str]) -> str:
    named, dec, hexa = m.groups()
    if named:
        return _NAMED[named]
    if dec or hexa:
        return chr(int(dec) if dec else int(hexa, 16))
    raise ValueError("an & that starts no entity")


# ---------------------------------------------------------------------- ElementTree
def _parse_tree(raw: bytes, what: str) -> Page:
    import xml.etree.ElementTree as ET  # only for the pages the fast reader leaves to it

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
            ts = _timestamp(stamp)
            times[stamp] = ts
        objects.append(ObjectInfo(key, int(c.findtext(f"{ns}Size") or 0),
                                  (c.findtext(f"{ns}ETag") or "").strip('"'), ts))
    truncated = (root.findtext(f"{ns}IsTruncated") or "").strip().lower() == "true"
    return objects, truncated, root.findtext(f"{ns}NextContinuationToken")


def parse_common_prefixes(raw: bytes) -> list[str]:
    """The ``CommonPrefixes`` of a ListObjectsV2 page asked with a delimiter, URL-decoded when the
    page says ``EncodingType`` url (as botocore decodes them). Call it on a page
    :func:`parse_list_page` read (it checked the page is a listing); a page without any is not parsed
    again. Few pages of a one-level listing hold many prefixes, so ElementTree reads them."""
    if b"CommonPrefixes" not in raw:
        return []
    import xml.etree.ElementTree as ET

    root = ET.fromstring(raw)
    ns, _, _ = root.tag.rpartition("}")
    ns = f"{ns}}}" if ns else ""
    url_encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
    out = []
    for common in root.iter(f"{ns}CommonPrefixes"):
        prefix = common.findtext(f"{ns}Prefix") or ""
        out.append(unquote_plus(prefix) if url_encoded and ("%" in prefix or "+" in prefix) else prefix)
    return out


def _timestamp(stamp: str) -> float:
    """LastModified (ISO 8601, ``Z`` or an offset) as epoch seconds; 0.0 when absent."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


def object_info_from_head(key: str, headers: list[tuple[str, str]]) -> ObjectInfo:
    """What a HeadObject answer's headers say of ``key`` (S3 API reference, HeadObject), as botocore
    reads them: ``x-amz-meta-*`` as metadata (names in lower case), ``x-amz-checksum-*`` by algorithm
    (``CRC32C``, ...), ``x-amz-checksum-type`` and ``x-amz-mp-parts-count``. Sync asks one HeadObject
    per object of the same size (their recorded mtime), sent by awscrt: about a quarter of botocore's
    time and a fifth of its CPU each.

    Raises:
        FatalStoreError: the answer lacks Content-Length, ETag or a readable Last-Modified.
    """
    from email.utils import parsedate_to_datetime

    size = etag = modified = sse = checksum_type = parts = None
    metadata: dict[str, str] = {}
    checksums: dict[str, str] = {}
    for name, value in headers:
        low = name.lower()
        if low.startswith("x-amz-meta-"):
            metadata[low[11:]] = value
        elif low == "content-length":
            size = value
        elif low == "etag":
            etag = value.strip('"')
        elif low == "last-modified":
            modified = value
        elif low == "x-amz-server-side-encryption":
            sse = value
        elif low == "x-amz-checksum-type":
            checksum_type = value
        elif low.startswith("x-amz-checksum-") and low != "x-amz-checksum-mode":
            checksums[low[15:].upper()] = value
        elif low == "x-amz-mp-parts-count":
            parts = value
    try:
        if size is not None and etag is not None and modified is not None:
            return ObjectInfo(key, int(size), etag, parsedate_to_datetime(modified).timestamp(), metadata, sse,
                              checksums, checksum_type, int(parts) if parts is not None else None)
    except (ValueError, TypeError):
        pass
    raise FatalStoreError(f"{key}: HeadObject answered without Content-Length, ETag or Last-Modified")
