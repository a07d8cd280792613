"""XEP-0199 XMPP Ping: an empty result says the component is alive."""

from component import Payload, Request, responder


class Ping(Payload, namespace="urn:xmpp:ping", element="ping"):
    """Nothing to read."""


@responder(Ping, "get")
def ping(request: Request) -> None:
    return None
