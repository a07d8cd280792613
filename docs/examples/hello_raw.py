"""Hello: <hello xmlns='urn:example:hello' name='alice'/> is answered with a greeting for alice."""

from twisted.words.xish import domish

from component import Request, StanzaError, responder

NS_HELLO = "urn:example:hello"


@responder(NS_HELLO, "get", "hello")
def hello(request: Request) -> domish.Element:
    name = request.element.getAttribute("name")
    if name is None:
        raise StanzaError("bad-request", text="Say whom to greet: <hello name='...'/>")
    reply = domish.Element((NS_HELLO, "hello"))
    reply["name"] = name
    reply.addContent(f"Hello, {name}!")
    return reply
