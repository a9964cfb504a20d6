"""SeaweedFS started on ports that another process takes first: picked again, not a failure."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from s3pump import devserver
from s3pump.devserver import pick_ports, start_server, stop_server


@pytest.mark.e2e
def test_a_port_taken_before_weed_binds_it_is_picked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the first ports handed out have the volume server's gRPC port (volume + 10000) already bound:
    # what another server starting beside this one, or a client's ephemeral port, does between the
    # check and weed's bind
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    first = pick_ports(4)
    volume_grpc = taken.getsockname()[1]
    rigged = (first[0], volume_grpc - 10000, first[2], first[3])
    handed: list[tuple[int, ...]] = []

    def pick(count: int = 4, *, s3_port: int | None = None) -> tuple[int, ...]:
        handed.append(rigged if not handed else pick_ports(count, s3_port=s3_port))
        return handed[-1]

    monkeypatch.setattr(devserver, "pick_ports", pick)
    try:
        server, proc = start_server(tmp_path / "weed")
    finally:
        taken.close()
    try:
        assert len(handed) == 2 and server.ports == handed[1] != rigged
        assert b"address already in use" in (tmp_path / "weed" / "weed.log").read_bytes()
        import boto3

        client = boto3.client("s3", endpoint_url=server.endpoint_url, region_name=server.region,
                              aws_access_key_id=server.access_key_id,
                              aws_secret_access_key=server.secret_access_key)
        assert client.list_buckets()["Buckets"] == []
    finally:
        stop_server(proc, grace_s=2.0)


@pytest.mark.e2e
def test_the_port_named_taken_before_weed_binds_it_is_one_line_not_three_attempts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve --port N``: N seen free, then taken before weed binds it. The user named it, so it is
    not picked again: one attempt, then "--port N is in use" (exit 2), not three failed starts."""
    from s3pump.errors import UsageError

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    checks: list[int] = []
    real_free = devserver._port_free

    def free(p: int) -> bool:  # the first check runs before the port was taken
        checks.append(p)
        return True if len(checks) == 1 else real_free(p)

    monkeypatch.setattr(devserver, "_port_free", free)
    launched: list[int] = []
    real_launch = devserver._launch
    monkeypatch.setattr(devserver, "_launch", lambda *a: (launched.append(1), real_launch(*a))[1])
    try:
        with pytest.raises(UsageError, match=f"--port {port} is in use on 127.0.0.1; pick another") as e:
            start_server(tmp_path / "weed", s3_port=port, ready_timeout_s=30)
    finally:
        taken.close()
    assert e.value.exit_code == 2 and launched == [1]
    assert checks[0] == checks[-1] == port and checks.count(port) == 2  # (pick_ports checks the others)
