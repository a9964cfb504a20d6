"""The local server's ports stay out of the kernel's ephemeral range, so a client connection's
source port cannot take one while a test (or a user) restarts the server on the ports it had."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3pump.devserver import pick_ports


def test_picked_ports_and_their_grpc_ports_are_below_the_ephemeral_range() -> None:
    range_file = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if not range_file.exists():
        pytest.skip("no /proc/sys/net/ipv4/ip_local_port_range here")
    low = int(range_file.read_text().split()[0])
    for _ in range(5):
        for port in pick_ports(4):
            assert port + 10000 < low, (port, low)
