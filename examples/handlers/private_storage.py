"""Private XML storage (XEP-0049) for the server's users, answered by the component through delegation (XEP-0355).

A client keeps small private documents on its own account (bookmarks,
preferences), each under its own namespace, and sends the request to its own
account (no ``to``, or its bare JID):

set:  <query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'><nick>Juliet</nick></prefs></query>
get:  <query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query>  -> the stored <prefs/>

The server, configured to delegate ``jabber:iq:private`` to the component,
forwards these requests, and the documents live in the component's store:
durable, and shared by every instance of the component. Each user may keep
``MAX_DOCUMENTS`` documents of ``MAX_DOCUMENT_CHARS`` each; a request names one
element (XEP-0049 allows several; this service answers ``bad-request``).
"""

from twisted.words.xish import domish

from component import Request, StanzaError, responder, serialized

NS_PRIVATE = "jabber:iq:private"
MAX_DOCUMENT_CHARS = 64 * 1024
"""A user's document under one namespace may be this large, serialized."""
MAX_DOCUMENTS = 100
"""A user may keep this many documents (namespaces): the store's growth is bounded per user."""


@responder(NS_PRIVATE, "set", "query", delegated=True)
async def store(request: Request) -> None:
    owner, document = _owner_and_document(request)
    text = serialized(document)
    if len(text) > MAX_DOCUMENT_CHARS:
        raise StanzaError("not-acceptable", text=f"A private document may have at most {MAX_DOCUMENT_CHARS} characters")
    store, key = request.component.store, _key(owner, document)
    if await store.get(key) is None and len(await store.keys(f"{owner}\n", limit=MAX_DOCUMENTS)) >= MAX_DOCUMENTS:
        raise StanzaError("resource-constraint", "cancel", text=f"At most {MAX_DOCUMENTS} private documents per user")
    await store.set(key, str(text))


@responder(NS_PRIVATE, "get", "query", delegated=True)
async def fetch(request: Request) -> domish.SerializedXML:
    owner, document = _owner_and_document(request)
    stored = await request.component.store.get(_key(owner, document))
    # Nothing stored: the element asked for comes back empty (XEP-0049 section 3).
    return domish.SerializedXML(f"<query xmlns='{NS_PRIVATE}'>{stored or serialized(_empty(document))}</query>")


def _owner_and_document(request: Request) -> tuple[str, domish.Element]:
    """The user whose storage this is, and the one namespaced element of the request; or the error it deserves."""
    delegation = request.delegation
    if delegation is None:
        raise StanzaError("service-unavailable", text="Private storage is kept by your own server")
    owner = request.sender.userhost()
    if delegation.to.userhost() != owner:  # another user's account, or the server itself
        raise StanzaError("forbidden", text="Only your own private storage can be read or written")
    children = list(request.element.elements())
    if len(children) != 1:
        raise StanzaError("bad-request", text="Name exactly one element, in its own namespace")
    document = children[0]
    if not document.uri or document.uri.startswith("jabber:"):
        raise StanzaError("not-acceptable", text="The jabber: namespaces cannot be stored")
    return owner, document


def _key(owner: str, document: domish.Element) -> str:
    return f"{owner}\n{document.uri}\n{document.name}"


def _empty(document: domish.Element) -> domish.Element:
    return domish.Element((document.uri, document.name))
