"""The delegation section's responder: the benchmark's echo, asked to be delegated (XEP-0355)."""

from component import Request, responder

NS_ECHO = "urn:example:echo"


@responder(NS_ECHO, "get", element="echo", delegated=True)
def echo(request: Request):
    return request.payload
