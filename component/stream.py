"""Bytes in: the XML stream of the component, with the limits a stream from a stranger needs.

``ComponentStream`` is twisted.words' ``XmlStream`` with three changes:

- once authenticated, every ``<iq/>`` goes straight to one callable (the
  router), with no XPath evaluation, and an exception there is logged, never
  allowed to break the stream;
- the parser refuses what RFC 6120 section 11.1 forbids (DTDs and so entity
  declarations, comments, processing instructions: ``restricted-xml``) and
  what would let one peer grow our memory (a stanza over ``max_stanza_bytes``
  or nested deeper than ``max_depth``: ``policy-violation``);
- a parse error closes the stream with the matching stream error
  (``not-well-formed`` for malformed XML, undeclared prefixes and invalid
  UTF-8) instead of just dropping the connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from twisted.logger import Logger
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.xish import domish

NS_COMPONENT_ACCEPT = "jabber:component:accept"


# domish writes namespace names into xmlns='...' without escaping them, so a stranger's
# namespace holding one of these would make every reply that echoes it malformed XML (and the
# server would close our stream). They are kept escaped from the moment they are parsed; a
# responder cannot be registered for such a namespace (see registry.responder).
_UNSAFE = re.compile(r"[&<>'\"]")


def _escape_uri(uri: str) -> str:
    return domish.escapeToXml(uri, isattrib=1)


def _escape_namespace_of(expat_name: str) -> str:
    """Escape the namespace part of expat's ``"namespace localname"``."""
    uri, space, local = expat_name.rpartition(" ")
    return f"{_escape_uri(uri)}{space}{local}" if space and _UNSAFE.search(uri) else expat_name


class StreamFault(domish.ParserError):
    """Input that must close the stream with ``condition``."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


class LimitedElementStream(domish.ExpatElementStream):
    """domish's expat stream, refusing DTDs, comments and PIs, and bounding size and depth."""

    def __init__(self, max_stanza_bytes: int, max_depth: int) -> None:
        super().__init__()
        self.maxStanzaSize = max_stanza_bytes
        self.max_depth = max_depth + 1  # the stream's root element is one level more
        self.depth = 0
        self.unsafe_namespaces = False  # set once a declaration brings a namespace that needs escaping
        self.parser.StartDoctypeDeclHandler = self._refuse_doctype
        self.parser.EntityDeclHandler = self._refuse_entity
        self.parser.CommentHandler = self._refuse_comment
        self.parser.ProcessingInstructionHandler = self._refuse_processing_instruction

    def parse(self, buffer: bytes) -> None:
        try:
            super().parse(buffer)
        except StreamFault:
            raise
        except domish.ParserError as e:
            if str(e) in ("Maximum stanza size exceeded", "Maximum element count exceeded"):
                raise StreamFault("policy-violation", f"stanza larger than {self.maxStanzaSize} bytes") from None
            raise StreamFault("not-well-formed", str(e)) from None

    def _onStartElement(self, name, attrs):
        self.depth += 1
        if self.depth > self.max_depth:
            raise StreamFault("policy-violation", f"elements nested deeper than {self.max_depth - 1} levels")
        if self.unsafe_namespaces:  # rare: only after such a declaration, so the common path pays nothing
            name = _escape_namespace_of(name)
            attrs = {(_escape_namespace_of(key) if " " in key else key): value for key, value in attrs.items()}
        super()._onStartElement(name, attrs)

    def _onStartNamespace(self, prefix, uri):
        # Expat reports every namespace through a declaration before the element that uses it.
        if uri and _UNSAFE.search(uri):
            self.unsafe_namespaces = True
            uri = _escape_uri(uri)
        super()._onStartNamespace(prefix, uri)

    def _onEndElement(self, name):
        self.depth -= 1
        super()._onEndElement(name)

    def _refuse_doctype(self, *args):
        raise StreamFault("restricted-xml", "a document type declaration")

    def _refuse_entity(self, *args):
        raise StreamFault("restricted-xml", "an entity declaration")

    def _refuse_comment(self, *args):
        raise StreamFault("restricted-xml", "an XML comment")

    def _refuse_processing_instruction(self, *args):
        raise StreamFault("restricted-xml", "a processing instruction")


class ComponentStream(xmlstream.XmlStream):
    """An ``XmlStream`` whose stanzas, once authenticated, go to one callable."""

    log = Logger()
    route_iq: Callable[[domish.Element], None] | None = None
    refused = False
    max_stanza_bytes = 256 * 1024
    max_depth = 32

    def connectionMade(self) -> None:
        # Replies are small and latency matters: without TCP_NODELAY the last reply of a burst
        # can wait for a delayed ACK (about 40 ms on Linux) before it leaves.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        xmlstream.XmlStream.connectionMade(self)

    def _initializeStream(self) -> None:
        xmlstream.XmlStream._initializeStream(self)
        stream = LimitedElementStream(self.max_stanza_bytes, self.max_depth)
        stream.DocumentStartEvent = self.onDocumentStart
        stream.ElementEvent = self.onElement
        stream.DocumentEndEvent = self.onDocumentEnd
        self.stream = stream

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
        if self.route_iq is not None and element.name == "iq" and element.uri == NS_COMPONENT_ACCEPT:
            try:
                self.route_iq(element)
            except Exception:  # noqa: BLE001 - one stanza's failure must not end the stream
                self.log.failure("Unexpected failure handling {stanza}", stanza=element.toXml())
        else:
            xmlstream.XmlStream.onElement(self, element)
