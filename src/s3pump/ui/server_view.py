"""What ``s3pump serve`` prints: a local S3 server's endpoint and keys, or export lines for ``eval``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..devserver import DevServer

__all__ = ["print_server", "print_server_env"]


def print_server(server: DevServer, *, pid: int | None = None) -> None:
    """The server's endpoint, keys, region and data directory (and ``pid``, when given) on stdout."""
    print(f"endpoint:   {server.endpoint_url}\naccess key: {server.access_key_id}\n"
          f"secret key: {server.secret_access_key}\nregion:     {server.region}\n"
          f"data dir:   {server.data_dir}" + (f"\npid:        {pid}" if pid is not None else ""), flush=True)


def print_server_env(server: DevServer) -> None:
    """``export AWS_...=...`` lines for the server, on stdout (for ``eval "$(s3pump serve --env)"``)."""
    print(f"export AWS_ENDPOINT_URL={server.endpoint_url}\nexport AWS_ACCESS_KEY_ID="
          f"{server.access_key_id}\nexport AWS_SECRET_ACCESS_KEY={server.secret_access_key}\n"
          f"export AWS_REGION={server.region}")
