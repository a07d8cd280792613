"""Service discovery (XEP-0030, with XEP-0128 extended information): what the component publishes.

Answers come from configuration (identities, items, extended-information
forms) and from handler modules, which add to them or mount nodes, at four
levels resolved from the most specific to the least, as slixmpp does:

1. a JID and a node,
2. a JID (a provider that answers every node of that JID),
3. a node (at every JID),
4. the default (every JID the component serves).

The default root answer lists the configured identities and, as features,
every namespace a responder declared: it cannot drift from what is served.
Static answers are serialized once and rebuilt only after a registration
changes them. A provider function answers per request; if it raises or times
out, that one query gets ``internal-server-error`` and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.words.xish import domish

from component.dataforms import NS_DATA, Form
from component.errors import StanzaError
from component.outcome import settle, stanza_error
from component.payload import Payload, attribute
from component.request import InvalidFormat, Request, parse_jid

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


class InfoQuery(Payload, namespace=NS_DISCO_INFO, element="query"):
    """A disco#info request: for the entity itself, or for one of its nodes."""

    node: str | None = attribute(default=None)


class ItemsQuery(Payload, namespace=NS_DISCO_ITEMS, element="query"):
    """A disco#items request: for the entity itself, or for one of its nodes."""

    node: str | None = attribute(default=None)


_EVERY_NODE = "\0every node"  # a provider key that no real node attribute can equal


@dataclass(frozen=True)
class Identity:
    """An XEP-0030 identity."""

    category: str
    type: str
    name: str | None = None
    lang: str | None = None

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.category, self.type, self.lang or "", self.name or "")


@dataclass(frozen=True)
class Item:
    """An XEP-0030 item: an entity (and optionally one of its nodes) this entity points to."""

    jid: str
    node: str | None = None
    name: str | None = None

    def sort_key(self) -> tuple[str, str, str]:
        return (self.jid, self.node or "", self.name or "")


@dataclass(frozen=True)
class DiscoInfo:
    """A disco#info answer: identities, features and XEP-0128 forms (and the node it is for)."""

    identities: tuple[Identity, ...] = ()
    features: tuple[str, ...] = ()
    forms: tuple[Form, ...] = ()
    node: str | None = None

    def normalized(self) -> DiscoInfo:
        """Without duplicates, sorted, one form per FORM_TYPE: stable, and valid for XEP-0115 hashing."""
        forms = {form.form_type: form for form in self.forms}
        return DiscoInfo(
            tuple(sorted(set(self.identities), key=Identity.sort_key)),
            tuple(sorted(set(self.features))),
            tuple(forms[form_type] for form_type in sorted(forms, key=lambda form_type: form_type or "")),
            self.node,
        )


InfoProvider = Callable[[Request], Any]
"""Takes the request; returns a ``DiscoInfo``, or a Deferred or coroutine of one."""
ItemsProvider = Callable[[Request], Any]
"""Takes the request; returns an iterable of ``Item``, or a Deferred or coroutine of one."""


Answer = domish.SerializedXML | domish.Element | Deferred[domish.Element]
"""A disco answer's payload: a static one serialized once, or a provider's, now or later."""


@dataclass
class _Static:
    identities: set[Identity] = field(default_factory=set)
    features: set[str] = field(default_factory=set)
    forms: dict[str | None, Form] = field(default_factory=dict)  # by FORM_TYPE
    items: dict[tuple[str, str | None], Item] = field(default_factory=dict)


class Discovery:
    """The component's disco#info and disco#items answers, and the API modules publish through.

    ``jid=None`` means every JID the component serves; ``node=None`` means the
    entity itself (no node). Registering changes the answers at once.
    """

    def __init__(
        self,
        features: Callable[[], Iterable[str]],
        identities: Iterable[Identity],
        clock: IReactorTime,
        provider_timeout: float = 10.0,
    ) -> None:
        self._registry_features = features
        self._default_identities = tuple(identities)
        self._clock = clock
        self.provider_timeout = provider_timeout
        self._static: dict[tuple[str | None, str | None], _Static] = {}
        # Keyed by (JID, node), either _EVERY_NODE or looked up with a request's node, which may be None.
        self._info_providers: dict[tuple[str | None, str | None], InfoProvider] = {}
        self._items_providers: dict[tuple[str | None, str | None], ItemsProvider] = {}
        self._cache: dict[tuple[str, str | None, str | None], domish.SerializedXML] = {}
        self._static[(None, None)] = _Static()  # the default root answer always exists

    # Publishing (for handler modules and configuration).

    def add_identity(self, identity: Identity, *, jid: str | None = None, node: str | None = None) -> None:
        self._level(jid, node).identities.add(identity)

    def add_feature(self, var: str, *, jid: str | None = None, node: str | None = None) -> None:
        self._level(jid, node).features.add(var)

    def add_form(self, form: Form, *, jid: str | None = None, node: str | None = None) -> None:
        """Add XEP-0128 extended information; a second form of the same FORM_TYPE replaces the first."""
        self._level(jid, node).forms[form.form_type] = form

    def add_item(self, item: Item, *, jid: str | None = None, node: str | None = None) -> None:
        """List ``item`` in the disco#items answer of (``jid``, ``node``)."""
        self._level(jid, node).items[(item.jid, item.node)] = item

    def mount(
        self,
        node: str,
        identities: Iterable[Identity] = (),
        features: Iterable[str] = (),
        items: Iterable[Item] = (),
        forms: Iterable[Form] = (),
        *,
        jid: str | None = None,
    ) -> None:
        """Mount a static node: its disco#info and disco#items answers."""
        level = self._level(jid, node)
        level.identities.update(identities)
        level.features.update(features)
        level.forms.update({form.form_type: form for form in forms})
        level.items.update({(item.jid, item.node): item for item in items})

    def provide(
        self,
        info: InfoProvider | None = None,
        items: ItemsProvider | None = None,
        *,
        jid: str | None = None,
        node: str | None = None,
    ) -> None:
        """Answer with functions of the request: at ``node`` of every JID, or at every node of ``jid``.

        With both ``jid`` and ``node``, only that node of that JID. With neither,
        the provider replaces the default answer everywhere.
        """
        key = (_normal_jid(jid), _EVERY_NODE if node is None else node)
        if info is not None:
            self._info_providers[key] = info
        if items is not None:
            self._items_providers[key] = items
        self._cache.clear()

    def invalidate(self) -> None:
        """Forget serialized answers; call after responders change."""
        self._cache.clear()

    def _level(self, jid: str | None, node: str | None) -> _Static:
        self._cache.clear()
        return self._static.setdefault((_normal_jid(jid), node), _Static())

    # Answering.

    def answer_info(self, request: Request, node: str | None) -> Answer:
        """The payload of the reply to a disco#info get for ``node`` (``None``: the entity itself)."""
        return self._answer("info", request, node, self._info_providers, self._info_element)

    def answer_items(self, request: Request, node: str | None) -> Answer:
        """The payload of the reply to a disco#items get for ``node`` (``None``: the entity itself)."""
        return self._answer("items", request, node, self._items_providers, self._items_element)

    def _answer(
        self,
        kind: str,
        request: Request,
        node: str | None,
        providers: Mapping[tuple[str | None, str | None], Callable[[Request], Any]],
        static_element: Callable[[_Static, str | None], domish.Element],
    ) -> Answer:
        jid = request.recipient.full() if request.recipient is not None else None
        for jid_key, node_key in ((jid, node), (jid, _EVERY_NODE), (None, node), (None, _EVERY_NODE)):
            provider = providers.get((jid_key, node_key))
            if provider is not None:
                return self._call(kind, provider, request, node)
            # The static root of every JID is the default level: a default provider overrides it.
            is_default_root = jid_key is None and node_key is None
            if node_key is not _EVERY_NODE and not is_default_root and (jid_key, node_key) in self._static:
                return self._cached(kind, jid_key, node_key, static_element)
        if node is None:
            return self._cached(kind, None, None, static_element)
        raise StanzaError("item-not-found", text=f"No node {node!r} here")

    def _cached(
        self,
        kind: str,
        jid: str | None,
        node: str | None,
        static_element: Callable[[_Static, str | None], domish.Element],
    ) -> domish.SerializedXML:
        key = (kind, jid, node)
        xml = self._cache.get(key)
        if xml is None:
            xml = self._cache[key] = domish.SerializedXML(static_element(self._static[(jid, node)], node).toXml())
        return xml

    def _info_element(self, level: _Static, node: str | None) -> domish.Element:
        features = set(level.features)
        identities = level.identities
        if node is None:  # every address runs every responder, so every root lists their features
            features.update(self._registry_features())
            identities = identities or set(self._default_identities)
        return info_element(DiscoInfo(tuple(identities), tuple(features), tuple(level.forms.values())), node)

    def _items_element(self, level: _Static, node: str | None) -> domish.Element:
        return items_element(level.items.values(), node)

    def _call(
        self, kind: str, provider: Callable[[Request], Any], request: Request, node: str | None
    ) -> domish.Element | Deferred[domish.Element]:
        """Run a provider as the router runs a responder (component/outcome.py); its failure is one query's error."""

        def build(value: Any) -> domish.Element:
            return info_element(_as_info(value), node) if kind == "info" else items_element(value, node)

        def describe() -> dict[str, Any]:
            name = getattr(provider, "__qualname__", repr(provider))
            return {"what": f"Disco {kind} provider {name}", "request": f"node {node!r} of {request!r}"}

        def answer_failure(failure: Failure) -> NoReturn:
            raise stanza_error(failure, describe, self.provider_timeout)

        try:
            result = settle(provider(request), self._clock, self.provider_timeout)
            if not isinstance(result, Deferred):
                return build(result)
        except Exception:  # noqa: BLE001 - one provider's failure is one query's error
            answer_failure(Failure())
        return result.addCallback(build).addErrback(answer_failure)


def _as_info(value: Any) -> DiscoInfo:
    if not isinstance(value, DiscoInfo):
        raise TypeError(f"a disco#info provider must return a DiscoInfo, not {type(value).__name__}")
    return value


def _normal_jid(jid: str | None) -> str | None:
    return None if jid is None else parse_jid(jid).full()


def info_element(info: DiscoInfo, node: str | None = None) -> domish.Element:
    """``<query xmlns='...disco#info'/>`` for ``info``, normalized; echoes ``node``."""
    info = info.normalized()
    query = domish.Element((NS_DISCO_INFO, "query"))
    if node is not None:
        query["node"] = node
    for identity in info.identities:
        element = query.addElement("identity")
        element["category"] = identity.category
        element["type"] = identity.type
        if identity.name is not None:
            element["name"] = identity.name
        if identity.lang is not None:
            element[("http://www.w3.org/XML/1998/namespace", "lang")] = identity.lang
    for feature in info.features:
        query.addElement("feature")["var"] = feature
    for form in info.forms:
        query.addChild(form.to_element("result"))  # XEP-0128: extended information is a result form
    return query


def items_element(items: Iterable[Item], node: str | None = None) -> domish.Element:
    """``<query xmlns='...disco#items'/>`` listing ``items`` once each, sorted; echoes ``node``."""
    query = domish.Element((NS_DISCO_ITEMS, "query"))
    if node is not None:
        query["node"] = node
    unique = {(item.jid, item.node): item for item in items}
    for item in sorted(unique.values(), key=Item.sort_key):
        element = query.addElement("item")
        element["jid"] = item.jid
        if item.node is not None:
            element["node"] = item.node
        if item.name is not None:
            element["name"] = item.name
    return query


def parse_info(query: domish.Element) -> DiscoInfo:
    """A disco#info result's ``<query/>`` as a ``DiscoInfo`` (as received: not normalized)."""
    identities = tuple(
        Identity(
            element.getAttribute("category", ""),
            element.getAttribute("type", ""),
            element.getAttribute("name"),
            element.getAttribute(("http://www.w3.org/XML/1998/namespace", "lang")),
        )
        for element in query.elements(NS_DISCO_INFO, "identity")
    )
    features = tuple(element.getAttribute("var", "") for element in query.elements(NS_DISCO_INFO, "feature"))
    forms = tuple(form for form in map(Form.from_element, query.elements(NS_DATA, "x")) if form is not None)
    return DiscoInfo(identities, features, forms, query.getAttribute("node"))


def parse_items(query: domish.Element) -> tuple[Item, ...]:
    """A disco#items result's ``<query/>`` as ``Item`` objects, skipping items without a valid JID."""
    items = []
    for element in query.elements(NS_DISCO_ITEMS, "item"):
        try:
            jid = parse_jid(element.getAttribute("jid", "")).full()
        except InvalidFormat:
            continue
        items.append(Item(jid, element.getAttribute("node"), element.getAttribute("name")))
    return tuple(items)
