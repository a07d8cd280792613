"""XEP-0199 XMPP Ping: an empty result says the component is alive."""

from component import Request, responder

NS_PING = "urn:xmpp:ping"


@responder(NS_PING, "get", element="ping")
def ping(request: Request) -> None:
    return None
