"""XEP-0199 XMPP Ping: an empty result says the component is alive."""

from component import Request, responder
from component.keepalive import Ping


@responder(Ping, "get")
def ping(request: Request) -> None:
    return None
