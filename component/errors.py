"""The error values of iqresponder, and the one place they become XML.

Every failure a handler author or a caller of ``component.query`` can see is an
``XMPPError``, so one ``except XMPPError`` catches them all. ``StanzaError`` is
what a responder raises to answer with an error; ``IqError``, ``IqTimeout`` and
``NotConnected`` are how an outbound query fails.
"""

from __future__ import annotations

from twisted.words.xish import domish

NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

# RFC 6120 section 8.3.3: every defined condition and the error type it SHOULD carry.
CONDITIONS: dict[str, str] = {
    "bad-request": "modify",
    "conflict": "cancel",
    "feature-not-implemented": "cancel",
    "forbidden": "auth",
    "gone": "cancel",
    "internal-server-error": "cancel",
    "item-not-found": "cancel",
    "jid-malformed": "modify",
    "not-acceptable": "modify",
    "not-allowed": "cancel",
    "not-authorized": "auth",
    "policy-violation": "modify",
    "recipient-unavailable": "wait",
    "redirect": "modify",
    "registration-required": "auth",
    "remote-server-not-found": "cancel",
    "remote-server-timeout": "wait",
    "resource-constraint": "wait",
    "service-unavailable": "cancel",
    "subscription-required": "auth",
    "undefined-condition": "cancel",
    "unexpected-request": "wait",
}

ERROR_TYPES = frozenset({"auth", "cancel", "continue", "modify", "wait"})


class XMPPError(Exception):
    """The root of every error iqresponder raises towards handler authors."""


class StanzaError(XMPPError):
    """Raise this from a responder to answer the request with an error.

    ``condition`` is one of RFC 6120's defined conditions; ``type`` defaults to
    the one the RFC recommends for it. ``text`` is sent to the requester, so it
    must not carry anything private. ``application`` is an optional
    application-specific condition element (RFC 6120 section 8.3.2).
    """

    def __init__(
        self,
        condition: str,
        type: str | None = None,
        text: str | None = None,
        application: domish.Element | None = None,
    ) -> None:
        if condition not in CONDITIONS:
            raise ValueError(f"{condition!r} is not an RFC 6120 stanza error condition")
        if type is None:
            type = CONDITIONS[condition]
        elif type not in ERROR_TYPES:
            raise ValueError(f"{type!r} is not an RFC 6120 stanza error type")
        super().__init__(condition, type, text)
        self.condition = condition
        self.type = type
        self.text = text
        self.application = application

    def __str__(self) -> str:
        return f"{self.condition} ({self.type})" + (f": {self.text}" if self.text else "")

    @property
    def xml(self) -> str:
        """``to_element()`` serialized, computed once per error value."""
        xml: str | None = self.__dict__.get("_xml")
        if xml is None:
            xml = self.__dict__["_xml"] = self.to_element().toXml()
        return xml

    def to_element(self) -> domish.Element:
        """The ``<error/>`` child of an error reply, in the stream's namespace."""
        error = domish.Element((None, "error"))
        error["type"] = self.type
        error.addElement((NS_STANZAS, self.condition))
        if self.text:
            error.addElement((NS_STANZAS, "text"), content=self.text)
        if self.application is not None:
            error.addChild(self.application)
        return error


class IqError(XMPPError):
    """An outbound query was answered with an ``error`` stanza.

    Carries the parsed ``condition``, ``type``, ``text``, ``application``
    element and the whole ``stanza``. A malformed, legacy or unknown error
    element is reported as ``undefined-condition``.
    """

    def __init__(
        self,
        condition: str,
        type: str,
        text: str | None = None,
        application: domish.Element | None = None,
        stanza: domish.Element | None = None,
    ) -> None:
        super().__init__(condition, type, text)
        self.condition = condition
        self.type = type
        self.text = text
        self.application = application
        self.stanza = stanza

    def __str__(self) -> str:
        return f"{self.condition} ({self.type})" + (f": {self.text}" if self.text else "")

    @classmethod
    def from_stanza(cls, stanza: domish.Element) -> IqError:
        """Parse the ``<error/>`` child of ``stanza``; never raises."""
        condition, type, text, application = "undefined-condition", "cancel", None, None
        error = next((child for child in stanza.elements() if child.name == "error"), None)
        if error is not None:
            if error.getAttribute("type") in ERROR_TYPES:
                type = error["type"]
            for child in error.elements():
                if child.uri == NS_STANZAS:
                    if child.name == "text":
                        text = str(child)
                    elif child.name in CONDITIONS and condition == "undefined-condition":
                        condition = child.name
                elif application is None:
                    application = child
        return cls(condition, type, text, application, stanza)


class IqTimeout(XMPPError):
    """An outbound query got no response before its deadline."""


class NotConnected(XMPPError):
    """The component had no authenticated stream to send on, or lost it."""
