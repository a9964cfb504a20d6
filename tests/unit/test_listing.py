"""Issue 12, item 14: a ListObjectsV2 answer reads the same in any XML namespace (or none), and a body
that is not a ListBucketResult is an error, never an empty listing. Issue 15: the fast reader reads
every page it takes as ElementTree does."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s3pump.errors import FatalStoreError
from s3pump.store import listing
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


# ---------------------------------------------------------------------- the fast reader (issue 15)
# A no-op sync reads every object of the prefix from these pages; the regular-expression reader
# must read every page it takes exactly as ElementTree does, and leave the others to it.




_XML_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff",
                           min_codepoint=0x20) | st.sampled_from("\t\n&<>\"'%+")
_EXTRAS = ("<StorageClass>STANDARD</StorageClass>", "<Owner><ID>abc</ID><DisplayName>o</DisplayName></Owner>",
           "<ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm>")


def _escape(text: str, style: int) -> str:
    """Text as a server may escape it: named entities, character references, or both."""
    text = escape(text, {'"': "&quot;", "'": "&apos;"} if style == 1 else {})
    if style == 2:
        text = text.replace("&amp;", "&#38;").replace("&lt;", "&#x3C;")
    return text


@st.composite
def _pages(draw: st.DrawFn) -> bytes:
    order = draw(st.permutations(["Key", "ETag", "Size", "LastModified", *draw(st.sets(st.sampled_from(_EXTRAS)))]))
    sep = draw(st.sampled_from(["", "\n  "]))
    style = draw(st.integers(0, 2))
    contents = []
    for _ in range(draw(st.integers(0, 6))):
        key = draw(st.text(_XML_CHARS, min_size=1, max_size=12))
        when = draw(st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1), timezones=st.just(UTC)))
        fields = {
            "Key": f"<Key>{_escape(key, style)}</Key>",
            "ETag": "<ETag>{q}{e}{q}</ETag>".format(
                q=draw(st.sampled_from(['"', "&quot;", "&#34;", ""])),
                e=draw(st.from_regex(r"[0-9a-f]{32}(-[0-9]{1,3})?", fullmatch=True))),
            "Size": f"<Size>{draw(st.integers(0, 5 * 2**40))}</Size>",
            "LastModified": f"<LastModified>{when.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z</LastModified>",
        }
        out_of_step = draw(st.integers(0, 19)) == 0  # now and then, an object unlike the others
        this_order = draw(st.permutations(order)) if out_of_step else order
        dropped = draw(st.sampled_from(["ETag", "Size", "LastModified", "Key"])) if out_of_step else None
        contents.append("<Contents>" + sep.join(fields.get(f, f) for f in this_order if f != dropped) + "</Contents>")
    ns = draw(st.sampled_from(list(NAMESPACES.values())[:3]))
    top = (f"<Name>b</Name><Prefix>p/</Prefix><EncodingType>{draw(st.sampled_from(['url', 'URL', '']))}</EncodingType>"
           f"<IsTruncated>{draw(st.sampled_from(['true', 'false']))}</IsTruncated>"
           f"<NextContinuationToken>{_escape(draw(st.text(_XML_CHARS, max_size=8)), style)}</NextContinuationToken>")
    decl = draw(st.sampled_from(['<?xml version="1.0" encoding="UTF-8"?>\n', "", '<?xml version="1.0"?>']))
    return f"{decl}<ListBucketResult{ns}>{sep}{top}{sep}{sep.join(contents)}{sep}</ListBucketResult>".encode()


@settings(max_examples=int(os.environ.get("S3PUMP_LISTING_EXAMPLES", "300")), deadline=None)
@given(_pages())
def test_the_fast_reader_reads_every_page_it_takes_as_elementtree_does(raw: bytes) -> None:
    fast = listing._parse_plain(raw)
    if fast is not None:
        assert fast == listing._parse_tree(raw, "s3://b/p/")
    assert parse_list_page(raw) == listing._parse_tree(raw, "s3://b/p/")


_SEAWEEDFS = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
              b"<Name>b</Name><Prefix>p/</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"
              + b"".join(b"<Contents><Key>p/f%d+x%%2B.bin</Key><ETag>&#34;662443479b4b57679bd9dfe18c50c0e3&#34;</ETag>"
                         b"<Size>%d</Size><StorageClass>STANDARD</StorageClass>"
                         b"<LastModified>2026-11-30T19:44:54Z</LastModified></Contents>" % (i, i) for i in range(3))
              + b"<EncodingType>url</EncodingType></ListBucketResult>")
_AWS = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Name>b</Name><Prefix>p/</Prefix><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
        b"<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        + b"".join(b"<Contents><Key>p/f%d</Key><LastModified>2024-05-01T10:00:0%d.000Z</LastModified>"
                   b"<ETag>&quot;e%d-3&quot;</ETag><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm><Size>%d</Size>"
                   b"<StorageClass>STANDARD</StorageClass></Contents>" % (i, i, i, i) for i in range(2))
        + b"</ListBucketResult>")


@pytest.mark.parametrize("raw", [_SEAWEEDFS, _AWS], ids=["seaweedfs", "aws"])
def test_the_fast_reader_takes_the_pages_servers_send(raw: bytes) -> None:
    fast = listing._parse_plain(raw)
    assert fast is not None and fast == listing._parse_tree(raw, "s3://b/p/")
    assert [o.key for o in fast[0]][:2] == (["p/f0 x+.bin", "p/f1 x+.bin"] if raw is _SEAWEEDFS else ["p/f0", "p/f1"])
    assert fast[0][1].etag in ("662443479b4b57679bd9dfe18c50c0e3", "e1-3")


@pytest.mark.parametrize("raw", [
    _SEAWEEDFS.replace(b"<Size>1</Size>", b""),  # a field missing from one object
    _SEAWEEDFS.replace(b"<Key>p/f1", b"<Key><!-- c -->p/f1"),  # a comment
    _SEAWEEDFS.replace(b"<Key>p/f2", b'<Key xml:space="preserve">p/f2'),  # an attribute
    _SEAWEEDFS.replace(b"<Key>p/f2+x%2B.bin</Key>", b"<Key><![CDATA[p/f2]]></Key>"),  # CDATA
    _AWS.replace(b"p/f1</Key>", b"p/&amp;f1</Key>"),  # an entity in a key
    _AWS.replace(b"\n", b"\r\n"),
], ids=["missing-field", "comment", "attribute", "cdata", "entity", "crlf"])
def test_a_page_the_fast_reader_does_not_know_is_read_by_elementtree(raw: bytes) -> None:
    assert listing._parse_plain(raw) is None
    assert parse_list_page(raw) == listing._parse_tree(raw, "s3://b/p/")


def test_head_answer_headers_read_as_botocore_reads_them() -> None:
    """Issue 26: HeadObject over awscrt (sync's compare by recorded mtime) reads its headers as botocore does."""
    info = listing.object_info_from_head("k", [
        ("Content-Length", "10"), ("Etag", '"0123456789abcdef0123456789abcdef-2"'),
        ("Last-Modified", "Mon, 07 Dec 2026 09:29:20 GMT"), ("X-Amz-Meta-Mtime", "1600000000.000000001"),
        ("x-amz-meta-MD5", "ab"), ("x-amz-server-side-encryption", "AES256"), ("x-amz-checksum-crc32c", "AAAA"),
        ("x-amz-checksum-type", "FULL_OBJECT")])
    assert (info.size_bytes, info.etag, info.last_modified) == (10, "0123456789abcdef0123456789abcdef-2", 1796635760.0)
    assert info.metadata == {"mtime": "1600000000.000000001", "md5": "ab"} and info.sse == "AES256"
    assert info.checksums == {"CRC32C": "AAAA"}
    with pytest.raises(FatalStoreError):
        listing.object_info_from_head("k", [("Content-Length", "1")])
