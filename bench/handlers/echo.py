"""The benchmark's custom responder: answers a get with the request's own payload."""

from component import Request, responder

NS_ECHO = "urn:example:echo"


@responder(NS_ECHO, "get", element="echo")
def echo(request: Request):
    return request.payload
