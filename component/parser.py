"""Bytes to stanzas: an expat parser that builds domish Elements and bounds each stanza.

The stream to the server carries every user's traffic, so a limit is kept per
stanza, and a stanza over it is a fault of that stanza, not of the stream:

- a stanza over ``max_stanza_bytes`` (counted in bytes as they arrive) or
  nested deeper than ``max_depth`` is read to its end without keeping its
  content, and then reported once to ``StanzaFaultEvent`` with its top-level
  element (name and attributes, no children), so that it can be answered;
- only what leaves the XML stream itself unusable raises ``StreamFault``:
  XML that is not well-formed (including invalid UTF-8 and undeclared
  prefixes), what RFC 6120 section 11.1 forbids (document type and entity
  declarations, comments, processing instructions: ``restricted-xml``), and
  one stanza, or one token between stanzas, growing past ``hard_limit_bytes``
  (well above the stanza limit, so that even a discarded stanza cannot hold
  the stream or expat's buffer forever).

Elements are built exactly as twisted.words' own expat stream builds them
(qualified names, ``defaultUri``, ``localPrefixes``, qualified attribute keys
as ``(uri, name)`` tuples), so everything that reads domish Elements reads
these. Written here rather than subclassed from ``domish.ExpatElementStream``
so that nothing depends on that class's private callbacks or on the text of
its error messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.parsers import expat

from twisted.words.xish.domish import Element

ROOT_DEPTH = 1  # the stream's root element; stanzas are its children, at depth 2
# The hard limit: four times the stanza limit, and never less than what a server can forward at
# its own limits (Prosody and ejabberd take 512 KiB from a remote server, and re-escaping can make
# that six times larger), so that lowering max_stanza_bytes never turns a stanza fault into a
# stream fault.
HARD_LIMIT_FACTOR = 4
HARD_LIMIT_FLOOR = 16 * 1024 * 1024


class StreamFault(Exception):
    """Input after which the stream cannot go on: close it with ``condition``."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


class StanzaParser:
    """Feeds bytes to expat and reports the stream's events.

    ``DocumentStartEvent(root)`` for the stream header, ``ElementEvent(stanza)``
    for each complete stanza, ``StanzaFaultEvent(stanza, condition, text)`` for
    a stanza that broke a limit (``stanza`` has its attributes but no
    children), ``DocumentEndEvent()`` for the end of the stream. ``parse``
    raises ``StreamFault`` for what must close the stream.
    """

    def __init__(self, max_stanza_bytes: int, max_depth: int, hard_limit_bytes: int | None = None) -> None:
        self.max_stanza_bytes = max_stanza_bytes
        self.max_depth = max_depth
        self.hard_limit_bytes = hard_limit_bytes or max(HARD_LIMIT_FACTOR * max_stanza_bytes, HARD_LIMIT_FLOOR)
        self.DocumentStartEvent: Callable[[Element], None] = _ignore
        self.ElementEvent: Callable[[Element], None] = _ignore
        self.StanzaFaultEvent: Callable[[Element, str, str], None] = _ignore
        self.DocumentEndEvent: Callable[[], None] = _ignore

        parser = expat.ParserCreate("UTF-8", " ")
        parser.buffer_text = True
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartNamespaceDeclHandler = self._start_namespace
        parser.EndNamespaceDeclHandler = self._end_namespace
        parser.StartDoctypeDeclHandler = _refuse("a document type declaration")
        parser.EntityDeclHandler = _refuse("an entity declaration")
        parser.CommentHandler = _refuse("an XML comment")
        parser.ProcessingInstructionHandler = _refuse("a processing instruction")
        self.parser = parser
        self._build()

        self.depth = 0
        self.current: Element | None = None  # the element being built, inside a stanza
        self.stanza: Element | None = None  # the stanza being read (its top-level element)
        self.fault: tuple[str, str] | None = None  # why the stanza being read is discarded
        self.mark = 0  # byte offset where the current stanza, or the gap before the next, began
        self.fed = 0  # bytes fed so far
        self.default_namespaces: list[str | None] = [""]
        self.prefixes: dict[str, str | None] = {}

    def parse(self, data: bytes) -> None:
        """Parse the next bytes of the stream; raises ``StreamFault``."""
        self.fed += len(data)
        try:
            self.parser.Parse(data)
        except expat.ExpatError as e:
            raise StreamFault("not-well-formed", str(e)) from None
        pending = self.fed - self.mark
        if pending > self.max_stanza_bytes:
            if pending > self.hard_limit_bytes:
                raise StreamFault("policy-violation", f"one stanza or token grew past {self.hard_limit_bytes} bytes")
            if self.depth > ROOT_DEPTH and self.fault is None:
                self._discard("policy-violation", f"stanza larger than {self.max_stanza_bytes} bytes")

    # Building stanzas: the common path.

    def _build(self) -> None:
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._text

    def _start(self, name: str, attributes: dict[Any, str]) -> None:  # str keys, then (uri, name) ones
        self.depth += 1
        if self.depth > ROOT_DEPTH + self.max_depth:
            self._discard("policy-violation", f"elements nested deeper than {self.max_depth} levels")
            return
        uri, space, local = name.rpartition(" ")
        if attributes and " " in "".join(attributes):  # qualified attributes become (uri, name) keys
            for key in [key for key in attributes if " " in key]:
                attribute_uri, _, attribute_name = key.rpartition(" ")
                attributes[(attribute_uri, attribute_name)] = attributes.pop(key)
        element = Element((uri, local) if space else ("", name), self.default_namespaces[-1], attributes, self.prefixes)
        if self.prefixes:  # an empty one is not kept by the Element, so it can serve again
            self.prefixes = {}
        parent = self.current
        if parent is not None:
            parent.children.append(element)
            element.parent = parent
            self.current = element
        elif self.depth == ROOT_DEPTH:
            self.DocumentStartEvent(element)
            self.mark = self.parser.CurrentByteIndex
        else:
            self.stanza = self.current = element
            self.mark = self.parser.CurrentByteIndex

    def _end(self, name: str) -> None:
        self.depth -= 1
        element = self.current
        if element is None:
            self.DocumentEndEvent()
            return
        self.current = element.parent
        if self.current is None:
            self.stanza = None
            size = self.parser.CurrentByteIndex - self.mark
            self.mark = self.parser.CurrentByteIndex
            if size > self.max_stanza_bytes:
                element.children = []
                self.StanzaFaultEvent(element, "policy-violation", f"stanza larger than {self.max_stanza_bytes} bytes")
            else:
                self.ElementEvent(element)

    def _text(self, data: str) -> None:
        if self.current is not None:
            self.current.addContent(data)
        else:  # white space between stanzas (a keepalive) starts no stanza
            self.mark = self.parser.CurrentByteIndex

    # Discarding the rest of a faulty stanza: count depth, keep nothing.

    def _discard(self, condition: str, text: str) -> None:
        stanza = self.stanza
        assert stanza is not None, "only a stanza being read is discarded"
        self.fault = (condition, text)
        stanza.children = []
        self.current = None
        self.parser.StartElementHandler = self._start_discarded
        self.parser.EndElementHandler = self._end_discarded
        self.parser.CharacterDataHandler = None

    def _start_discarded(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        if self.prefixes:
            self.prefixes = {}

    def _end_discarded(self, name: str) -> None:
        self.depth -= 1
        if self.depth == ROOT_DEPTH:
            stanza, fault = self.stanza, self.fault
            assert stanza is not None and fault is not None, "set together by _discard"
            condition, text = fault
            self.stanza = self.fault = None
            self.mark = self.parser.CurrentByteIndex
            self._build()
            self.StanzaFaultEvent(stanza, condition, text)

    # Namespaces, in both modes, so that the stack stays true to the document.

    def _start_namespace(self, prefix: str | None, uri: str | None) -> None:
        if prefix is None:
            self.default_namespaces.append(uri)
        else:
            self.prefixes[prefix] = uri

    def _end_namespace(self, prefix: str | None) -> None:
        if prefix is None:
            self.default_namespaces.pop()


def _refuse(what: str) -> Callable[..., None]:
    def refuse(*args: object) -> None:
        raise StreamFault("restricted-xml", what)

    return refuse


def _ignore(*args: object) -> None:
    pass
