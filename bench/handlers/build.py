"""The same custom responder written twice, with raw domish and with payload classes, for `make bench`.

Each reads an attribute and the text of the request's payload, and builds a reply from them:
``<build xmlns=NS n='7'>text</build>`` is answered with ``<built xmlns=NS n='8'>text</built>``.
"""

from twisted.words.xish import domish

from component import Payload, Request, StanzaError, attribute, responder, text

NS_RAW = "urn:example:build-raw"
NS_TYPED = "urn:example:build-typed"


@responder(NS_RAW, "get", element="build")
def build_raw(request: Request) -> domish.Element:
    try:
        number = int(request.payload.getAttribute("n", "0"))
    except ValueError:
        raise StanzaError("bad-request", text="n must be an integer") from None
    built = domish.Element((NS_RAW, "built"))
    built["n"] = str(number + 1)
    built.addContent(str(request.payload))
    return built


class Build(Payload, namespace=NS_TYPED, element="build"):
    n: int = attribute(default=0)
    value: str = text(default="")


class Built(Payload, namespace=NS_TYPED, element="built"):
    n: int = attribute()
    value: str = text(default="")


@responder(Build, "get")
def build_typed(request: Request) -> Built:
    return Built(n=request.payload.n + 1, value=request.payload.value)
