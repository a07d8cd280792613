"""The component's XML stream: twisted.words' ``XmlStream`` with iqresponder's parser and writer.

``ComponentStream`` changes three things:

- it parses with ``component.parser.StanzaParser``, which bounds every stanza
  and reports a stanza over a limit as a fault of that stanza; only input
  that leaves the stream unusable closes it, with the matching stream error;
- once authenticated, every ``<iq/>`` and ``<message/>`` goes straight to the
  router, with no XPath evaluation, and a stanza fault goes to the router too, to be
  answered; each with the stream's ``link`` (component/link.py), on which
  the answer is written; an exception there is logged, and the stream goes on;
- stanzas it sends as Elements are written by ``component.serializer``,
  which escapes exactly (white space in attribute values included).
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.xish import domish

from component.parser import StanzaParser, StreamFault
from component.serializer import to_xml
from component.twisted_typed import XmlStream

NS_COMPONENT_ACCEPT = "jabber:component:accept"
NS_CLIENT = "jabber:client"
"""The client stanzas' namespace: that of an Iq or message a server forwards inside another stanza."""
NS_FORWARD = "urn:xmpp:forward:0"
"""XEP-0297 stanza forwarding: how servers and the component wrap one stanza in another."""
_STANZA_NAMESPACES = (None, "", NS_COMPONENT_ACCEPT)


class ReplyLink(Protocol):
    """Where the replies to what came on a stream are written: a ``component.link.Link``, or the wrapper
    that a delegated request's reply goes through (``component.delegation.DelegatedLink``)."""

    @property
    def jid(self) -> str:
        """The name the replies come from."""

    def send(self, stanza: str) -> bool:
        """Write a reply (XML text); ``False`` when there is no stream to write it on."""


class StanzaRouter(Protocol):
    """Where an authenticated stream's Iq stanzas go (``component.router.Router``), with the link they came on."""

    def receive(self, iq: domish.Element, link: ReplyLink) -> None: ...

    def refuse(self, stanza: domish.Element, condition: str, text: str, link: ReplyLink) -> None: ...

    def receive_message(self, message: domish.Element, link: ReplyLink) -> None: ...


class ComponentStream(XmlStream):
    """An ``XmlStream`` whose stanzas, once authenticated, go to one router with the stream's ``link``."""

    log = Logger()
    router: StanzaRouter | None = None
    link: Any = None  # the Link this stream serves, set once authenticated; replies are written through it
    refused = False
    max_stanza_bytes = 2 * 1024 * 1024
    max_depth = 32
    handshake_timer: IDelayedCall  # set by component.connection when the connection is made

    def connectionMade(self) -> None:
        # Replies are small and latency matters: without TCP_NODELAY the last reply of a burst
        # can wait for a delayed ACK (about 40 ms on Linux) before it leaves.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        xmlstream.XmlStream.connectionMade(self)
        self._use_own_parser()

    def reset(self) -> None:
        xmlstream.XmlStream.reset(self)
        self._use_own_parser()

    def _use_own_parser(self) -> None:
        parser = StanzaParser(self.max_stanza_bytes, self.max_depth)
        parser.DocumentStartEvent = self.onDocumentStart
        parser.ElementEvent = self.onElement
        parser.StanzaFaultEvent = self.onStanzaFault
        parser.DocumentEndEvent = self.onDocumentEnd
        self.stream = parser

    def dataReceived(self, data: bytes) -> None:
        if self.stream is None:  # the connection is already closing
            return
        try:
            if self.rawDataInFn:
                self.rawDataInFn(data)
            self.stream.parse(data)
        except StreamFault as fault:
            self.log.warn(
                "Closing the stream: {condition} ({text}) in what the server sent",
                condition=fault.condition,
                text=fault.text,
            )
            self.stream = None
            self.sendStreamError(error.StreamError(fault.condition, text=fault.text))

    def onElement(self, element: domish.Element) -> None:
        router = self.router
        if router is not None and element.uri == NS_COMPONENT_ACCEPT and element.name in ("iq", "message"):
            try:
                if element.name == "iq":
                    router.receive(element, self.link)
                else:  # the server's advertisements (XEP-0355, XEP-0356) and bounces of what the component sent
                    router.receive_message(element, self.link)
            except Exception:  # noqa: BLE001 - one stanza's failure must not end the stream
                self.log.failure("Unexpected failure handling {stanza}", stanza=to_xml(element))
        else:
            xmlstream.XmlStream.onElement(self, element)

    def onStanzaFault(self, stanza: domish.Element, condition: str, text: str) -> None:
        """A stanza broke a limit: it is answered (or dropped) alone, and the stream goes on."""
        router = self.router
        try:
            if router is not None and stanza.uri == NS_COMPONENT_ACCEPT:
                router.refuse(stanza, condition, text, self.link)
            else:
                self.log.warn(
                    "Dropped a <{name}/> from {sender} before authentication: {text}",
                    name=stanza.name,
                    sender=stanza.getAttribute("from"),
                    text=text,
                )
        except Exception:  # noqa: BLE001 - as in onElement
            self.log.failure("Unexpected failure refusing {stanza}", stanza=to_xml(stanza))

    def send(self, obj: domish.Element | str | bytes) -> None:
        """Write a stanza; Elements in the stanza namespace go through iqresponder's exact writer.

        Text (every reply) is written straight to the transport: twisted.words' ``send``
        would only ask zope twice whether it is an Element before doing the same.
        """
        if obj.__class__ is not str:
            if not (isinstance(obj, domish.Element) and obj.uri in _STANZA_NAMESPACES):
                xmlstream.XmlStream.send(self, obj)
                return
            obj = to_xml(obj, within=NS_COMPONENT_ACCEPT)
        data = obj.encode("utf-8")
        if self.rawDataOutFn:
            self.rawDataOutFn(data)
        self.transport.write(data)
