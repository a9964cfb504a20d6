"""pyiceberg's ``PyArrowFileIO`` with the run's CA bundle (``tls_ca_file_path``) and single PUTs for small
files (``allow_delayed_open``), which pyiceberg's own properties cannot set; named by ``py-io-impl`` in
``export/iceberg_table.py``'s properties.

Its requests go to the run's endpoint only (``s3.endpoint``), with the region given (never resolved
by a request to AWS: ``s3.region`` is always set), signed with the run's credentials.
"""

from __future__ import annotations

from typing import Any

from pyiceberg.io.pyarrow import PyArrowFileIO

__all__ = ["EndpointFileIO"]


class EndpointFileIO(PyArrowFileIO):
    """``PyArrowFileIO`` whose S3 client checks https certificates against ``s3pump.ca-bundle``, and sends a
    file smaller than a part as one PutObject (``allow_delayed_open``: the multipart upload is created only
    when a first part fills; else each file took CreateMultipartUpload, UploadPart and Complete)."""

    def _initialize_s3_fs(self, netloc: str | None) -> Any:
        fs = super()._initialize_s3_fs(netloc)
        extra: dict[str, Any] = {"allow_delayed_open": True}
        bundle = self.properties.get("s3pump.ca-bundle")
        if bundle:
            extra["tls_ca_file_path"] = bundle
        # the same client, rebuilt with these options (S3FileSystem's options, as pickling reads them back)
        rebuild, (kwargs,) = fs.__reduce__()
        return rebuild({**kwargs, **extra})
