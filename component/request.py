"""What a responder receives: one Iq request, already validated by the router."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from component.addresses import InvalidFormat, parse_jid
from component.interfaces import IComponent

if TYPE_CHECKING:
    from component.delegation import Delegation
    from component.stream import ReplyLink

__all__ = ["InvalidFormat", "Request", "parse_jid"]


class Request:
    """One Iq get or set addressed to the component.

    ``sender`` and ``recipient`` are JIDs; ``sender`` is ``None`` only when the
    server itself sent the request without a ``from``. ``element`` is the one
    child element, as it came; ``payload`` is the same element, or an instance
    of the payload class the responder was declared with, parsed and checked
    (component/payload.py). ``stanza`` is the whole Iq; ``component`` the
    running component as handlers see it (``IComponent``: settings, queries,
    disco, clock). ``link`` is the link it came in on (component/link.py),
    where the router writes its reply; it is the framework's, not the handler's.
    """

    __slots__ = (
        "_sender",
        "component",
        "element",
        "id",
        "link",
        "payload",
        "received",
        "recipient",
        "stanza",
        "type",
    )

    def __init__(
        self,
        stanza: domish.Element,
        element: domish.Element,
        sender: JID | str | None,
        recipient: JID | None,
        component: IComponent,
        link: ReplyLink,
    ) -> None:
        self.stanza = stanza
        self.element = element
        self.payload: Any = element  # an instance, for a responder declared with a payload class
        self._sender = sender  # a JID, or a valid address not parsed yet: most responders never look
        self.recipient = recipient
        attributes = stanza.attributes
        self.type: str = attributes["type"]
        self.id: str = attributes["id"]
        self.component = component
        self.link = link
        self.received = 0.0  # perf_counter() at arrival, when metrics time the responders

    @property
    def sender(self) -> JID | None:
        """Who sent the request (``None`` only for the server itself)."""
        sender = self._sender
        if isinstance(sender, str):
            sender = self._sender = parse_jid(sender)
        return sender

    @property
    def delegation(self) -> Delegation | None:
        """How the server forwarded this request (a ``component.delegation.Delegation``), or ``None``.

        Set for a request a server delegated (XEP-0355): one of its users sent
        it to the server, or to a bare JID on it, and the server forwarded it.
        ``sender`` is that user, ``recipient`` the address it went to.
        """
        return getattr(self.link, "delegation", None)

    @property
    def namespace(self) -> str | None:
        """The payload's namespace."""
        namespace: str | None = self.element.uri
        return namespace

    def __repr__(self) -> str:
        return f"<Request {self.type} {self.element.uri} id={self.id!r} from={self.stanza.getAttribute('from')!r}>"
