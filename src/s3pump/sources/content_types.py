"""An object's Content-Type from its name, as ``aws s3 cp`` guesses it (``mimetypes``), with a compressed file's
type for its compression."""

from __future__ import annotations

import dataclasses
import mimetypes
from collections.abc import Callable

from ..store.base import ObjectAttributes

__all__ = ["attrs_by_content_type", "content_type_for"]


#: the type of a file whose name says it is compressed (``x.tar.gz``: its bytes are gzip, not tar;
#: ``mimetypes`` gives the inner type and the compression as an "encoding")
_COMPRESSED_TYPES = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz",
                     "compress": "application/x-compress", "br": "application/x-brotli"}


def content_type_for(name: str) -> str:
    """The Content-Type of an object named ``name``: by its extension (``mimetypes``), the
    compression's type for a compressed file (``x.tar.gz``: ``application/gzip``), else
    ``application/octet-stream``."""
    ctype, encoding = mimetypes.guess_type(name, strict=False)
    if encoding:
        return _COMPRESSED_TYPES.get(encoding, "application/octet-stream")
    return ctype or "application/octet-stream"


def attrs_by_content_type(base: ObjectAttributes) -> Callable[[str], ObjectAttributes]:
    """``attrs_for(name)``: ``base`` with Content-Type guessed from the name (cached per type),
    unless ``base`` already fixes one."""
    if base.content_type:
        return lambda _name: base
    cache: dict[str | None, ObjectAttributes] = {}

    def attrs_for(name: str) -> ObjectAttributes:
        ctype = content_type_for(name)
        attrs = cache.get(ctype)
        if attrs is None:
            attrs = dataclasses.replace(base, content_type=ctype)
            cache[ctype] = attrs
        return attrs

    return attrs_for
