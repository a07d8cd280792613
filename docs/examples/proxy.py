"""Asking another entity: a responder that answers with what a backend answers it (docs/howto/handlers.md)."""

from component import IqError, IqTimeout, NotConnected, StanzaError, responder


@responder("urn:example:proxy", "get")
async def proxy(request):
    try:
        reply = await request.component.query("backend.example.org", "urn:example:data", timeout=5)
    except IqTimeout:  # no answer in 5 s
        raise StanzaError("remote-server-timeout", text="The backend did not answer") from None
    except IqError as e:  # e.condition, e.type, e.text, e.application, e.stanza
        raise StanzaError("service-unavailable", text=f"The backend answered {e.condition}") from None
    except NotConnected:  # the stream to the server is down
        raise StanzaError("remote-server-timeout", text="Try again later") from None
    return next(reply.elements())
