"""Test a handler module without a server: XML in, XML out.

``InMemoryComponent`` runs the real component (connection, router, registry,
tracker) over an in-memory transport and a ``task.Clock``, already past the
XEP-0114 handshake, so a test sends an Iq as XML and reads the reply stanzas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.words.xish import domish

from component.config import Identity, Settings
from component.loader import load_handlers
from component.registry import Registry
from component.service import Component

SERVER_HEADER = (
    b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'"
    b" from='%s' id='in-memory-stream'>"
)


def parse_stanzas(data: bytes | str) -> list[domish.Element]:
    """The stanzas in ``data``, a run of top-level elements of a component stream."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    stanzas: list[domish.Element] = []
    stream = domish.elementStream()
    stream.DocumentStartEvent = lambda root: None
    stream.ElementEvent = stanzas.append
    stream.DocumentEndEvent = lambda: None
    stream.parse(SERVER_HEADER % b"test" + data)
    return stanzas


def make_settings(**values: Any) -> Settings:
    """Settings for an in-memory component; keyword arguments override the defaults."""
    values = {"path": Path("in-memory.toml"), "jid": "iq.localhost", "secret": "in-memory", **values}
    values.setdefault("identities", (Identity("component", "generic", "iqresponder"),))
    return Settings(**values)


class InMemoryComponent:
    """A component with an authenticated stream over a ``StringTransport``.

    The keepalive is off unless ``keepalive=True``, so the clock only runs the
    timers a test is about.
    """

    def __init__(
        self,
        directories: Sequence[Path] = (),
        options: Mapping[str, Mapping[str, Any]] | None = None,
        settings: Settings | None = None,
        keepalive: bool = False,
    ) -> None:
        self.clock = task.Clock()
        self.keepalive = keepalive
        self.settings = settings or make_settings()
        self.registry = Registry()
        self.component = Component(self.settings, self.registry, reactor=self.clock)
        self.modules = load_handlers(directories, self.registry, self.component, options or {})
        self.connect()

    def connect(self) -> None:
        """Open a new stream and complete the handshake, as after a reconnect."""
        self.transport = StringTransport()
        self.stream = self.component.connection.build_stream()
        self.stream.makeConnection(self.transport)
        self.stream.dataReceived(SERVER_HEADER % self.settings.jid.encode())
        self.stream.dataReceived(b"<handshake/>")
        if not self.keepalive:  # its pings would mix with the replies a test reads
            self.component.keepalive.stop()
        self.transport.clear()

    def disconnect(self, reason: str = "connection lost in test") -> None:
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        self.stream.connectionLost(Failure(ConnectionLost(reason)))

    def receive(self, xml: str | bytes) -> list[domish.Element]:
        """Feed stanzas from the server; return the stanzas the component wrote since the last call."""
        self.stream.dataReceived(xml.encode("utf-8") if isinstance(xml, str) else xml)
        return self.sent()

    def sent(self) -> list[domish.Element]:
        """The stanzas the component wrote since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return parse_stanzas(data)
