"""A custom protocol in one file: a tiny key/value store in the ``custom-xep`` namespace.

set:  <query xmlns='custom-xep'><item key='colour'>blue</item></query>  -> empty result
get:  <query xmlns='custom-xep'><item key='colour'/></query>            -> the stored item
"""

from component import Payload, Request, StanzaError, attribute, child, responder, text

NS_CUSTOM = "custom-xep"


class Item(Payload, namespace=NS_CUSTOM, element="item"):
    key: str = attribute()
    value: str = text(default="")


class Query(Payload, namespace=NS_CUSTOM, element="query"):
    item: Item = child(Item)


_store: dict[str, str] = {}


@responder(Query, "set")
def store(request: Request) -> None:
    _store[request.payload.item.key] = request.payload.item.value


@responder(Query, "get")
def fetch(request: Request) -> Query:
    key = request.payload.item.key
    if key not in _store:
        raise StanzaError("item-not-found", text=f"Nothing is stored under {key!r}")
    return Query(item=Item(key=key, value=_store[key]))
