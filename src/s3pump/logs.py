"""Logging setup with secret redaction.

``--debug`` turns on DEBUG logs for s3pump (and INFO for botocore). Every record
passes :class:`RedactingFilter`, which masks ``Authorization`` headers, signatures,
security tokens, secret keys and SSE-C keys wherever they appear in the message.
"""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "configure_logging", "redact"]

_PATTERNS = [
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\n,}]+"),
    re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)(x-amz-server-side-encryption-customer-key(?:-md5)?['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)(x-amz-signature=)[0-9a-f]+"),
    re.compile(r"(?i)((?:aws_)?secret_?(?:access_?)?key['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)((?:aws_)?session_?token['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
    re.compile(r"(?i)(Credential=)[A-Z0-9]{12,}"),
]
_secrets: set[str] = set()


def redact(text: str) -> str:
    """``text`` with known secret values and secret-bearing fields masked as ``***``."""
    for value in _secrets:
        if value and value in text:
            text = text.replace(value, "***")
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


def register_secret(value: str | None) -> None:
    """Mask this exact value in every log record from now on (e.g. a secret key)."""
    if value and len(value) >= 8:
        _secrets.add(value)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose args don't format: leave it to the handler
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(debug: bool) -> None:
    """WARNING by default; DEBUG for s3pump with ``debug``. Logs go to stderr, redacted."""
    root = logging.getLogger()
    if not any(isinstance(f, RedactingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    # botocore warns, with a traceback, when a credential refresh fails; s3pump says the same in its
    # own one line (awsconfig.config_failure), so botocore's record is for --debug only
    logging.getLogger("botocore.credentials").setLevel(logging.DEBUG if debug else logging.CRITICAL)
    if debug:
        logging.getLogger("s3pump").setLevel(logging.DEBUG)
        logging.getLogger("botocore").setLevel(logging.INFO)
