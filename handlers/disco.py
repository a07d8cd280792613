"""XEP-0030 Service Discovery: disco#info and disco#items for every address of the component.

The answers are the component's (``component.discovery``): configured
identities, items and extended information, every namespace a responder
serves, and whatever handler modules publish or mount.
"""

from component import Request, responder
from component.discovery import Answer, InfoQuery, ItemsQuery


@responder(InfoQuery, "get")
def disco_info(request: Request) -> Answer:
    return request.component.disco.answer_info(request, request.payload.node)


@responder(ItemsQuery, "get")
def disco_items(request: Request) -> Answer:
    return request.component.disco.answer_items(request, request.payload.node)
