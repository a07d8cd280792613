"""Test a handler module without a server: XML in, XML out. Also a pytest plugin.

``InMemoryComponent`` runs the real component (connection, router, registry,
tracker) over an in-memory transport and a ``task.Clock``, already past the
XEP-0114 handshake, so a test sends an Iq as XML and reads the reply stanzas.

``HandlerHarness`` is the handler author's view of it: ``ask()`` takes an Iq
as XML (``id``, ``from`` and ``to`` may be left out) and returns the reply as
XML with stable ids; ``queries()`` lists the outbound queries the handler made
and ``answer()`` answers them; ``advance()`` moves the clock that handlers see
as ``request.component.clock``. With iqresponder installed, pytest offers it as
the ``handler_harness`` fixture::

    def test_ping(handler_harness):
        harness = handler_harness("handlers/ping.py")
        assert harness.ask("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>") == (
            "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'/>"
        )

The component logs a failure and carries on wherever one stanza's fault must not
cost the others their answers, so a test that only reads replies can pass while
every request fails inside. ``LoggedFailures`` catches what was logged; a test
under the ``handler_harness`` fixture fails on any failure it did not ``expect()``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast
from xml.etree import ElementTree

import pytest
from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, LogEvent, LogLevel, formatEvent, globalLogPublisher
from twisted.words.xish import domish

from component.config import Settings
from component.delegation import NS_DELEGATION_2
from component.discovery import Identity
from component.link import Link
from component.payload import Payload
from component.privilege import NS_PRIVILEGE_2
from component.registry import Registry
from component.serializer import to_xml
from component.service import Component
from component.store import MemoryStore, Store
from component.stream import NS_CLIENT, NS_COMPONENT_ACCEPT, NS_FORWARD, ComponentStream
from component.testing_commands import CommandRun

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


def canonical(xml: str) -> str:
    """XML text in its canonical form (C14N 2.0, prefixes rewritten): equal text means equal XML.

    Attribute order, quote style, prefixes and empty-element tags no longer matter.
    """
    return ElementTree.canonicalize(xml, rewrite_prefixes=True)


def canonical_tree(element: ElementTree.Element) -> str:
    """The canonical form of an ElementTree element, written from the tree itself (no serializer in between)."""
    out: list[str] = []
    target = ElementTree.C14NWriterTarget(out.append, rewrite_prefixes=True)

    def walk(element: ElementTree.Element) -> None:
        target.start(element.tag, dict(element.attrib))
        if element.text:
            target.data(element.text)
        for child in element:
            walk(child)
            if child.tail:
                target.data(child.tail)
        target.end(element.tag)

    walk(element)
    return "".join(out)


def make_settings(**values: Any) -> Settings:
    """Settings for an in-memory component; keyword arguments override the defaults."""
    values = {"path": Path("in-memory.toml"), "jid": "iq.localhost", "secret": "in-memory", **values}
    values.setdefault("identities", (Identity("component", "generic", "iqresponder"),))
    return Settings(**values)


def describe(event: LogEvent) -> str:
    """A logged event as a reader wants it: its message, and its traceback if it carries a failure."""
    text = formatEvent(event)
    failure = event.get("log_failure")
    return f"{text}\n{failure.getTraceback()}" if failure is not None else text


class LoggedFailures:
    """Failures logged through twisted.logger while it is open: events with ``log_failure``, or at error or critical.

    Use it as a context manager around what the test drives. A test that expects a
    failure claims it with ``expect(text)``; on leaving the block (or on ``check()``)
    any failure left unclaimed fails the test with its traceback.
    """

    def __init__(self) -> None:
        self.events: list[LogEvent] = []
        self._expected: list[LogEvent] = []

    def __enter__(self) -> Self:
        globalLogPublisher.addObserver(cast(ILogObserver, self._observe))  # any callable serves
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        globalLogPublisher.removeObserver(cast(ILogObserver, self._observe))
        if kind is None:
            self.check()

    def _observe(self, event: LogEvent) -> None:
        if "log_failure" in event or event.get("log_level") in (LogLevel.error, LogLevel.critical):
            self.events.append(event)

    def unexpected(self) -> list[LogEvent]:
        """The failures logged so far that no ``expect()`` claimed."""
        return [event for event in self.events if not any(event is claimed for claimed in self._expected)]

    def expect(self, text: str) -> list[LogEvent]:
        """Claim the failures whose message or traceback holds ``text``; there must be at least one."""
        matching = [event for event in self.unexpected() if text in describe(event)]
        if not matching:
            raise AssertionError(f"no failure with {text!r} was logged; logged: {self._listing(self.events)}")
        self._expected.extend(matching)
        return matching

    def check(self) -> None:
        """Fail if a failure was logged that no ``expect()`` claimed."""
        unexpected = self.unexpected()
        if unexpected:
            raise AssertionError(f"{len(unexpected)} unexpected failure(s) logged:\n{self._listing(unexpected)}")

    @staticmethod
    def _listing(events: list[LogEvent]) -> str:
        return "\n".join(describe(event) for event in events) or "nothing"


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
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.clock = task.Clock()
        self.keepalive = keepalive
        self.settings = settings or make_settings()
        self.registry = Registry()
        extra: dict[str, Any] = {"new_id": new_id} if new_id is not None else {}
        self.store = MemoryStore()
        """The handlers' store, in memory; ``store.fail_with = StoreUnavailable()`` plays an outage."""
        self.component = Component(
            self.settings, self.registry, reactor=self.clock, store=Store(self.store, self.clock), **extra
        )
        self.modules = self.component.load_handlers(directories, options or {})
        self.connect()

    def connect(self) -> None:
        """Open new streams and complete their handshakes, as after a reconnect.

        With ``instance_jid`` in the settings there are two: ``stream`` under the
        component's name and ``instance_stream`` under the instance's own name.
        """
        self.stream, self.transport = self._open(self.component.link)
        if self.component.instance_link is not None:
            self.instance_stream, self.instance_transport = self._open(self.component.instance_link)

    def _open(self, link: Link) -> tuple[ComponentStream, StringTransport]:
        transport = StringTransport()
        stream = link.connection.build_stream()
        stream.makeConnection(transport)
        stream.dataReceived(SERVER_HEADER % link.jid.encode())
        stream.dataReceived(b"<handshake/>")
        if not self.keepalive:  # its pings would mix with the replies a test reads
            link.keepalive.stop()
        transport.clear()
        return stream, transport

    def disconnect(self, reason: str = "connection lost in test", instance: bool = False) -> None:
        """Lose the stream (the instance's own with ``instance=True``)."""
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        stream = self.instance_stream if instance else self.stream
        stream.connectionLost(Failure(ConnectionLost(reason)))

    def receive(self, xml: str | bytes, instance: bool = False) -> list[domish.Element]:
        """Feed stanzas from the server; return the stanzas the component wrote on that stream since the last call.

        ``instance=True`` feeds (and reads) the stream under the instance's own name.
        """
        stream = self.instance_stream if instance else self.stream
        stream.dataReceived(xml.encode("utf-8") if isinstance(xml, str) else xml)
        return self.sent(instance)

    def sent(self, instance: bool = False) -> list[domish.Element]:
        """The stanzas the component wrote (on the instance's own stream with ``instance=True``) since the last call."""
        transport = self.instance_transport if instance else self.transport
        data = transport.value()
        transport.clear()
        return parse_stanzas(data)


TESTER = "tester@localhost/test"


class HandlerHarness:
    """A handler module (or directory) in an in-memory component, driven with XML strings.

    Ids are stable: requests without an ``id`` get ``1``, ``2``, ... and the
    component's outbound queries get ``q1``, ``q2``, ...
    """

    def __init__(
        self,
        *paths: str | Path,
        options: Mapping[str, Mapping[str, Any]] | None = None,
        settings: Settings | None = None,
        logged: LoggedFailures | None = None,
    ) -> None:
        self.logged = logged
        query_ids = (f"q{n}" for n in itertools.count(1))
        self.memory = InMemoryComponent(
            [Path(path) for path in paths], options=options, settings=settings, new_id=lambda: next(query_ids)
        )
        self.component = self.memory.component
        self.clock = self.memory.clock
        self.store = self.memory.store
        """The modules' store, in memory (``component.store.MemoryStore``): ``store.fail_with =
        StoreUnavailable()`` shows what users get while the real one is down."""
        self._request_ids = itertools.count(1)
        self._wrapper_ids = (f"d{n}" for n in itertools.count(1))
        self._replies: list[domish.Element] = []
        self._queries: list[domish.Element] = []
        self._messages: list[domish.Element] = []

    def ask(self, iq: str | Payload, sender: str = TESTER, type: str = "get") -> XML | None:
        """Send ``iq`` (``id``, ``from``, ``to`` filled in when missing); return its reply as XML.

        ``iq`` is the Iq as XML, or a payload instance to send in an Iq of
        ``type``. The reply compares equal to XML that means the same
        (``XML``). ``None`` when the reply has not come yet (the handler is
        waiting, for example on an outbound query: see ``queries()`` and
        ``answer()``).
        """
        stanza = self._request(iq, sender, type)
        stanza.attributes.setdefault("to", self.component.jid)
        self._collect(self.memory.receive(to_xml(stanza)))
        return self.reply(stanza["id"])

    def ask_delegated(
        self, iq: str | Payload, sender: str = TESTER, type: str = "get", version: str = NS_DELEGATION_2
    ) -> XML | None:
        """Send ``iq`` as one of the server's users, forwarded by the server (XEP-0355); return the user's reply.

        ``iq`` is the Iq the user sent, as in ``ask()``, but its ``to`` stays as
        given: leave it out for the user's own account, or name the server or
        a bare JID on it. The server (``component.server_domain``) wraps it in
        ``version`` (``urn:xmpp:delegation:2`` as Prosody, ``:1`` as ejabberd),
        and the reply is the Iq the server passes on to the user, unwrapped; or
        the error the component answered the server's Iq with, if it refused it.
        """
        stanza = self._request(iq, sender, type)
        server = self.component.server_domain
        inner = to_xml(stanza, within=NS_COMPONENT_ACCEPT).replace("<iq", f"<iq xmlns='{NS_CLIENT}'", 1)
        wrapper_id = next(self._wrapper_ids)
        self._collect(
            self.memory.receive(
                f"<iq type='set' id='{wrapper_id}' from='{server}' to='{self.component.jid}'>"
                f"<delegation xmlns='{version}'><forwarded xmlns='{NS_FORWARD}'>{inner}</forwarded></delegation></iq>"
            )
        )
        reply = self.reply(wrapper_id)
        if reply is None or "type='error'" in reply[:60]:
            return reply
        [outer] = parse_stanzas(reply)
        forwarded = next(next(outer.elements(version, "delegation")).elements(NS_FORWARD, "forwarded"))
        return _xml(next(forwarded.elements(NS_CLIENT, "iq")), NS_CLIENT)

    def _request(self, iq: str | Payload, sender: str, type: str) -> domish.Element:
        """The Iq to send: parsed (or built around a payload instance), with an id and a ``from``."""
        if isinstance(iq, Payload):
            iq = f"<iq type='{type}'>{iq.to_xml()}</iq>"
        [stanza] = parse_stanzas(iq)
        if not stanza.hasAttribute("id"):
            stanza["id"] = str(next(self._request_ids))
        stanza.attributes.setdefault("from", sender)
        return stanza

    def grant(
        self,
        roster: str = "none",
        message: str = "none",
        presence: str = "none",
        iq: Mapping[str, str] | None = None,
        version: str = NS_PRIVILEGE_2,
    ) -> None:
        """Play the server advertising privileges (XEP-0356) to the component, as after it connected."""
        perms = "".join(
            f"<perm access='{access}' type='{value}'/>"
            for access, value in (("roster", roster), ("message", message), ("presence", presence))
        )
        if iq:
            namespaces = "".join(f"<namespace ns='{ns}' type='{value}'/>" for ns, value in iq.items())
            perms += f"<perm access='iq'>{namespaces}</perm>"
        self._collect(
            self.memory.receive(
                f"<message from='{self.component.server_domain}' to='{self.component.jid}'>"
                f"<privilege xmlns='{version}'>{perms}</privilege></message>"
            )
        )

    def sent_messages(self) -> list[XML]:
        """The messages the component sent since the last call, as XML (such as those sent as the server)."""
        self._collect(self._sent())
        messages, self._messages = self._messages, []
        return [_xml(message) for message in messages]

    def _sent(self) -> list[domish.Element]:
        sent = self.memory.sent()
        if self.component.instance_link is not None:
            sent += self.memory.sent(instance=True)
        return sent

    def reply(self, request_id: str) -> XML | None:
        """The reply to request ``request_id`` as XML, once it has come."""
        self._collect(self._sent())
        for reply in self._replies:
            if reply.getAttribute("id") == request_id:
                self._replies.remove(reply)
                return _xml(reply)
        return None

    def queries(self) -> list[XML]:
        """The outbound queries the component sent since the last call, as XML."""
        self._collect(self._sent())
        queries, self._queries = self._queries, []
        return [_xml(query) for query in queries]

    def answer(self, query: str, payload: str = "", type: str = "result") -> None:
        """Answer an outbound query (as returned by ``queries()``) from the entity it went to.

        ``type="error"`` with an ``<error/>`` element as ``payload`` answers with an error.
        """
        [stanza] = parse_stanzas(query)
        # The server delivers a response to the stream of the name the query came from.
        self._collect(
            self.memory.receive(
                f"<iq type='{type}' id='{stanza['id']}' from='{stanza['to']}' to='{stanza['from']}'>{payload}</iq>",
                instance=stanza["from"] == self.component.instance_jid,
            )
        )
        self._collect(self._sent())

    def command(self, node: str, sender: str = TESTER) -> CommandRun:
        """A driver for one ad-hoc command session on ``node`` as ``sender`` (component/testing_commands.py)."""
        return CommandRun(self, node, sender)

    def advance(self, seconds: float) -> None:
        """Move the component's clock forward: timeouts, keepalive, and the timers handlers set on its ``clock``.

        ``request.component.clock`` is this clock, so a handler timed with
        ``callLater`` or ``task.deferLater`` runs when the test says so.
        """
        self.clock.advance(seconds)

    def expect_logged_failure(self, text: str) -> list[LogEvent]:
        """Claim the logged failures whose message or traceback holds ``text`` (one at least), so the test may pass."""
        if self.logged is None:
            raise RuntimeError("this harness watches no log: make it with the handler_harness fixture")
        return self.logged.expect(text)

    def _collect(self, stanzas: list[domish.Element]) -> None:
        for stanza in stanzas:
            if stanza.name == "message":
                self._messages.append(stanza)
            elif stanza.getAttribute("type") in ("get", "set"):
                self._queries.append(stanza)
            else:
                self._replies.append(stanza)


class XML(str):
    """XML text that equals any text meaning the same XML: attribute order, quotes and prefixes aside.

    ``harness.ask(...) == "<iq type='result' .../>"`` compares canonical forms
    (``canonical()``); the text itself is what the component wrote.
    """

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        try:
            return canonical(self) == canonical(other)
        except ElementTree.ParseError:
            return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__


def _xml(stanza: domish.Element, stanza_namespace: str = NS_COMPONENT_ACCEPT) -> XML:
    """A stanza as XML without the stream's namespace declarations, as the component wrote it."""

    def strip(element: domish.Element) -> None:
        if element.uri == stanza_namespace:
            element.uri = None
        if element.defaultUri == stanza_namespace:
            element.defaultUri = None
        for child in element.elements():
            strip(child)

    strip(stanza)
    return XML(to_xml(stanza))


@pytest.fixture
def handler_harness() -> Iterator[Callable[..., HandlerHarness]]:
    """Load handler modules or directories into an in-memory component: ``handler_harness("my_xep.py")``.

    The test fails if a failure was logged that it did not claim with ``expect_logged_failure()``.
    """
    with LoggedFailures() as logged:
        yield functools.partial(HandlerHarness, logged=logged)
