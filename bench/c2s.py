"""A minimal XMPP client for load through a real server: plaintext SASL PLAIN, bind, then Iqs.

Only for the benchmark's end-to-end mode against the private Prosody on
127.0.0.1; it speaks just enough of RFC 6120 to log in and send Iq gets.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Callable

SUCCESS = re.compile(rb"<success[\s/>]")
FAILURE = re.compile(rb"<failure[\s>]")
BOUND = re.compile(
    rb"<iq[^>]*id=['\"]bind['\"][^>]*type=['\"]result['\"]|<iq[^>]*type=['\"]result['\"][^>]*id=['\"]bind['\"]"
)
FEATURES_END = b"</stream:features>"


class ClientLink(asyncio.Protocol):
    """One logged-in client session; ``run()`` of loadgen drives it like a component link."""

    def __init__(self, user: str, password: str, domain: str, target: str, ready: asyncio.Future) -> None:
        self.user, self.password, self.domain, self.jid = user, password, domain, target
        self.ready = ready
        self.buffer = b""
        self.state = "features"
        self.on_data: Callable[[bytes, float], None] = lambda data, now: None
        self.next_id = 0
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._open()

    def _open(self) -> None:
        self.buffer = b""
        self.transport.write(
            (
                f"<?xml version='1.0'?><stream:stream to='{self.domain}' version='1.0' "
                "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        if self.state == "ready":
            self.on_data(data, time.perf_counter())
            return
        self.buffer += data
        if self.state == "features" and FEATURES_END in self.buffer:
            token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
            self.transport.write(
                f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode()
            )
            self.state = "auth"
        elif self.state == "auth" and SUCCESS.search(self.buffer):
            self.state = "restarted"
            self._open()
        elif self.state == "auth" and FAILURE.search(self.buffer):
            self.ready.set_exception(RuntimeError(f"login as {self.user} failed"))
            self.transport.close()
        elif self.state == "restarted" and FEATURES_END in self.buffer:
            self.transport.write(
                b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                b"<resource>bench</resource></bind></iq>"
            )
            self.state = "binding"
        elif self.state == "binding" and BOUND.search(self.buffer):
            self.state = "ready"
            self.ready.set_result(self)

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"the server closed the connection while {self.state}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def request_template(self, payload: str, senders: int = 1, type: str = "get") -> str:
        """A request of ``type`` from this client, with ``%d`` for the id number; a client is one sender."""
        if senders != 1:
            raise ValueError("a client connection sends as one user; use the load generator for a population")
        return f"<iq type='{type}' id='b%d' to='{self.jid}'>{payload}</iq>"

    def close_stream(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(b"</stream:stream>")
            self.transport.close()


async def connect(port: int, user: str, password: str, domain: str = "localhost", target: str = "iq.localhost"):
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    await loop.create_connection(lambda: ClientLink(user, password, domain, target, ready), "127.0.0.1", port)
    return await asyncio.wait_for(ready, 10)
