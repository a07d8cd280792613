"""The running component: settings, registry, router, tracker and links, wired as one service.

Handlers never see this object: they get its ``facade`` (component/facade.py,
the ``IComponent`` role). What the process does when a name is refused or
taken over, and on SIGHUP, is component/process.py's.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.internet import endpoints
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.words.xish import domish

from component.commands import NS_COMMANDS, SESSIONS, CommandAccess, CommandServer
from component.config import Overrides, Settings, load
from component.config_values import ConfigError
from component.delegation import Delegations
from component.discovery import Discovery
from component.facade import ComponentFacade
from component.link import Link
from component.loader import HandlerLoadError, HandlerModule, load_handlers, teardown_handlers
from component.metrics import Metrics, NoMetrics, metrics_service
from component.policy import AccessControl
from component.privilege import Privileged, PrivilegeGrants
from component.registry import Declaration, RegistrationConflict, Registry
from component.router import Router
from component.store import Store, open_backend
from component.stream import ComponentStream
from component.tracker import Tracker, random_id
from component.twisted_typed import MultiService


def _ignore(*args: Any) -> None:
    pass


class Component(MultiService):
    """An XEP-0114 component that answers Iq requests with the responders of ``registry``.

    Each link reconnects with backoff on its own. ``on_refused(link, condition,
    text)`` hears of the server refusing a link's name, and ``on_replaced(link,
    text)`` of another connection taking it over; what the process does about
    either is component/process.py's (``ProcessPolicy``), and by default nothing.

    Handlers see ``facade`` (``IComponent``), in ``request.component`` and in
    their modules' ``setup()`` and ``teardown()``; its ``clock`` is ``reactor``.

    With ``instance_jid`` configured it keeps a second stream under that name
    (a ``Link`` each, component/link.py): outbound queries go out on it, so that their responses
    reach this process even when other processes share ``jid``.
    """

    log = Logger()

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        reactor: Any = None,
        endpoint: Any = None,
        instance_endpoint: Any = None,
        jitter: Callable[[], float] = random.random,
        new_id: Callable[[], str] = random_id,
        overrides: Overrides | None = None,
        on_refused: Callable[[Link, str, str | None], None] = _ignore,
        on_replaced: Callable[[Link, str | None], None] = _ignore,
        store: Store | None = None,
    ) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self.settings = settings
        self.jid = settings.jid
        self.instance_jid = settings.instance_jid
        self.facade = ComponentFacade(self, reactor)
        # The handler modules' state (component/store.py): the configured backend connects on first use.
        self.store = store or Store(
            open_backend(settings.store_location, reactor, settings.store_timeout, settings.store_connections),
            reactor,
        )
        self.registry = registry
        self.overrides = overrides
        self.metrics = (
            Metrics(lambda namespace: self.registry.serves(namespace)) if settings.metrics_endpoint else NoMetrics()
        )
        self.server_domain = settings.server_domain or settings.jid.partition(".")[2] or settings.jid
        self.tracker = Tracker(
            send=self.send,
            clock=reactor,
            own_domain=settings.jid,
            server_domain=self.server_domain,
            default_timeout=settings.response_timeout,
            new_id=new_id,
            metrics=self.metrics,
        )
        # The servers trusted to forward their users' requests and to grant privileges (XEP-0355, XEP-0356).
        servers = settings.trusted_servers or (self.server_domain,)
        self.delegations = Delegations(
            self._asked_delegations, servers, reactor, settings.delegation_grant_wait, self.metrics, settings.jid
        )
        self.privilege_grants = PrivilegeGrants(servers, self.metrics)
        self.privileged = Privileged(self.privilege_grants, self)
        self.router = Router(
            registry,
            self.tracker,
            self.facade,
            reactor,
            settings.limits,
            AccessControl(settings.access),
            self.metrics,
            log_requests=settings.log_requests,
            delegations=self.delegations,
            privileges=self.privilege_grants,
        )
        self.disco = self._discovery(settings, registry)
        self.modules: list[HandlerModule] = []  # the handler modules being served, torn down when replaced
        self.started_at: float | None = None
        self.commands: CommandServer | None = None
        self.answered_all = False  # set by a shutdown that answered every request it had accepted

        # One stream per name: the shared name, on which the server spreads requests across every
        # instance, and (when configured) this instance's own name, which outbound queries go out
        # under so that their responses come back to this process and no other.
        def link(jid: str, key: str, endpoint: Any) -> Link:
            return Link(
                jid,
                key,
                settings,
                endpoint or endpoints.clientFromString(reactor, settings.server),
                self.tracker,
                self.router,
                on_refused,
                on_replaced,
                self.server_domain,
                reactor,
                jitter,
                self.metrics,
                parent=self,
                on_up=self._link_up,
                on_down=self._link_down,
            )

        self.link = link(settings.jid, "component.jid", endpoint)
        self.instance_link = None
        if settings.instance_jid is not None:
            self.instance_link = link(settings.instance_jid, "component.instance_jid", instance_endpoint)
        self.links = (self.link,) if self.instance_link is None else (self.link, self.instance_link)
        self._links_by_name: dict[str | None, Link] = {link.jid: link for link in self.links}  # by any from
        if isinstance(self.metrics, Metrics) and settings.metrics_endpoint:
            metrics_service(self.metrics, settings.metrics_endpoint).setServiceParent(self)

    def _asked_delegations(self) -> dict[str, str]:
        """The namespaces to ask servers to delegate: the responders', then the configuration's; each with its origin."""
        asked = dict(self.registry.delegated)
        for namespace in self.settings.delegated_namespaces:
            asked.setdefault(namespace, f"{self.settings.path} [delegation] namespaces")
        return asked

    def _link_up(self, link: Link) -> None:
        if link is self.link:  # servers advertise delegations to the component's name
            self.delegations.connected()

    def _link_down(self, link: Link) -> None:
        self.privilege_grants.forget(link.jid)
        if link is self.link:
            self.delegations.disconnected()

    def _discovery(self, settings: Settings, registry: Registry) -> Discovery:
        disco = Discovery(
            features=lambda: registry.features,
            identities=settings.identities,
            clock=self._reactor,
            provider_timeout=settings.disco_provider_timeout,
        )
        for identity in settings.identities:
            disco.add_identity(identity)
        for item in settings.disco_items:
            disco.add_item(item)
        for form in settings.disco_forms:
            disco.add_form(form)
        return disco

    def load_handlers(
        self,
        directories: Sequence[Path] | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[HandlerModule]:
        """Load handler modules (the configured ones by default) into this component; raises ``HandlerLoadError``.

        The component keeps them as ``modules``, to tear them down when they are replaced or it stops.
        """
        self.modules = load_handlers(
            self.settings.handler_directories if directories is None else directories,
            self.registry,
            self.facade,
            self.settings.handler_options if options is None else options,
            self._reactor,
            self.settings.shutdown_grace,
            config_path=self.settings.path,
        )
        try:
            self._serve_commands()
        except RegistrationConflict as e:
            teardown_handlers(self.modules, self.facade, self._reactor, self.settings.shutdown_grace)
            raise HandlerLoadError(f"{e}: a module answers {NS_COMMANDS} itself and also declares commands") from None
        self.delegations.publish(self.disco)
        return self.modules

    def _serve_commands(self) -> None:
        """Answer the ad-hoc commands the modules declared (component/commands.py), and list them in disco."""
        self.commands = None
        if not self.registry.commands:
            return
        settings = self.settings
        self.commands = CommandServer(
            self.registry.commands.values(),
            self.store.for_module(SESSIONS),
            CommandAccess(settings.admins, settings.command_access, self.server_domain),
            self._reactor,
            settings.command_session_timeout,
            settings.command_sessions_per_sender,
        )
        declaration = Declaration(NS_COMMANDS, ("set",), "command", disco=True)
        self.registry.add(self.commands.answer, declaration, origin="component/commands.py")
        self.commands.publish(self.disco)

    def reload(self) -> bool:
        """Reload the handler directories, the disco configuration and who may ask what, keeping the connection.

        The configuration file is read again (with the same command-line
        overrides), the modules and their helpers are imported anew from their
        source into a fresh registry and disco provider, and set up. Only when
        all of that succeeded is the previous set torn down (each module's
        ``teardown()``, bounded by ``shutdown_grace``; the reload does not wait
        for it) and replaced. On any failure the previous set keeps serving,
        not torn down, and the reason is logged.
        """
        try:
            settings = load(self.settings.path, self.overrides)
        except ConfigError as e:
            self.log.error("Reload failed; still serving the previous handlers: {error}", error=str(e))
            return False
        if (settings.store_location, settings.store_timeout, settings.store_connections) != (
            self.settings.store_location,
            self.settings.store_timeout,
            self.settings.store_connections,
        ):
            self.log.warn("The [store] section changed; a restart makes the change take effect, a reload does not")
        if (settings.trusted_servers, settings.delegation_grant_wait) != (
            self.settings.trusted_servers,
            self.settings.delegation_grant_wait,
        ):
            self.log.warn(
                "[delegation] servers or grant_wait changed; a restart makes the change take effect, a reload does not"
            )
        settings = replace(
            self.settings,
            access=settings.access,
            admins=settings.admins,
            command_access=settings.command_access,
            handler_directories=settings.handler_directories,
            handler_options=settings.handler_options,
            identities=settings.identities,
            disco_items=settings.disco_items,
            disco_forms=settings.disco_forms,
            disco_provider_timeout=settings.disco_provider_timeout,
            delegated_namespaces=settings.delegated_namespaces,
        )
        previous = (self.settings, self.registry, self.disco, self.modules)
        asked_before = dict(self.delegations.asked)
        self.settings, self.registry = settings, Registry()
        self.disco = self._discovery(settings, self.registry)  # setup() functions publish into it
        try:
            modules = self.load_handlers()
        except HandlerLoadError as e:
            self.settings, self.registry, self.disco, self.modules = previous
            self.log.error("Reload failed; still serving the previous handlers: {error}", error=str(e))
            return False
        teardown_handlers(previous[3], self.facade, self._reactor, self.settings.shutdown_grace)
        added = sorted(set(self.delegations.asked) - set(asked_before))
        if added:
            # Servers ask which namespaces to delegate when the component connects, not later.
            self.log.warn(
                "Delegation of {namespaces} is asked for now; servers grant it at the next connection",
                namespaces=", ".join(added),
            )
        self.router.registry = self.registry
        self.router.access = AccessControl(settings.access)
        self.log.info(
            "Reloaded {count} handler modules; disco#info features: {features}",
            count=len(modules),
            features=", ".join(sorted(self.registry.features)),
        )
        return True

    def startService(self) -> None:
        self.started_at = self._reactor.seconds()
        for warning in self.settings.warnings:
            self.log.warn("{warning}", warning=warning)
        self.store.start()
        super().startService()

    def stopService(self) -> Deferred[Any]:
        """Stop taking requests, let those in flight finish, tear the handler modules down, close the stream.

        Requests in flight get up to ``shutdown_grace`` seconds to finish, and
        then the modules' ``teardown()`` functions up to ``shutdown_grace`` more.
        """
        self.router.draining = True
        in_flight = self.router.in_flight
        if in_flight:
            self.log.info(
                "Shutting down: waiting up to {grace:g} s for {count} request(s) in progress",
                grace=self.settings.shutdown_grace,
                count=in_flight,
            )
        waiting = self.router.when_idle().addTimeout(self.settings.shutdown_grace, self._reactor)
        waiting.addCallbacks(self._drained, self._not_drained)
        waiting.addCallback(lambda _: self._teardown_handlers())
        waiting.addCallback(lambda _: self.store.close())
        waiting.addCallback(lambda _: self._close_stream())
        waiting.addCallback(lambda _: MultiService.stopService(self))
        return waiting

    def _drained(self, _: object) -> None:
        self.answered_all = True

    def _not_drained(self, _: object) -> None:
        self.log.warn("Shutting down with {count} request(s) unanswered", count=self.router.in_flight)

    def _teardown_handlers(self) -> Deferred[None]:
        modules, self.modules = self.modules, []
        return teardown_handlers(modules, self.facade, self._reactor, self.settings.shutdown_grace)

    def _close_stream(self) -> None:
        self.delegations.disconnected()  # no grant check left to run after the stop
        for link in self.links:
            link.close()

    @property
    def stream(self) -> ComponentStream | None:
        """The authenticated stream under the component's name, or ``None``."""
        return self.link.stream

    @property
    def connected(self) -> bool:
        """Whether an authenticated stream is up under the component's name."""
        return self.link.stream is not None

    def send(self, stanza: domish.Element) -> bool:
        """Write ``stanza`` on the link of the name in its ``from`` (the main link for any other); like ``Link.send``.

        The tracker's path for outbound queries, whose ``from`` is always one
        of the component's names: one dict lookup, no address parsing.
        """
        return self._links_by_name.get(stanza.attributes.get("from"), self.link).send(stanza)
