"""Issue 12, item 14: a ListObjectsV2 answer reads the same in any XML namespace (or none), and a body
that is not a ListBucketResult is an error, never an empty listing."""

from __future__ import annotations

import pytest

from s3pump.errors import FatalStoreError
from s3pump.store.listing import parse_list_page

_BODY = (
    "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
    "<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
    "<NextContinuationToken>tok-2</NextContinuationToken>"
    "<Contents><Key>p/a+b%2Bc.txt</Key><LastModified>2024-05-01T10:00:00.000Z</LastModified>"
    "<ETag>&quot;e1&quot;</ETag><Size>11</Size><StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>p/x.bin</Key><LastModified>2024-05-01T10:00:01.000Z</LastModified>"
    "<ETag>\"e2-3\"</ETag><Size>22</Size></Contents>"
)

NAMESPACES = {
    "aws": ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"',
    "s3rver": ' xmlns="http://doc.s3.amazonaws.com/2006-03-01"',  # s3rver's (no trailing slash)
    "none": "",
    "prefixed": ' xmlns:s3="urn:example:other"',  # a prefixed namespace: the tags carry it
}


def _doc(ns_attr: str, prefixed: bool = False) -> bytes:
    body = _BODY
    root = "ListBucketResult"
    if prefixed:
        import re
        body = re.sub(r"<(/?)(\w+)>", r"<\1s3:\2>", body)
        root = "s3:ListBucketResult"
    return f'<?xml version="1.0" encoding="UTF-8"?><{root}{ns_attr}>{body}</{root}>'.encode()


@pytest.mark.parametrize("name", sorted(NAMESPACES))
def test_listing_reads_the_same_in_any_namespace(name: str) -> None:
    objects, truncated, token = parse_list_page(_doc(NAMESPACES[name], prefixed=name == "prefixed"))
    assert [(o.key, o.size_bytes, o.etag) for o in objects] == [("p/a b+c.txt", 11, "e1"), ("p/x.bin", 22, "e2-3")]
    assert objects[0].last_modified == 1714557600.0
    assert truncated is True and token == "tok-2"


@pytest.mark.parametrize("raw", [
    b'<?xml version="1.0"?><ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<Buckets/></ListAllMyBucketsResult>",
    b"<Error><Code>NoSuchKey</Code></Error>",
    b"<html><body>login</body></html>",
])
def test_a_body_that_is_not_a_listing_is_an_error(raw: bytes) -> None:
    with pytest.raises(FatalStoreError, match=r"s3://b/p/: the listing's root element is <\w+>, not "
                                              r"<ListBucketResult>"):
        parse_list_page(raw, what="s3://b/p/")


def test_a_body_that_is_not_xml_is_an_error() -> None:
    with pytest.raises(FatalStoreError, match="s3://b/: the listing is not XML"):
        parse_list_page(b"503 Service Unavailable", what="s3://b/")
