"""A custom protocol in one file: a small key/value service in the ``custom-xep`` namespace.

set:  <query xmlns='custom-xep'><item key='colour'>blue</item></query>  -> empty result
get:  <query xmlns='custom-xep'><item key='colour'/></query>            -> the stored item
set:  <count xmlns='custom-xep' key='visits'/>                          -> <count key='visits' value='1'/>, 2, ...

Values live in the component's store, so they outlive a restart and every
instance sharing the store sees the same ones.
"""

from component import Payload, Request, StanzaError, attribute, child, responder, text

NS_CUSTOM = "custom-xep"


class Item(Payload, namespace=NS_CUSTOM, element="item"):
    key: str = attribute()
    value: str = text(default="")


class Query(Payload, namespace=NS_CUSTOM, element="query"):
    item: Item = child(Item)


class Count(Payload, namespace=NS_CUSTOM, element="count"):
    key: str = attribute()
    value: int | None = attribute(default=None)


@responder(Query, "set")
async def store(request: Request) -> None:
    await request.component.store.set(f"item/{request.payload.item.key}", request.payload.item.value)


@responder(Query, "get")
async def fetch(request: Request) -> Query:
    key = request.payload.item.key
    value = await request.component.store.get(f"item/{key}")
    if value is None:
        raise StanzaError("item-not-found", text=f"Nothing is stored under {key!r}")
    return Query(item=Item(key=key, value=value))


@responder(Count, "set")
async def count(request: Request) -> Count:
    store, name = request.component.store, f"count/{request.payload.key}"
    while True:  # another instance may be counting at the same moment: retry until ours is the write that lands
        current = await store.get(name)
        if await store.compare_and_set(name, current, (current or 0) + 1):
            return Count(key=request.payload.key, value=(current or 0) + 1)
