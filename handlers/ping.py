"""XEP-0199 XMPP Ping: an empty result says the component is alive."""

from component import Payload, Request, responder

NS_PING = "urn:xmpp:ping"


class Ping(Payload, namespace=NS_PING, element="ping"):
    """``<ping xmlns='urn:xmpp:ping'/>``: nothing to read."""


@responder(Ping, "get")
def ping(request: Request) -> None:
    return None
