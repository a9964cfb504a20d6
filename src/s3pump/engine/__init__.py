"""The one transfer engine every job uses: bounded concurrency, retries, multipart, cancellation."""

from .multipart import FilePartSource, PartSource, multipart_etag, part_size_for
from .scheduler import Engine, UploadItem

__all__ = ["Engine", "FilePartSource", "PartSource", "UploadItem", "multipart_etag", "part_size_for"]
