"""A fault-injecting HTTP proxy between s3pump and an S3 endpoint (for tests).

The client's endpoint URL points at the proxy; the proxy forwards each request,
byte for byte and with its ``Host`` header unchanged (SigV4 signs the Host the
client used, and the server checks the signature against the Host it receives),
to the upstream endpoint over a connection paired with the client's. At a
configured rate per fault and per request type, it instead:

==========================  =====================================================================
fault                       what the client sees
==========================  =====================================================================
``slowdown``                503 ``SlowDown`` (request not forwarded)
``internal``                500 ``InternalError`` (not forwarded)
``request_timeout``         400 ``RequestTimeout`` (not forwarded; requests with a body only)
``throttle``                429 ``TooManyRequests`` (not forwarded)
``reset_before_headers``    the request IS forwarded and executed, then the client connection is
                            reset (TCP RST) before any response byte: the client cannot tell
                            whether the request took effect
``reset_mid_body``          the client connection is reset after half of the request body was
                            read (PutObject/UploadPart only; nothing forwarded)
``stall``                   nothing is forwarded and nothing answered for ``stall_s`` seconds,
                            then the connection is closed (trips the client's request timeout)
``corrupt_byte``            one byte of the body's *data* is flipped before forwarding (never the
                            aws-chunked framing or trailer), so the server must reject the
                            request through its checksum (PutObject/UploadPart only)
``complete_200_error``      CompleteMultipartUpload answered ``200 OK`` with an ``InternalError``
                            body (not forwarded), as S3 may do (S3 API reference,
                            CompleteMultipartUpload)
``expired_token``           400 ``ExpiredToken`` (not forwarded), as AWS answers a request signed
                            with an expired session token (SeaweedFS has no STS to expire one);
                            not part of ``all``: it is fatal by design
==========================  =====================================================================

Scenarios set by :class:`FaultPlan` fields rather than rates (issue 24; logged with these fault names):

==========================  =====================================================================
``complete_lost``           ``lose_complete_answers=N``: the first N CompleteMultipartUpload requests
                            are forwarded and executed, then the client connection is reset; a
                            later Complete of the same upload is answered ``404 NoSuchUpload``
                            (``no_such_upload``), as AWS answers for an upload already completed
``storm``                   ``slowdown_storm_s=S``: every request is answered 503 SlowDown for S
                            seconds from the first request under the plan
``clock_skew``              ``clock_skew_s=S``: 403 RequestTimeTooSkewed with a ``ServerTime`` and a
                            ``Date`` S seconds off this machine's clock (``clock_skew_types``: the
                            request types it hits, None for all)
==========================  =====================================================================

Every request is logged (:class:`LogEntry`: type, key, part number, upload ID, body
size, fault, upstream status), so tests can count PUTs and parts per key.

Server quirks (listings truncated without a token, looping or stalling; ``prefix`` or ``partNumber``
ignored; 501 on ListMultipartUploads) hit every request of a kind: ``FaultPlan(quirks=...)``, see
:mod:`s3pump.testing.quirks`.

Use it in-process (``FaultProxy(...).start()`` runs it on a background thread; see
the ``faultproxy`` pytest fixture), or standalone::

    python -m s3pump.testing.faultproxy --upstream http://127.0.0.1:8333 --port 9000 \\
        --rate all=0.3 --log requests.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import quirks as _quirks

__all__ = ["FAULTS", "TRANSIENT_FAULTS", "FaultPlan", "FaultProxy", "LogEntry", "main", "request_type"]

#: Every fault the proxy can inject, in the order the dice are checked.
FAULTS = (
    "slowdown",
    "internal",
    "request_timeout",
    "throttle",
    "reset_before_headers",
    "reset_mid_body",
    "stall",
    "corrupt_byte",
    "complete_200_error",
    "expired_token",
)

#: The faults a client is expected to survive (``all`` in the CLI, :meth:`FaultPlan.uniform`).
TRANSIENT_FAULTS = FAULTS[:-1]

_BODY_TYPES = frozenset({"PutObject", "UploadPart"})
#: RequestTimeout means the request body was not read in time, so only requests with a body get it.
_REQUEST_BODY_TYPES = frozenset({"PutObject", "UploadPart", "CompleteMultipartUpload", "DeleteObjects"})
#: The request types each fault applies to (None: every type).
_APPLIES_TO: dict[str, frozenset[str] | None] = {
    "slowdown": None,
    "internal": None,
    "request_timeout": _REQUEST_BODY_TYPES,
    "throttle": None,
    "reset_before_headers": None,
    "reset_mid_body": _BODY_TYPES,
    "stall": None,
    "corrupt_byte": _BODY_TYPES,
    "complete_200_error": frozenset({"CompleteMultipartUpload"}),
    "expired_token": None,
}
#: The faults that cut or flip a request's body: a request without one is left alone.
_BODY_FAULTS = frozenset({"reset_mid_body", "corrupt_byte"})
_STATUS_FAULTS = {
    "slowdown": (503, "Service Unavailable", "SlowDown", "Please reduce your request rate."),
    "internal": (500, "Internal Server Error", "InternalError", "We encountered an internal error."),
    "request_timeout": (400, "Bad Request", "RequestTimeout",
                        "Your socket connection to the server was not read from or written to "
                        "within the timeout period."),
    "throttle": (429, "Too Many Requests", "TooManyRequests", "Please reduce your request rate."),
    "expired_token": (400, "Bad Request", "ExpiredToken", "The provided token has expired."),
}
_MAX_HEAD_BYTES = 64 * 1024


def request_type(method: str, path: str, query: Mapping[str, list[str]]) -> str:
    """The S3 operation of a path-style request (``PutObject``, ``UploadPart``, ...)."""
    has_key = "/" in path.lstrip("/")
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPart"
        return "PutObject" if has_key else "CreateBucket"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "delete" in query:
            return "DeleteObjects"
        return "Post"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return "DeleteObject" if has_key else "DeleteBucket"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if method == "GET":
        if "uploadId" in query:
            return "ListParts"
        if "uploads" in query:
            return "ListMultipartUploads"
        if path in ("", "/"):
            return "ListBuckets"
        return "GetObject" if has_key else "ListObjects"
    return method


@dataclass
class FaultPlan:
    """Which faults to inject, how often, on which request types.

    ``rates`` maps a fault name (see :data:`FAULTS`) to the probability (0..1) that it
    hits a request it applies to; the rates of the faults that apply to one request
    are summed, so they should add up to at most 1. With ``total_rate`` set, the
    values of ``rates`` are ignored and ``total_rate`` of the requests get a fault,
    chosen evenly among the faults named in ``rates`` that apply to the request.
    ``only_types``, if given, restricts every fault to those request types.
    ``stall_s`` is how long a stall lasts; after ``max_faults`` faults, none more.
    ``force_first`` makes the first N requests a fault applies to get it regardless of the
    rate (so a small test run is sure to exercise a fault whose request type is rare).
    ``delay_s`` (request type -> seconds) slows every request of a type down before it is
    forwarded: not a fault, a way to make a run last long enough to be interrupted.
    ``max_in_flight`` models a server of limited capacity: while that many PutObject/UploadPart
    requests are being served, another one is answered 503 SlowDown (logged as fault
    ``capacity``), whatever the rates say. With ``delay_s`` as each request's service time, the
    best a client can do is about ``max_in_flight`` requests in flight (adaptive concurrency tests).
    ``spare_first`` (request type -> N) lets the first N requests of a type through without a fault,
    whatever the rates and ``force_first`` say: e.g. ``{"HeadBucket": 1}`` spares the bucket check a
    run opens with, so a high fault rate cannot end a run before it uploads anything.
    ``doomed`` (object key -> request types) answers every request of those types for that key with
    ``internal`` (500 InternalError, which a client retries), whatever else the plan says: the file
    fails however many attempts the client makes, so a test is sure to see a failure (and, with
    ``{"UploadPart"}``, an upload created, failed and aborted). Doomed requests count as faults.
    ``quirks`` (names in :data:`s3pump.testing.quirks.QUIRKS`) make the server truncate, loop, stall or
    ignore parameters on every request of a kind (logged as the entry's ``fault``); ``credentials``
    (access key, secret) re-sign the requests a quirk strips a parameter from; ``quirk_types``, if
    given, restricts the quirks to those request types (e.g. ``{"PutObject"}``: the bucket check passes).
    """

    rates: dict[str, float] = field(default_factory=dict)
    total_rate: float | None = None
    only_types: frozenset[str] | None = None
    stall_s: float = 30.0
    max_faults: int | None = None
    force_first: int = 0
    delay_s: dict[str, float] = field(default_factory=dict)
    max_in_flight: int | None = None
    spare_first: dict[str, int] = field(default_factory=dict)
    doomed: dict[str, frozenset[str]] = field(default_factory=dict)
    # ---- server quirks (testing/quirks.py): how a server answers every request of a kind
    quirks: frozenset[str] = frozenset()
    credentials: tuple[str, str] | None = None  # (access key, secret): to re-sign a request a quirk changed
    quirk_types: frozenset[str] | None = None  # the request types the quirks act on (None: every type)
    # ---- end of server quirks
    # ---- issue 24 scenarios (see the module docstring): a lost Complete answer, a SlowDown storm, a skewed clock
    lose_complete_answers: int = 0
    slowdown_storm_s: float = 0.0
    clock_skew_s: float | None = None
    clock_skew_types: frozenset[str] | None = None
    _lost_completes: set[str] = field(default_factory=set, repr=False)
    _storm_started: float | None = field(default=None, repr=False)
    # ---- end of issue 24 fields
    _forced: Counter[str] = field(default_factory=Counter, repr=False)
    _spared: Counter[str] = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        for name, rate in self.rates.items():
            if name not in FAULTS:
                raise ValueError(f"unknown fault {name!r}; one of {', '.join(FAULTS)}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate of {name} must be 0..1, got {rate}")
        if self.total_rate is not None and not 0.0 <= self.total_rate <= 1.0:
            raise ValueError(f"total rate must be 0..1, got {self.total_rate}")
        _quirks.check(self.quirks)

    def quirks_on(self, rtype: str) -> bool:
        """Whether the quirks act on a request of type ``rtype`` (:attr:`quirk_types`)."""
        return self.quirk_types is None or rtype in self.quirk_types

    @classmethod
    def single(cls, fault: str, rate: float, **kwargs: Any) -> FaultPlan:
        """``fault`` at ``rate`` of the requests it applies to."""
        return cls({fault: rate}, **kwargs)

    @classmethod
    def uniform(cls, total_rate: float, faults: Iterable[str] = TRANSIENT_FAULTS, **kwargs: Any) -> FaultPlan:
        """All ``faults`` together hit ``total_rate`` of requests, spread evenly."""
        return cls(dict.fromkeys(faults, 0.0), total_rate=total_rate, **kwargs)

    def choose(self, rtype: str, rng: random.Random, key: str = "", body_bytes: int | None = None) -> str | None:
        """The fault to inject into one request of type ``rtype`` for object ``key``, or None.
        ``body_bytes`` 0: the faults that cut or flip the body do not apply (nothing to cut or
        flip), so such a request neither gets one nor uses up a ``force_first``."""
        if rtype in self.doomed.get(key, ()):
            return "internal"
        if self.only_types is not None and rtype not in self.only_types:
            return None
        if self._spared[rtype] < self.spare_first.get(rtype, 0):
            self._spared[rtype] += 1
            return None
        applicable = [f for f in FAULTS if f in self.rates and _applies(f, rtype)
                      and not (body_bytes == 0 and f in _BODY_FAULTS)]
        if not applicable:
            return None
        for f in applicable:
            if self._forced[f] < self.force_first:
                self._forced[f] += 1
                return f
        roll = rng.random()
        if self.total_rate is not None:
            if roll >= self.total_rate:
                return None
            return applicable[min(len(applicable) - 1, int(roll / self.total_rate * len(applicable)))]
        acc = 0.0
        for f in applicable:
            acc += self.rates[f]
            if roll < acc:
                return f
        return None


def _applies(fault: str, rtype: str) -> bool:
    types = _APPLIES_TO[fault]
    return types is None or rtype in types


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One request the proxy saw. ``status`` is what the client got (None: reset or stall)."""

    seq: int
    time_s: float
    method: str
    type: str
    bucket: str
    key: str
    part_number: int | None
    upload_id: str | None
    body_bytes: int
    fault: str | None
    status: int | None


class _Reset(Exception):
    """Abort the client connection with a TCP reset."""


def _parse_head(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    lname = name.lower()
    for k, v in headers:
        if k.lower() == lname:
            return v
    return None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A Transfer-Encoding: chunked body, raw (framing included)."""
    out = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        out += line
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers until an empty line
                t = await reader.readuntil(b"\r\n")
                out += t
                if t == b"\r\n":
                    return bytes(out)
        out += await reader.readexactly(size + 2)


def _corrupt(body: bytes, aws_chunked: bool, rng: random.Random) -> bytes:
    """``body`` with one data byte flipped; for aws-chunked bodies, inside the first data chunk."""
    data = bytearray(body)
    if aws_chunked:
        eol = data.find(b"\r\n")
        size = int(bytes(data[:eol]).split(b";")[0], 16)
        if size == 0:
            return body
        pos = eol + 2 + rng.randrange(size)
    else:
        pos = rng.randrange(len(data))
    data[pos] ^= 0x01
    return bytes(data)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """The proxy. ``start()`` runs it on a daemon thread and returns its port; ``stop()`` ends it.

    ``plan`` may be replaced at any time (``proxy.plan = FaultPlan(...)``); ``log`` is
    the list of :class:`LogEntry` so far (``log_path`` also appends each as a JSON line).
    """

    def __init__(
        self, upstream: str, plan: FaultPlan | None = None, *, host: str = "127.0.0.1", port: int = 0,
        seed: int | None = None, log_path: str | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.plan = plan or FaultPlan()
        self.host = host
        self.port = port
        self.rng = random.Random(seed)
        self.log: list[LogEntry] = []
        self.faults_injected = 0
        self._log_file = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        self._lock = threading.Lock()
        self._seq = 0
        self._t0 = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._serving = 0  # PutObject/UploadPart requests forwarded and not yet answered
        self._quirk_state = _quirks.QuirkState()

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> int:
        """Start on a background thread; return the port it listens on."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._listen())
            except BaseException as e:  # surfaced to start()
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self.port

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._on_client, self.host, self.port, limit=_MAX_HEAD_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        """Run in the current event loop until cancelled (the ``__main__`` mode)."""
        await self._listen()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    # ------------------------------------------------------------------ log helpers
    def entries(self, *, type: str | None = None, key: str | None = None,
                fault: str | bool | None = False) -> list[LogEntry]:
        """Log entries filtered by request type, key and fault (``fault=None``: no fault)."""
        with self._lock:
            out = list(self.log)
        if type is not None:
            out = [e for e in out if e.type == type]
        if key is not None:
            out = [e for e in out if e.key == key]
        if fault is not False:
            out = [e for e in out if e.fault == fault]
        return out

    def fault_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(e.fault for e in self.log if e.fault)

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    @property
    def seq(self) -> int:
        """The sequence number of the latest request to arrive: entries with a higher ``seq``
        arrived after this call (an entry is logged when its request ends, but numbered when it
        arrives, so requests still in flight from an earlier, killed client keep their place)."""
        with self._lock:
            return self._seq

    def _next_seq(self) -> tuple[int, float]:
        with self._lock:
            self._seq += 1
            return self._seq, round(time.monotonic() - self._t0, 6)

    def _record(self, **kw: Any) -> None:
        with self._lock:
            entry = LogEntry(**kw)
            self.log.append(entry)
            if self._log_file is not None:
                self._log_file.write(json.dumps(asdict(entry)) + "\n")
                self._log_file.flush()

    def _choose(self, rtype: str, key: str, body_bytes: int) -> str | None:
        with self._lock:
            plan = self.plan
            if plan.max_faults is not None and self.faults_injected >= plan.max_faults and key not in plan.doomed:
                return None
            fault = plan.choose(rtype, self.rng, key, body_bytes)
            if fault is not None:
                self.faults_injected += 1
            return fault

    # ------------------------------------------------------------------ the proxy
    async def _on_client(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                try:
                    head = await creader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                keep, upstream = await self._one_request(head, creader, cwriter, upstream)
                if not keep:
                    return
        except _Reset:
            _reset(cwriter)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            cwriter.transport.abort()
        except asyncio.CancelledError:
            cwriter.transport.abort()
        finally:
            if upstream is not None:
                upstream[1].transport.abort()
            with contextlib.suppress(Exception):
                cwriter.close()
            self._tasks.discard(task)

    async def _one_request(
        self, head: bytes, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        request_line, headers = _parse_head(head)
        method, target, _version = request_line.split(" ", 2)
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        path = unquote(split.path)
        rtype = request_type(method, split.path, query)
        bucket, _, key = path.lstrip("/").partition("/")
        part = int(query["partNumber"][0]) if "partNumber" in query else None
        upload_id = query["uploadId"][0] if "uploadId" in query else None
        chunked = (_get(headers, "Transfer-Encoding") or "").lower() == "chunked"
        length = int(_get(headers, "Content-Length") or 0)
        aws_chunked = "aws-chunked" in (_get(headers, "Content-Encoding") or "")
        body_bytes = int(_get(headers, "x-amz-decoded-content-length") or length)
        client_close = (_get(headers, "Connection") or "").lower() == "close"
        fault = self._choose(rtype, key, body_bytes)
        capacity = self.plan.max_in_flight
        serving = capacity is not None and rtype in ("PutObject", "UploadPart")
        if serving and fault is None and self._serving >= capacity:  # type: ignore[operator]
            fault = "capacity"
        if fault in ("reset_mid_body", "corrupt_byte") and body_bytes == 0:
            fault = None  # nothing to cut or flip: forward as is
        seq, arrived = self._next_seq()
        rec = {"seq": seq, "time_s": arrived, "method": method, "type": rtype, "bucket": bucket, "key": key,
               "part_number": part, "upload_id": upload_id, "body_bytes": body_bytes, "fault": fault}

        scenario = (self._scenario(rtype, upload_id, _get(headers, "Authorization") is not None)
                    if fault is None else None)  # issue 24
        if scenario is not None:
            rec["fault"] = scenario
            body = await _read_chunked(creader) if chunked else (await creader.readexactly(length) if length else b"")
            if scenario == "complete_lost":
                return await self._forward(head, body, method, "reset_before_headers", rtype, aws_chunked, chunked,
                                           client_close, rec, cwriter, upstream)
            await self._scenario_answer(scenario, method, split.path, rec, cwriter)
            return not client_close, upstream

        if fault == "reset_mid_body":
            if chunked:
                await creader.readuntil(b"\r\n")
            else:
                await creader.readexactly(length // 2)
            self._record(status=None, **rec)
            raise _Reset
        body = await _read_chunked(creader) if chunked else (await creader.readexactly(length) if length else b"")

        # ---- server quirks (testing/quirks.py): answered here, or the request changed
        if self.plan.quirks and self.plan.quirks_on(rtype):
            answer, head, quirk = self._quirk_state.on_request(self.plan.quirks, self.plan.credentials, method,
                                                                rtype, bucket, query, head)
            if quirk is not None and fault is None:
                rec["fault"] = quirk
            if answer is not None:
                self._record(status=int(answer.split(b" ", 2)[1]), **rec)
                cwriter.write(answer)
                await cwriter.drain()
                return not client_close, upstream
        # ---- end of server quirks
        if fault in _STATUS_FAULTS or fault in ("complete_200_error", "capacity"):
            if fault == "capacity":
                status, reason, code, msg = _STATUS_FAULTS["slowdown"]
            elif fault == "complete_200_error":
                status, reason, code, msg = 200, "OK", "InternalError", "We encountered an internal error."
            else:
                status, reason, code, msg = _STATUS_FAULTS[fault]
            payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                       f"<Message>{msg}</Message><Resource>{split.path}</Resource>"
                       f"<RequestId>faultproxy</RequestId></Error>").encode()
            # logged before the answer: a client that stops the proxy once it has the answer finds it logged
            self._record(status=status, **rec)
            cwriter.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(payload)}\r\nx-amz-request-id: faultproxy\r\n\r\n".encode()
                + (b"" if method == "HEAD" else payload)
            )
            await cwriter.drain()
            return not client_close, upstream
        if fault == "stall":
            self._record(status=None, **rec)
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await asyncio.wait_for(creader.read(1), timeout=self.plan.stall_s)
            return False, upstream
        if serving:
            self._serving += 1
            try:
                return await self._forward(head, body, method, fault, rtype, aws_chunked, chunked,
                                           client_close, rec, cwriter, upstream)
            finally:
                self._serving -= 1
        return await self._forward(head, body, method, fault, rtype, aws_chunked, chunked, client_close, rec,
                                   cwriter, upstream)

    async def _forward(
        self, head: bytes, body: bytes, method: str, fault: str | None, rtype: str, aws_chunked: bool,
        chunked: bool, client_close: bool, rec: dict[str, Any], cwriter: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        """Send the request upstream (after the plan's delay, corrupting a byte if asked) and relay
        the answer; the ``reset_before_headers`` fault cuts the client off after the upstream answered."""
        delay = self.plan.delay_s.get(rtype)
        if delay:
            await asyncio.sleep(delay)
        if fault == "corrupt_byte" and body:
            body = _corrupt(body, aws_chunked and not chunked, self.rng)

        if upstream is None:
            upstream = await asyncio.open_connection(*self.upstream, limit=_MAX_HEAD_BYTES)
        ureader, uwriter = upstream
        uwriter.write(head + body)
        await uwriter.drain()
        try:
            rhead = await ureader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self._record(status=None, **rec)
            raise _Reset from None
        status_line, rheaders = _parse_head(rhead)
        status = int(status_line.split(" ", 2)[1])
        rchunked = (_get(rheaders, "Transfer-Encoding") or "").lower() == "chunked"
        server_close = (_get(rheaders, "Connection") or "").lower() == "close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            rbody = b""
        elif rchunked:
            rbody = await _read_chunked(ureader)
        elif _get(rheaders, "Content-Length") is not None:
            rbody = await ureader.readexactly(int(_get(rheaders, "Content-Length") or 0))
        else:
            rbody = await ureader.read()
            server_close = True
        if fault == "reset_before_headers":
            self._record(status=None, **rec)
            raise _Reset
        if self.plan.quirks and self.plan.quirks_on(rtype):  # ---- server quirks (testing/quirks.py): the answer
            rhead, rbody, stall, quirk = self._quirk_state.on_answer(self.plan.quirks, rtype, rec["bucket"], status,
                                                                      rhead, rbody)
            if quirk is not None and fault is None:
                rec["fault"] = quirk
            if stall:  # headers and half the body, then nothing
                cwriter.write(rhead + rbody[: len(rbody) // 2])
                await cwriter.drain()
                self._record(status=None, **rec)
                await asyncio.sleep(self.plan.stall_s)
                raise _Reset
        # ---- end of server quirks
        cwriter.write(rhead + rbody)
        await cwriter.drain()
        self._record(status=status, **rec)
        if server_close:
            uwriter.transport.abort()
            upstream = None
        return not (client_close or server_close), upstream

    # ------------------------------------------------------------------ issue 24 scenarios
    def _scenario(self, rtype: str, upload_id: str | None, signed: bool = True) -> str | None:
        """The plan's scenario for this request (``complete_lost``, ``no_such_upload``, ``storm``,
        ``clock_skew``), or None. With a skewed clock, an unsigned request (a client asking the
        server's time) gets the skewed ``Date`` too, whatever ``clock_skew_types`` says."""
        with self._lock:
            plan = self.plan
            if rtype == "CompleteMultipartUpload" and upload_id is not None:
                if upload_id in plan._lost_completes:
                    return "no_such_upload"
                if len(plan._lost_completes) < plan.lose_complete_answers:
                    plan._lost_completes.add(upload_id)
                    return "complete_lost"
            if plan.slowdown_storm_s > 0:
                now = time.monotonic()
                if plan._storm_started is None:
                    plan._storm_started = now
                if now - plan._storm_started < plan.slowdown_storm_s:
                    return "storm"
            if plan.clock_skew_s is not None and (plan.clock_skew_types is None or rtype in plan.clock_skew_types
                                                  or not signed):
                return "clock_skew"
        return None

    async def _scenario_answer(self, scenario: str, method: str, path: str, rec: dict[str, Any],
                               cwriter: asyncio.StreamWriter) -> None:
        """Answer a ``no_such_upload``, ``storm`` or ``clock_skew`` request (none is forwarded)."""
        import email.utils

        extra = ""
        server_time = time.time() + ((self.plan.clock_skew_s or 0.0) if scenario == "clock_skew" else 0.0)
        if scenario == "no_such_upload":
            status, reason, code, msg = (404, "Not Found", "NoSuchUpload",
                                         "The specified upload does not exist. The upload ID may be invalid, "
                                         "or the upload may have been aborted or completed.")
        elif scenario == "storm":
            status, reason, code, msg = _STATUS_FAULTS["slowdown"]
        else:
            status, reason, code, msg = (403, "Forbidden", "RequestTimeTooSkewed",
                                         "The difference between the request time and the current time is too large.")
            extra = (f"<RequestTime>{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}</RequestTime>"
                     f"<ServerTime>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(server_time))}</ServerTime>"
                     "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>")
        payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{msg}</Message>'
                   f"{extra}<Resource>{path}</Resource><RequestId>faultproxy</RequestId></Error>").encode()
        self._record(status=status, **rec)
        cwriter.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
            f"Date: {email.utils.formatdate(server_time, usegmt=True)}\r\n"
            f"Content-Length: {len(payload)}\r\nx-amz-request-id: faultproxy\r\n\r\n".encode()
            + (b"" if method == "HEAD" else payload)
        )
        await cwriter.drain()
    # ------------------------------------------------------------------ end of issue 24 scenarios


def parse_rates(specs: Iterable[str]) -> FaultPlan:
    """``["slowdown=0.05", "all=0.3"]`` -> a FaultPlan (``all=R``: every fault, R in total)."""
    rates: dict[str, float] = {}
    total: float | None = None
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            raise ValueError(f"--rate {spec!r}: use FAULT=RATE")
        if name == "all":
            total = float(value)
        else:
            rates[name] = float(value)
    if total is not None:
        return FaultPlan.uniform(total, faults=rates or TRANSIENT_FAULTS)
    return FaultPlan(rates)


def main(argv: list[str] | None = None) -> None:
    """``python -m s3pump.testing.faultproxy``: run the proxy in the foreground until Ctrl-C."""
    p = argparse.ArgumentParser(prog="python -m s3pump.testing.faultproxy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True, help="S3 endpoint to forward to, http://host:port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="port to listen on [default: a free one]")
    p.add_argument("--rate", action="append", default=[], metavar="FAULT=RATE",
                   help=f"fault rate 0..1, repeatable; FAULT is one of {', '.join(FAULTS)}, "
                        "or all (every fault, RATE in total)")
    p.add_argument("--types", default=None, help="comma-separated request types to fault (default: all)")
    p.add_argument("--stall-s", type=float, default=30.0, help="length of a stall [30]")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--log", default=None, help="append each request as a JSON line to this file")
    args = p.parse_args(argv)
    try:
        plan = parse_rates(args.rate)
    except ValueError as e:
        p.error(str(e))
    plan.stall_s = args.stall_s
    if args.types:
        plan.only_types = frozenset(t.strip() for t in args.types.split(","))
    proxy = FaultProxy(args.upstream, plan, host=args.host, port=args.port, seed=args.seed, log_path=args.log)

    async def run() -> None:
        task = asyncio.create_task(proxy.serve_forever())
        while proxy._server is None:
            await asyncio.sleep(0.01)
        print(f"faultproxy listening on {proxy.endpoint_url} -> http://{proxy.upstream[0]}:{proxy.upstream[1]}",
              flush=True)
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
