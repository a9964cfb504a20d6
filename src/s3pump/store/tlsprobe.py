"""Why an https endpoint does not answer: a certificate check, for the one-line error.

awscrt reports a failed TLS handshake only after about 26 s, and without saying why
(``AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE``). When the first request to an https endpoint is slow,
the store shakes hands once with Python's ``ssl`` module, checking the certificate against the
same trust (the CA bundle, or the system's store) as awscrt, and names the problem the way the aws
cli does ("certificate verify failed: unable to get local issuer certificate"). Only a verdict on
the certificate counts: a refusal or silence says nothing here (a proxy may be the only way in),
and the request goes on waiting.
"""

from __future__ import annotations

import socket
import ssl

__all__ = ["certificate_problem", "untrusted_message", "verify_failure_in"]

_VERIFY_FAILED = "certificate verify failed: "


def certificate_problem(host: str, port: int, ca_bundle: str | None, *, timeout_s: float = 5.0) -> str | None:
    """The reason the certificate of ``host:port`` is not trusted, or None (trusted, or no verdict).

    ``ca_bundle``: PEM file of trusted CAs; None: the system's trust store.
    """
    context = ssl.create_default_context(cafile=ca_bundle)
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock, \
                context.wrap_socket(sock, server_hostname=host):
            return None
    except ssl.SSLCertVerificationError as e:
        return e.verify_message or e.reason or str(e)
    except (OSError, ValueError):
        return None


def verify_failure_in(text: str) -> str | None:
    """The reason in an OpenSSL "certificate verify failed: REASON (_ssl.c:N)" message (botocore's
    SSLError), or None when ``text`` is not about the certificate."""
    at = text.find(_VERIFY_FAILED)
    if at < 0:
        return None
    reason = text[at + len(_VERIFY_FAILED):]
    return reason.split(" (_ssl.c", 1)[0].strip() or "certificate verify failed"


def untrusted_message(endpoint: str, ca_bundle: str | None, problem: str) -> str:
    """The one line for an untrusted certificate: the endpoint, the reason, the trust it was checked
    against, and what to do."""
    trust = f"the CA bundle {ca_bundle}" if ca_bundle else "the system's trust store"
    return (f"the endpoint {endpoint}: its TLS certificate is not trusted ({problem}, checked against "
            f"{trust}); give its CA with --ca-bundle, AWS_CA_BUNDLE or the profile's ca_bundle "
            "(or --no-verify-ssl)")
