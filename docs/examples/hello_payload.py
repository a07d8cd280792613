"""Hello: <hello xmlns='urn:example:hello' name='alice'/> is answered with a greeting for alice."""

from component import Payload, Request, attribute, responder, text

NS_HELLO = "urn:example:hello"


class Hello(Payload, namespace=NS_HELLO, element="hello"):
    name: str = attribute()
    greeting: str = text(default="")


@responder(Hello, "get")
def hello(request: Request) -> Hello:
    name = request.payload.name
    return Hello(name=name, greeting=f"Hello, {name}!")
