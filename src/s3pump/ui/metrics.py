"""Prometheus metrics of a run, as an event subscriber (``--metrics-port``, ``--metrics-file``).

Exported (all prefixed ``s3pump_``):

* ``requests_total{operation, status}``: PutObject, UploadPart, CreateMultipartUpload,
  CompleteMultipartUpload by HTTP status (or the transport error's name);
* ``uploaded_bytes_total``; ``retries_total{reason}``; ``objects_total{result}`` (done/failed/skipped);
* ``requests_in_flight`` and ``concurrency_limit`` (gauges, from the engine's Tick events);
* ``request_duration_seconds`` (histogram of PutObject and UploadPart latency).

The server binds 127.0.0.1 unless told otherwise; it uses its own registry, so two runs in one
process never mix their numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ..errors import S3PumpError
from ..events import (
    ConcurrencyChanged,
    Event,
    FileDone,
    FileFailed,
    FileSkipped,
    FilesUnchanged,
    MultipartCreated,
    PartDone,
    RetryScheduled,
    Tick,
)

__all__ = ["RunMetrics"]

_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _status(error: S3PumpError) -> str:
    status = getattr(error, "status", None)
    if status:
        return str(status)
    return getattr(error, "code", None) or type(error).__name__


class RunMetrics:
    """Counts events into Prometheus metrics; optionally serves them over HTTP."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("s3pump_requests", "S3 requests by operation and HTTP status",
                                ["operation", "status"], registry=r)
        self.bytes = Counter("s3pump_uploaded_bytes", "Bytes uploaded (acknowledged by the store)", registry=r)
        self.retries = Counter("s3pump_retries", "Requests retried, by error", ["reason"], registry=r)
        self.objects = Counter("s3pump_objects", "Objects by result", ["result"], registry=r)
        self.in_flight = Gauge("s3pump_requests_in_flight", "Data-plane requests in flight", registry=r)
        self.limit = Gauge("s3pump_concurrency_limit", "Current concurrency limit", registry=r)
        self.latency = Histogram("s3pump_request_duration_seconds", "PutObject/UploadPart latency",
                                 buckets=_BUCKETS_S, registry=r)
        self._server: Any = None

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """Serve ``/metrics`` on ``addr:port`` in a daemon thread until :meth:`close`."""
        self._server = start_http_server(port, addr=addr, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            server = self._server[0] if isinstance(self._server, tuple) else self._server
            server.shutdown()
            server.server_close()
            self._server = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, FileDone):
            self.objects.labels("done").inc()
            if event.parts:
                self.requests.labels("CompleteMultipartUpload", "200").inc()
            else:
                self.requests.labels("PutObject", "200").inc()
                self.bytes.inc(event.size_bytes)
                self.latency.observe(event.latency_s)
        elif isinstance(event, PartDone):
            self.requests.labels("UploadPart", "200").inc()
            self.bytes.inc(event.size_bytes)
            self.latency.observe(event.latency_s)
        elif isinstance(event, MultipartCreated):
            self.requests.labels("CreateMultipartUpload", "200").inc()
        elif isinstance(event, RetryScheduled):
            operation = "UploadPart" if event.part_number else "PutObject"
            self.requests.labels(operation, _status(event.error)).inc()
            self.retries.labels(type(event.error).__name__).inc()
        elif isinstance(event, FileFailed):
            self.objects.labels("failed").inc()
        elif isinstance(event, FileSkipped):
            self.objects.labels("skipped").inc()
        elif isinstance(event, FilesUnchanged):
            self.objects.labels("skipped").inc(event.files)
        elif isinstance(event, Tick):
            self.in_flight.set(event.requests_in_flight)
            self.limit.set(event.concurrency_limit)
        elif isinstance(event, ConcurrencyChanged):
            self.limit.set(event.new)

    def snapshot(self) -> dict[str, Any]:
        """Every sample as ``{"name{labels}": value}`` (for --metrics-file and tests)."""
        out: dict[str, Any] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):  # creation timestamps, not measurements
                    continue
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def write(self, path: str | Path, summary: dict[str, Any]) -> None:
        """``--metrics-file``: the run's summary and the final metric values, as JSON."""
        Path(path).write_text(json.dumps({"summary": summary, "metrics": self.snapshot()}, indent=2,
                                         default=str) + "\n")
