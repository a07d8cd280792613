"""``request.component``: the running component as handlers see it (``IComponent``), and nothing more.

Handlers get this small object instead of the service itself, so a responder
cannot reach the links, the router or the registry, and the service can change
behind it; what an operator may ask of it (``status()``, ``reload()``, as the
bundled admin commands do) is here as a call. It delegates to the running service: ``settings`` and ``disco`` are
read from it on each access, because a reload replaces both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.words.xish import domish
from zope.interface import implementer

from component.config import Settings
from component.discovery import NS_DISCO_INFO, NS_DISCO_ITEMS, DiscoInfo, Discovery, Item, parse_info, parse_items
from component.interfaces import IComponent, IStore
from component.privilege import Privileged

if TYPE_CHECKING:
    from component.service import Component


@implementer(IComponent)
class ComponentFacade:
    """The handler-facing face of ``service`` (component/service.py); see ``IComponent`` for each member."""

    __slots__ = ("_service", "_store", "clock", "jid", "module")

    def __init__(self, service: Component, clock: IReactorTime, module: str | None = None) -> None:
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

    @property
    def privileged(self) -> Privileged:
        return self._service.privileged

    def query(
        self, to: str, payload: domish.Element | str, type: str = "get", timeout: float | None = None
    ) -> Deferred[domish.Element]:
        """Send an Iq and return a Deferred that fires with the response stanza (``IComponent.query``).

        With ``instance_jid`` configured the query goes out under that name, so
        that its response comes back to this instance, not to another one
        sharing the component's name.
        """
        service = self._service
        return service.tracker.query(to, payload, type, timeout, sender=service.instance_jid)

    def disco_info(self, jid: str, node: str | None = None, timeout: float | None = None) -> Deferred[DiscoInfo]:
        """Ask ``jid`` for its disco#info; fires with a ``DiscoInfo`` or fails like ``query``."""
        return self.query(jid, _disco_query(NS_DISCO_INFO, node), timeout=timeout).addCallback(
            lambda reply: parse_info(_payload(reply, NS_DISCO_INFO))
        )

    def disco_items(
        self, jid: str, node: str | None = None, timeout: float | None = None
    ) -> Deferred[tuple[Item, ...]]:
        """Ask ``jid`` for its disco#items; fires with a tuple of ``Item`` or fails like ``query``."""
        return self.query(jid, _disco_query(NS_DISCO_ITEMS, node), timeout=timeout).addCallback(
            lambda reply: parse_items(_payload(reply, NS_DISCO_ITEMS))
        )

    def status(self) -> Status:
        """How the component is doing, for an operator (the bundled admin commands)."""
        service = self._service
        return Status(
            uptime=self.clock.seconds() - service.started_at if service.started_at is not None else 0.0,
            connections=tuple((link.jid, link.stream is not None) for link in service.links),
            requests=dict(service.router.requests),
            pending_queries=len(service.tracker),
            modules=tuple((module.name, module.namespaces) for module in service.modules),
            commands=tuple(sorted(service.registry.commands)),
        )

    def reload(self) -> bool:
        """Reload the handler modules and the disco configuration, as SIGHUP does; True if it succeeded."""
        return self._service.reload()

    def __repr__(self) -> str:
        return f"<component {self.jid}>"


@dataclass(frozen=True)
class Status:
    """A snapshot of the running component."""

    uptime: float
    """Seconds since the component started."""
    connections: tuple[tuple[str, bool], ...]
    """Each name the component connects under, and whether its stream is up."""
    requests: dict[str, int]
    """Requests handed to a responder since start, by namespace."""
    pending_queries: int
    """Outbound queries waiting for their response."""
    modules: tuple[tuple[str, tuple[str, ...]], ...]
    """Each loaded handler module and the namespaces its responders serve."""
    commands: tuple[str, ...]
    """The nodes of the ad-hoc commands the modules declare."""


def _disco_query(namespace: str, node: str | None) -> domish.Element:
    query = domish.Element((namespace, "query"))
    if node is not None:
        query["node"] = node
    return query


def _payload(reply: domish.Element, namespace: str) -> domish.Element:
    """The result's ``<query/>``; an empty result counts as an empty answer."""
    return next(reply.elements(namespace, "query"), None) or domish.Element((namespace, "query"))
