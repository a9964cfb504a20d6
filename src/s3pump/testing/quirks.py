"""Server quirks for the fault proxy: servers that truncate, loop, stall or ignore parameters.

A fault (``FaultPlan.rates``) hits a request at random; a quirk (``FaultPlan.quirks``) is how a
server (or a gateway in front of it) answers *every* request of a kind, as small S3 servers have
been seen to:

==============================  =====================================================================
quirk                           what the client sees
==============================  =====================================================================
``list_truncated_no_token``     every ListObjects(V2) / ListMultipartUploads / ListParts page says
                                ``IsTruncated`` true, with its ``NextContinuationToken`` /
                                ``NextKeyMarker`` / ``NextUploadIdMarker`` / ``NextPartNumberMarker``
                                removed
``list_repeat_token``           every ListObjects(V2) page is truncated with the continuation token
                                ``faultproxy-repeat``; a request with that token is answered (by the
                                proxy) with the same page again: the listing loops for ever
``list_endless``                 every ListObjects(V2) page is truncated with a new token each time
                                (``faultproxy-endless-N``); a request with one is answered (by the
                                proxy) with the same objects: a loop no repeated token gives away
``list_endless_empty``           as ``list_endless``, but every page after the first is empty: a loop
                                neither a token nor a first key gives away
``list_stall_mid_body``         every ListObjects(V2) answer sends its headers and half its body,
                                then nothing for ``stall_s`` seconds, then the connection is reset
``head_ignores_part_number``    HeadObject ``?partNumber=N`` is sent without the parameter (re-signed):
                                the whole object's headers, no ``x-amz-mp-parts-count``
``ignores_prefix``              ListMultipartUploads and ListObjects(V2) are sent without ``prefix``
                                (re-signed): the whole bucket is listed
``list_uploads_not_implemented`` ListMultipartUploads answered ``501 NotImplemented`` (not forwarded)
``wrong_region``                the buckets live in :data:`QUIRK_REGION` (``eu-west-1``): a request signed
                                for another region is answered as AWS answers it, ``400
                                AuthorizationHeaderMalformed`` with ``<Region>eu-west-1</Region>`` (a
                                HEAD: no body, ``x-amz-bucket-region``); one signed for it is forwarded
``permanent_redirect``          as ``wrong_region``, answered ``301 PermanentRedirect`` with the header
                                ``x-amz-bucket-region: eu-west-1`` (a regional endpoint of another region)
==============================  =====================================================================

The quirks that drop a query parameter must re-sign the request (SigV4 signs the query):
``FaultPlan.credentials`` holds the access key and secret the proxy signs with (the test's own).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["ENDLESS_TOKEN", "QUIRKS", "QUIRK_REGION", "REPEAT_TOKEN", "QuirkState"]

QUIRKS = (
    "list_truncated_no_token",
    "list_repeat_token",
    "list_endless",
    "list_endless_empty",
    "list_stall_mid_body",
    "head_ignores_part_number",
    "ignores_prefix",
    "list_uploads_not_implemented",
    "wrong_region",
    "permanent_redirect",
)

#: The region of the buckets behind ``wrong_region`` and ``permanent_redirect``.
QUIRK_REGION = "eu-west-1"
_SIGNED_REGION = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/")

#: The continuation token of ``list_repeat_token``.
REPEAT_TOKEN = "faultproxy-repeat"
#: The start of ``list_endless``'s tokens.
ENDLESS_TOKEN = "faultproxy-endless-"

_LISTINGS = frozenset({"ListObjects", "ListMultipartUploads", "ListParts"})
_NEXT_TAGS = (b"NextContinuationToken", b"NextKeyMarker", b"NextUploadIdMarker", b"NextPartNumberMarker",
              b"NextVersionIdMarker")
_TRUNCATED = re.compile(rb"<IsTruncated>[^<]*</IsTruncated>")
_ROOT_START = re.compile(rb"<(ListBucketResult|ListMultipartUploadsResult|ListPartsResult)(\s[^>]*)?>")


def check(quirks: frozenset[str]) -> None:
    """Raises ValueError for a name that is no quirk."""
    for q in quirks:
        if q not in QUIRKS:
            raise ValueError(f"unknown quirk {q!r}; one of {', '.join(QUIRKS)}")


def _http(status: int, reason: str, body: bytes, extra: str = "", headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"x-amz-request-id: faultproxy{extra}\r\n{headers}\r\n").encode() + body


def _region_answer(quirk: str, method: str, bucket: str, head: bytes) -> bytes | None:
    """AWS's answer to a request signed for a region other than :data:`QUIRK_REGION` (``wrong_region``:
    400 AuthorizationHeaderMalformed; ``permanent_redirect``: 301 PermanentRedirect), or None when it
    is signed for that region (or not signed)."""
    m = _SIGNED_REGION.search(head.decode("latin-1"))
    if m is None or m.group(1) == QUIRK_REGION:
        return None
    where = f"x-amz-bucket-region: {QUIRK_REGION}\r\n"
    if quirk == "wrong_region":
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AuthorizationHeaderMalformed</Code>'
                f"<Message>The authorization header is malformed; the region '{m.group(1)}' is wrong; expecting "
                f"'{QUIRK_REGION}'</Message><Region>{QUIRK_REGION}</Region><RequestId>faultproxy</RequestId>"
                f"</Error>").encode()
        return _http(400, "Bad Request", b"" if method == "HEAD" else body, headers=where if method == "HEAD" else "")
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PermanentRedirect</Code><Message>The bucket you '
            f"are attempting to access must be addressed using the specified endpoint. Please send all future "
            f"requests to this endpoint.</Message><Endpoint>{bucket}.s3.{QUIRK_REGION}.amazonaws.com</Endpoint>"
            f"<Bucket>{bucket}</Bucket><RequestId>faultproxy</RequestId></Error>").encode()
    return _http(301, "Moved Permanently", b"" if method == "HEAD" else body, headers=where)


class QuirkState:
    """What the proxy's quirks remember (the page ``list_repeat_token`` sends again, per bucket)."""

    def __init__(self) -> None:
        self._repeat_pages: dict[str, bytes] = {}
        self._endless = 0

    # ------------------------------------------------------------------ requests
    def on_request(
        self, quirks: frozenset[str], credentials: tuple[str, str] | None, method: str, rtype: str, bucket: str,
        query: Mapping[str, list[str]], head: bytes,
    ) -> tuple[bytes | None, bytes, str | None]:
        """(an answer to send instead of forwarding, or None; the head to forward; the quirk that acted)."""
        for region_quirk in ("wrong_region", "permanent_redirect"):
            if region_quirk in quirks and (answer := _region_answer(region_quirk, method, bucket, head)) is not None:
                return answer, head, region_quirk
        if "list_uploads_not_implemented" in quirks and rtype == "ListMultipartUploads":
            body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code><Message>A header '
                    b"you provided implies functionality that is not implemented</Message>"
                    b"<RequestId>faultproxy</RequestId></Error>")
            return _http(501, "Not Implemented", b"" if method == "HEAD" else body), head, \
                "list_uploads_not_implemented"
        if "list_repeat_token" in quirks and rtype == "ListObjects" \
                and query.get("continuation-token", [""])[0] == REPEAT_TOKEN:
            page = self._repeat_pages.get(bucket)
            if page is not None:
                return _http(200, "OK", page), head, "list_repeat_token"
        endless = "list_endless" if "list_endless" in quirks else \
            "list_endless_empty" if "list_endless_empty" in quirks else None
        if endless and rtype == "ListObjects" \
                and query.get("continuation-token", [""])[0].startswith(ENDLESS_TOKEN):
            page = self._repeat_pages.get(bucket)
            if page is not None:
                if endless == "list_endless_empty":
                    page = re.sub(rb"<Contents>.*?</Contents>", b"", page, flags=re.S)
                return _http(200, "OK", self._endless_page(page)), head, endless
        drop: set[str] = set()
        if "head_ignores_part_number" in quirks and rtype == "HeadObject" and "partNumber" in query:
            drop.add("partNumber")
        if "ignores_prefix" in quirks and rtype in ("ListMultipartUploads", "ListObjects") and "prefix" in query:
            drop.add("prefix")
        if not drop:
            return None, head, None
        if credentials is None:
            raise ValueError("a quirk that drops a query parameter needs FaultPlan.credentials to re-sign")
        return None, _resign(head, drop, credentials), ("ignores_prefix" if "prefix" in drop
                                                        else "head_ignores_part_number")

    # ------------------------------------------------------------------ answers
    def on_answer(self, quirks: frozenset[str], rtype: str, bucket: str, status: int, rhead: bytes,
                  rbody: bytes) -> tuple[bytes, bytes, bool, str | None]:
        """(head, body, stall after half the body, the quirk that acted) of an upstream answer."""
        if status != 200 or rtype not in _LISTINGS:
            return rhead, rbody, False, None
        if "list_stall_mid_body" in quirks and rtype == "ListObjects":
            return rhead, rbody, True, "list_stall_mid_body"
        if "list_truncated_no_token" in quirks:
            rhead, body = _plain(rhead, rbody)
            body = _set_truncated(_drop_next(body))
            return _with_length(rhead, len(body)), body, False, "list_truncated_no_token"
        endless = "list_endless" if "list_endless" in quirks else \
            "list_endless_empty" if "list_endless_empty" in quirks else None
        if endless and rtype == "ListObjects":
            rhead, body = _plain(rhead, rbody)
            self._repeat_pages[bucket] = _drop_next(body)
            body = self._endless_page(self._repeat_pages[bucket])
            return _with_length(rhead, len(body)), body, False, endless
        if "list_repeat_token" in quirks and rtype == "ListObjects":
            rhead, body = _plain(rhead, rbody)
            body = _set_truncated(_drop_next(body), b"<NextContinuationToken>%s</NextContinuationToken>"
                                  % REPEAT_TOKEN.encode())
            self._repeat_pages[bucket] = body
            return _with_length(rhead, len(body)), body, False, "list_repeat_token"
        return rhead, rbody, False, None

    def _endless_page(self, page: bytes) -> bytes:
        self._endless += 1
        token = f"{ENDLESS_TOKEN}{self._endless}".encode()
        return _set_truncated(page, b"<NextContinuationToken>%s</NextContinuationToken>" % token)


def _drop_next(body: bytes) -> bytes:
    for tag in _NEXT_TAGS:
        body = re.sub(rb"<%s>[^<]*</%s>|<%s\s*/>" % (tag, tag, tag), b"", body)
    return body


def _set_truncated(body: bytes, after: bytes = b"") -> bytes:
    truncated = b"<IsTruncated>true</IsTruncated>" + after
    if _TRUNCATED.search(body):
        return _TRUNCATED.sub(lambda _m: truncated, body, count=1)
    m = _ROOT_START.search(body)
    at = m.end() if m else 0
    return body[:at] + truncated + body[at:]


def _plain(rhead: bytes, rbody: bytes) -> tuple[bytes, bytes]:
    """A chunked answer made plain (the head says Content-Length instead)."""
    if b"chunked" not in rhead.lower():
        return rhead, rbody
    out, at = bytearray(), 0
    while True:
        eol = rbody.index(b"\r\n", at)
        size = int(rbody[at:eol].split(b";")[0], 16)
        if size == 0:
            break
        out += rbody[eol + 2:eol + 2 + size]
        at = eol + 2 + size + 2
    lines = [ln for ln in rhead.split(b"\r\n") if not ln.lower().startswith(b"transfer-encoding:")]
    return b"\r\n".join(lines), bytes(out)


def _with_length(rhead: bytes, length: int) -> bytes:
    lines = [ln for ln in rhead.rstrip(b"\r\n").split(b"\r\n") if not ln.lower().startswith(b"content-length:")]
    lines.append(b"Content-Length: %d" % length)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _resign(head: bytes, drop: set[str], credentials: tuple[str, str]) -> bytes:
    """The request head without the query parameters ``drop``, signed again (SigV4, botocore) with
    ``credentials`` for the region and service of its original signature."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    text = head.decode("latin-1")
    request_line, *header_lines = [ln for ln in text.split("\r\n") if ln]
    method, target, version = request_line.split(" ", 2)
    split = urlsplit(target)
    kept = [p for p in split.query.split("&") if p and p.partition("=")[0] not in drop]
    path = split.path + ("?" + "&".join(kept) if kept else "")
    headers: list[tuple[str, str]] = []
    region = "us-east-1"
    for line in header_lines:
        name, _, value = line.partition(":")
        lname, value = name.strip().lower(), value.strip()
        if lname == "authorization":
            m = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", value)
            region = m.group(1) if m else region
            continue
        if lname in ("x-amz-date", "x-amz-content-sha256"):
            continue
        headers.append((name.strip(), value))
    host = next(v for k, v in headers if k.lower() == "host")
    request = AWSRequest(method=method, url=f"http://{host}{path}", headers=dict(headers))
    S3SigV4Auth(Credentials(*credentials), "s3", region).add_auth(request)
    lines = [f"{method} {path} {version}"]
    lines += [f"{k}: {v}" for k, v in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
