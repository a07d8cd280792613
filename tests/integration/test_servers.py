"""The private servers the suite starts listen on 127.0.0.1 only, on exactly the ports they were given.

Read from the kernel (/proc/net/tcp and tcp6, matched to the server process's own sockets),
so a listener the configuration forgot, or one bound to every interface, shows up here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.servers import XmppServer

pytestmark = pytest.mark.integration

LISTEN = "0A"  # the TCP state in /proc/net/tcp


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, IPv4 and IPv6."""
    inodes = socket_inodes(pid)
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != LISTEN or inode not in inodes:
                continue
            address, port = local.split(":")
            if width == 8:
                text = ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))  # little-endian
            else:
                text = address  # any IPv6 listener is already one too many
            found.add((text, int(port, 16)))
    return found


def test_the_server_listens_on_loopback_only_and_only_on_its_ports(server: XmppServer):
    assert server.pid is not None
    sockets = listening(server.pid)
    assert sockets == {("127.0.0.1", port) for port in server.launcher.ports}
