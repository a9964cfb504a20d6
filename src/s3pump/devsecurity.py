"""Keys for the local SeaweedFS's internal ports: only its S3 gateway answers without them.

``weed server`` listens on eight TCP ports of 127.0.0.1: the S3 gateway, and the master, volume
server and filer, each with HTTP and gRPC (+10000), plus the S3 gateway's gRPC. Unconfigured, every
port but S3 answers anyone on the machine: the filer's HTTP reads and writes objects by path, the
master hands out write tokens (``/dir/assign``) and deletes collections (``/col/delete``), volume
servers read and write needles by id, and the gRPC services do all of that and more (the S3
gateway's would take a new identity). The S3 keys, in a 0600 file, would protect nothing.

:func:`write_security` writes ``security.toml`` into the server's data directory (its working
directory, the first place ``weed`` looks; 0600, as the keys and certificates beside it), fresh at
every start:

* JWT signing keys for volume-server writes and reads (``[jwt.signing]``, ``[jwt.signing.read]``)
  and filer HTTP writes and reads (``[jwt.filer_signing]``, ``[jwt.filer_signing.read]``): a
  request without a token signed with them gets 401;
* mutual TLS on every gRPC listener (``[grpc.*]``): a private CA made here signs one certificate
  that the parts present to each other; a client without it fails the handshake;
* HTTPS with client certificates on the master's HTTP port (``[https.master]``, the same CA):
  nothing inside ``weed server`` calls it, and it would hand a signed write token to anyone.

The certificates are EC P-256, made with ``cryptography`` (the ``server`` extra) in ~20 ms.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

__all__ = ["SECURITY_FILE", "SecurityFiles", "master_status", "write_security"]

SECURITY_FILE = "security.toml"
_JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
_GRPC_COMPONENTS = ("master", "volume", "filer", "s3", "client")
_JWT_EXPIRES_S = 60  # SeaweedFS's own default for read tokens; tokens are made per request


@dataclass(frozen=True, slots=True)
class SecurityFiles:
    """What :func:`write_security` wrote: the config file, the CA, the parts' certificate and key."""

    config: Path
    ca_cert: Path
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 (also when ``path`` exists with a wider mode)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _certificates() -> tuple[bytes, bytes, bytes]:
    """A private CA and one certificate it signed (server and client use), as PEM: ca, cert, key."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise UsageError("the local S3 server needs the 'cryptography' package to protect its internal ports: "
                         "pip install 's3pump[server]'") from None
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3pump local SeaweedFS CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(valid[0]).not_valid_after(valid[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3pump-seaweedfs")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(valid[0]).not_valid_after(valid[1])
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), cert.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def _toml_str(value: str | Path) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_security(data: Path) -> SecurityFiles:
    """Write ``security.toml``, fresh keys and certificates into ``data`` (each 0600); returns their paths.

    Raises:
        UsageError: the ``cryptography`` package is missing.
    """
    ca_pem, cert_pem, key_pem = _certificates()
    files = SecurityFiles(config=data / SECURITY_FILE, ca_cert=data / "seaweedfs-ca.crt",
                          cert=data / "seaweedfs.crt", key=data / "seaweedfs.key")
    for path, content in ((files.ca_cert, ca_pem), (files.cert, cert_pem), (files.key, key_pem)):
        _write_private(path, content)
    lines = ["# written by s3pump at every start of this server: only its S3 port answers without these keys"]
    for section in _JWT_SECTIONS:
        lines += [f"[{section}]", f'key = "{secrets.token_hex(32)}"', f"expires_after_seconds = {_JWT_EXPIRES_S}"]
    lines += ["[access]", "ui = false",  # the volume server's status page
              "[filer.expose_directory_metadata]", "enabled = false",
              "[grpc]", f"ca = {_toml_str(files.ca_cert)}"]
    for component in _GRPC_COMPONENTS:
        lines += [f"[grpc.{component}]", f"cert = {_toml_str(files.cert)}", f"key = {_toml_str(files.key)}"]
    lines += ["[https.master]", f"cert = {_toml_str(files.cert)}", f"key = {_toml_str(files.key)}",
              f"ca = {_toml_str(files.ca_cert)}"]
    _write_private(files.config, ("\n".join(lines) + "\n").encode())
    return files


def master_status(data: Path, master_port: int, *, timeout_s: float = 2.0) -> dict[str, object] | None:
    """The master's ``/dir/status`` (its topology), asked over HTTPS with the owner's certificate from
    ``data``; None when it cannot be asked (no such files: a server not started by this version)."""
    import http.client
    import ssl

    files = SecurityFiles(config=data / SECURITY_FILE, ca_cert=data / "seaweedfs-ca.crt",
                          cert=data / "seaweedfs.crt", key=data / "seaweedfs.key")
    if not (files.config.exists() and files.cert.exists()):
        return None
    ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    ctx.check_hostname = False  # the certificate names 127.0.0.1 and localhost; weed checks no names either
    ctx.load_cert_chain(str(files.cert), str(files.key))
    conn = http.client.HTTPSConnection("127.0.0.1", master_port, timeout=timeout_s, context=ctx)
    try:
        conn.request("GET", "/dir/status")
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body) if resp.status == 200 else {}
    except (OSError, ValueError, http.client.HTTPException):
        return {}
    finally:
        conn.close()
