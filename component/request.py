"""What a responder receives: one Iq request, already validated by the router."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from twisted.words.protocols.jabber.jid import JID, InvalidFormat
from twisted.words.xish import domish

__all__ = ["InvalidFormat", "Request", "parse_jid"]


@lru_cache(maxsize=4096)
def parse_jid(text: str) -> JID:
    """Parse and normalise a JID; a bounded cache keeps stringprep off the hot path.

    Raises ``InvalidFormat`` for anything that is not a JID (Twisted's parser
    lets some malformed input escape as ``IndexError`` or ``UnicodeError``).
    Unlike Twisted's ``internJID`` the cache cannot grow without bound when
    senders invent addresses.
    """
    if not text:
        raise InvalidFormat("an empty JID")
    try:
        return JID(text)
    except InvalidFormat:
        raise
    except (IndexError, UnicodeError, ValueError) as e:
        raise InvalidFormat(f"malformed JID {text!r}: {e}") from None


class Request:
    """One Iq get or set addressed to the component.

    ``sender`` and ``recipient`` are JIDs; ``sender`` is ``None`` only when the
    server itself sent the request without a ``from``. ``payload`` is the one
    child element; ``stanza`` the whole Iq; ``component`` the running
    component, for outbound queries and settings.
    """

    __slots__ = ("component", "id", "payload", "received", "recipient", "sender", "stanza", "type")

    def __init__(
        self,
        stanza: domish.Element,
        payload: domish.Element,
        sender: JID | None,
        recipient: JID | None,
        component: Any,
    ) -> None:
        self.stanza = stanza
        self.payload = payload
        self.sender = sender
        self.recipient = recipient
        self.type: str = stanza["type"]
        self.id: str = stanza["id"]
        self.component = component
        self.received = 0.0  # perf_counter() at arrival, when metrics time the responders

    @property
    def namespace(self) -> str | None:
        """The payload's namespace."""
        return self.payload.uri

    def __repr__(self) -> str:
        return f"<Request {self.type} {self.payload.uri} id={self.id!r} from={self.stanza.getAttribute('from')!r}>"
