"""``request.component``: the running component as handlers see it (``IComponent``), and nothing more.

Handlers get this small object instead of the service itself, so a responder
cannot reach the links, the router or the reload, and the service can change
behind it. It delegates to the running service: ``settings`` and ``disco`` are
read from it on each access, because a reload replaces both.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.words.xish import domish
from zope.interface import implementer

from component.config import Settings
from component.discovery import NS_DISCO_INFO, NS_DISCO_ITEMS, Discovery, parse_info, parse_items
from component.interfaces import IComponent, IStore


@implementer(IComponent)
class ComponentFacade:
    """The handler-facing face of ``service`` (component/service.py); see ``IComponent`` for each member."""

    __slots__ = ("_service", "_store", "clock", "jid", "module")

    def __init__(self, service: Any, clock: IReactorTime, module: str | None = None) -> None:
        self._service = service
        self.jid: str = service.jid
        self.clock = clock
        self.module = module
        self._store: IStore | None = None

    def for_module(self, name: str) -> ComponentFacade:
        """The face that module ``name`` gets, in ``setup()`` and its requests: the same, with its own ``store``."""
        return ComponentFacade(self._service, self.clock, name)

    @property
    def store(self) -> IStore:
        """This module's keys in the component's store (component/store.py); only a handler module has one."""
        if self._store is None:
            if self.module is None:
                raise AttributeError("only a handler module's component has a store (ComponentFacade.for_module)")
            self._store = self._service.store.for_module(self.module)
        return self._store

    @property
    def settings(self) -> Settings:
        return self._service.settings

    @property
    def disco(self) -> Discovery:
        return self._service.disco

    def query(
        self, to: str, payload: domish.Element | str, type: str = "get", timeout: float | None = None
    ) -> Deferred:
        """Send an Iq and return a Deferred that fires with the response stanza (``IComponent.query``).

        With ``instance_jid`` configured the query goes out under that name, so
        that its response comes back to this instance, not to another one
        sharing the component's name.
        """
        service = self._service
        return service.tracker.query(to, payload, type, timeout, sender=service.instance_jid)

    def disco_info(self, jid: str, node: str | None = None, timeout: float | None = None) -> Deferred:
        """Ask ``jid`` for its disco#info; fires with a ``DiscoInfo`` or fails like ``query``."""
        return self.query(jid, _disco_query(NS_DISCO_INFO, node), timeout=timeout).addCallback(
            lambda reply: parse_info(_payload(reply, NS_DISCO_INFO))
        )

    def disco_items(self, jid: str, node: str | None = None, timeout: float | None = None) -> Deferred:
        """Ask ``jid`` for its disco#items; fires with a tuple of ``Item`` or fails like ``query``."""
        return self.query(jid, _disco_query(NS_DISCO_ITEMS, node), timeout=timeout).addCallback(
            lambda reply: parse_items(_payload(reply, NS_DISCO_ITEMS))
        )

    def __repr__(self) -> str:
        return f"<component {self.jid}>"


def _disco_query(namespace: str, node: str | None) -> domish.Element:
    query = domish.Element((namespace, "query"))
    if node is not None:
        query["node"] = node
    return query


def _payload(reply: domish.Element, namespace: str) -> domish.Element:
    """The result's ``<query/>``; an empty result counts as an empty answer."""
    return next(reply.elements(namespace, "query"), None) or domish.Element((namespace, "query"))
