"""A proxy.py plugin for the tests: names under ``.proxy-only.test`` resolve to 127.0.0.1 *in the
proxy only* (nothing else on the machine resolves them), and every request the proxy carries is
recorded, one line each, in the file ``$S3PUMP_TEST_PROXY_RECORD``. An endpoint named so can only be
reached through the proxy: a request that bypasses it fails."""

from __future__ import annotations

import os

from proxy.http.parser import HttpParser
from proxy.http.proxy import HttpProxyBasePlugin

SUFFIX = ".proxy-only.test"


def _record(line: str) -> None:
    with open(os.environ["S3PUMP_TEST_PROXY_RECORD"], "a", encoding="utf-8") as f:
        f.write(line + "\n")


class ProxyOnlyHosts(HttpProxyBasePlugin):
    def resolve_dns(self, host: str, port: int) -> tuple[str | None, None]:
        return ("127.0.0.1" if host.endswith(SUFFIX) else None), None

    def before_upstream_connection(self, request: HttpParser) -> HttpParser | None:
        if request.is_https_tunnel:  # a CONNECT: the requests inside the tunnel are not seen
            _record(f"CONNECT {(request.host or b'').decode()}:{request.port}")
        return request

    def handle_client_request(self, request: HttpParser) -> HttpParser | None:
        if not request.is_https_tunnel:
            _record(f"{(request.method or b'').decode()} {(request.host or b'').decode()}:{request.port} "
                    f"{(request.path or b'').decode()}")
        return request

    def handle_upstream_chunk(self, chunk: memoryview) -> memoryview | None:
        return chunk

    def on_upstream_connection_close(self) -> None:
        pass
