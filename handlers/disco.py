"""XEP-0030 Service Discovery: what this component is and which features it serves.

disco#info lists the configured identities and, as features, disco#info,
disco#items and every namespace a responder declared, sorted and without
duplicates, so the advertised features cannot drift from what is served.
"""

from twisted.words.xish import domish

from component import Request, StanzaError, responder

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


@responder(NS_DISCO_INFO, "get", element="query", disco=False)
def disco_info(request: Request) -> domish.Element:
    if request.payload.getAttribute("node"):
        raise StanzaError("item-not-found", text="This entity has no nodes")
    component = request.component
    query = domish.Element((NS_DISCO_INFO, "query"))
    for identity in sorted(set(component.settings.identities), key=lambda i: (i.category, i.type, i.name or "")):
        element = query.addElement("identity")
        element["category"] = identity.category
        element["type"] = identity.type
        if identity.name:
            element["name"] = identity.name
    for feature in sorted({NS_DISCO_INFO, NS_DISCO_ITEMS, *component.features}):
        query.addElement("feature")["var"] = feature
    return query


@responder(NS_DISCO_ITEMS, "get", element="query", disco=False)
def disco_items(request: Request) -> domish.Element:
    if request.payload.getAttribute("node"):
        raise StanzaError("item-not-found", text="This entity has no nodes")
    return domish.Element((NS_DISCO_ITEMS, "query"))
