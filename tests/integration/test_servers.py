"""The private servers the suite starts listen on 127.0.0.1 only, on exactly the ports they were given.

Read from the kernel (/proc/net/tcp and tcp6, matched to the server process's own sockets),
so a listener the configuration forgot, or one bound to every interface, shows up here.
"""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

import pytest

from private_servers.base import free_port
from private_servers.ejabberd import PrivateEjabberd
from tests.integration.servers import XmppServer

pytestmark = pytest.mark.integration

STOP_TIMEOUT = 5.0

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


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc, the kernel's own record of parents)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], list(children.get(pid, []))
    while pending:
        child = pending.pop()
        found.append(child)
        pending.extend(children.get(child, []))
    return found


def assert_all_exit(processes: dict[int, int], timeout: float) -> None:
    """Wait until every process (pid -> its pidfd) has exited, failing after ``timeout``; close the pidfds."""
    try:
        poller = select.poll()
        for descriptor in processes.values():
            poller.register(descriptor, select.POLLIN)  # readable once that process has exited
        deadline = time.monotonic() + timeout
        running = set(processes.values())
        while running and time.monotonic() < deadline:
            for descriptor, _ in poller.poll((deadline - time.monotonic()) * 1000):
                poller.unregister(descriptor)
                running.discard(descriptor)
        assert not running, f"still running: {[pid for pid, fd in processes.items() if fd in running]}"
    finally:
        for descriptor in processes.values():
            os.close(descriptor)


def test_stopping_ejabberd_also_ends_the_programs_its_vm_ran(tmp_path):
    """The VM's helpers (erl_child_setup, memsup, ...) run in sessions of their own, out of reach
    of a signal to its process group; stop() must not leave them behind."""
    server = PrivateEjabberd(tmp_path, free_port(), free_port(), "secret")
    with server:
        assert server.pid is not None
        # pidfds name these very processes, so a pid reused later cannot pass for one of them.
        helpers = {pid: os.pidfd_open(pid) for pid in descendants(server.pid)}
        assert helpers, "the VM ran no helper program: this test would check nothing"
    assert_all_exit(helpers, STOP_TIMEOUT)
