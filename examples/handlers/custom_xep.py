"""A custom protocol in one file: a tiny key/value store in the ``custom-xep`` namespace.

set:  <query xmlns='custom-xep'><item key='colour'>blue</item></query>  -> empty result
get:  <query xmlns='custom-xep'><item key='colour'/></query>            -> the stored item
"""

from twisted.words.xish import domish

from component import Request, StanzaError, responder

NS_CUSTOM = "custom-xep"

_store: dict[str, str] = {}


def _item(request: Request) -> domish.Element:
    item = next(request.payload.elements(NS_CUSTOM, "item"), None)
    if item is None or not item.getAttribute("key"):
        raise StanzaError("bad-request", text="Expected <item key='...'/>")
    return item


@responder(NS_CUSTOM, "set", element="query")
def store(request: Request) -> None:
    item = _item(request)
    _store[item["key"]] = str(item)


@responder(NS_CUSTOM, "get", element="query")
def fetch(request: Request) -> domish.Element:
    key = _item(request)["key"]
    if key not in _store:
        raise StanzaError("item-not-found", text=f"Nothing is stored under {key!r}")
    query = domish.Element((NS_CUSTOM, "query"))
    query.addElement("item", content=_store[key])["key"] = key
    return query
