"""Probes of a running SeaweedFS's listeners, as another local user without its keys would try them.

No gRPC or JWT library: :func:`grpc_call` speaks just enough HTTP/2 (prior knowledge, or over TLS
with ALPN h2) for one call, and :func:`jwt_hs256` signs the tokens SeaweedFS checks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import psutil

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST, _SETTINGS, _GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x7
_END_STREAM, _ACK, _END_HEADERS = 0x1, 0x1, 0x4


def listening_ports(pid: int) -> set[int]:
    """TCP ports that ``pid`` and every process under it listen on."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {c.laddr.port for p in procs for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


def tree_pids(pid: int) -> set[int]:
    return {pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))}


def jwt_hs256(key: str, claims: dict[str, object]) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + b64(hmac.new(key.encode(), head.encode(), hashlib.sha256).digest())


@dataclass(frozen=True)
class Keys:
    """What the server's owner holds (security.toml and the certificates beside it); None: unsecured."""

    filer_read: str
    filer_write: str
    volume_read: str
    volume_write: str
    tls: ssl.SSLContext  # presents the parts' client certificate

    @classmethod
    def load(cls, data_dir: str) -> Keys | None:
        path = Path(data_dir) / "security.toml"
        if not path.exists():
            return None
        conf = tomllib.loads(path.read_text())
        ctx = ssl.create_default_context(cafile=conf["grpc"]["ca"])
        ctx.check_hostname = False
        ctx.load_cert_chain(conf["grpc"]["client"]["cert"], conf["grpc"]["client"]["key"])
        jwt = conf["jwt"]
        return cls(jwt["filer_signing"]["read"]["key"], jwt["filer_signing"]["key"], jwt["signing"]["read"]["key"],
                   jwt["signing"]["key"], ctx)

    def bearer(self, key: str, **claims: object) -> dict[str, str]:
        return {"Authorization": "Bearer " + jwt_hs256(key, {"exp": int(time.time()) + 60, **claims})}


def no_client_cert() -> ssl.SSLContext:
    """TLS as a stranger: trusts anything, presents no certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_call(port: int, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
         tls: ssl.SSLContext | None = None, timeout_s: float = 10.0) -> tuple[int, bytes] | None:
    """One HTTP request: (status, body), or None when the connection failed (TLS refused, reset)."""
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout_s, context=tls) if tls
        else http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _hpack_literal(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    assert len(n) < 127 and len(v) < 127
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v  # literal, not indexed, no Huffman


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


@dataclass(frozen=True)
class GrpcAnswer:
    http2: bool  # the server spoke HTTP/2 to us at all
    data: bytes  # the response messages' bytes (gRPC framing included), up to the first flow-control window


def grpc_call(port: int, method: str, message: bytes, *, tls: ssl.SSLContext | None = None,
              timeout_s: float = 10.0) -> GrpcAnswer:
    """One gRPC call (``/package.Service/Method``) with ``message`` (serialized protobuf)."""
    data = b""
    spoke = False
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    except OSError:
        return GrpcAnswer(False, b"")
    try:
        sock: socket.socket = raw
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
            sock = tls.wrap_socket(raw, server_hostname="localhost")
        headers = b"".join(_hpack_literal(k, v) for k, v in (
            (":method", "POST"), (":scheme", "https" if tls else "http"), (":path", method),
            (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"), ("te", "trailers")))
        sock.sendall(_PREFACE + _frame(_SETTINGS, 0, 0, b"") + _frame(_HEADERS, _END_HEADERS, 1, headers)
                     + _frame(_DATA, _END_STREAM, 1, b"\x00" + len(message).to_bytes(4, "big") + message))
        buf = b""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
                length, kind, flags = int.from_bytes(buf[:3], "big"), buf[3], buf[4]
                stream, payload, buf = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + length], buf[9 + length:]
                if kind not in range(0, 10):
                    return GrpcAnswer(spoke, data)  # not HTTP/2
                spoke = True
                if kind == _SETTINGS and not flags & _ACK:
                    sock.sendall(_frame(_SETTINGS, _ACK, 0, b""))
                elif kind == _DATA and stream == 1:
                    data += payload
                    if len(data) > 60_000:  # the default window: enough to see what it sends
                        return GrpcAnswer(spoke, data)
                if (stream == 1 and flags & _END_STREAM and kind in (_DATA, _HEADERS)) or kind in (_RST, _GOAWAY):
                    return GrpcAnswer(spoke, data)
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            if not spoke and len(buf) >= 9 and not buf.startswith(b"\x00"):
                return GrpcAnswer(False, data)  # a TLS alert or an HTTP/1 answer, not a SETTINGS frame
    except (OSError, ssl.SSLError):
        pass
    finally:
        raw.close()
    return GrpcAnswer(spoke, data)


def pb_string(field: int, value: str) -> bytes:
    raw = value.encode()
    return bytes([field << 3 | 2]) + _varint(len(raw)) + raw


def pb_varint(field: int, value: int) -> bytes:
    return bytes([field << 3]) + _varint(value)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)
