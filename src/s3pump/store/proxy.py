"""Which forward proxy, if any, carries a run's requests to its endpoint (for messages).

awscrt and botocore both take the proxy from the environment: ``HTTPS_PROXY`` for an ``https``
endpoint (a CONNECT tunnel), ``HTTP_PROXY`` for ``http`` (upper or lower case), and skip it for the
hosts ``NO_PROXY`` names. This module answers with the standard library's reading of the same
variables, so that a proxy that refuses or does not answer is named as the proxy, not as the
endpoint.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

__all__ = ["proxy_for", "shown"]


def shown(proxy_url: str) -> str:
    """``proxy_url`` without its user and password (for messages and logs)."""
    parts = urlsplit(proxy_url if "://" in proxy_url else f"http://{proxy_url}")
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}"


def proxy_for(endpoint_url: str) -> tuple[str, str] | None:
    """``(proxy URL, the variable that set it)`` for requests to ``endpoint_url``, or None (direct)."""
    parts = urlsplit(endpoint_url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass_environment(parts.netloc, proxies):  # type: ignore[attr-defined]
        return None
    return shown(proxy), f"{parts.scheme.upper()}_PROXY"
