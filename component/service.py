"""The running component: settings, registry, router, tracker and connection, as one service.

Handlers see this object as ``request.component``: it sends stanzas, makes
outbound queries and exposes the settings. It owns nothing handler-specific.
"""

from __future__ import annotations

import atexit
import gc
import os
import random
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import endpoints
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.words.xish import domish

from component.config import ConfigError, Overrides, Settings, load
from component.discovery import NS_DISCO_INFO, NS_DISCO_ITEMS, Discovery, parse_info, parse_items
from component.link import Link
from component.loader import HandlerLoadError, HandlerModule, load_handlers, teardown_handlers
from component.metrics import Metrics, NoMetrics, metrics_service
from component.policy import AccessControl
from component.registry import Registry
from component.request import InvalidFormat, parse_jid
from component.router import Router
from component.stream import ComponentStream
from component.tracker import Tracker, random_id
from component.twisted_private import forget_exit_signal

# Conditions that mean "this name or secret is wrong", not "try again later".
REFUSALS = frozenset({"not-authorized", "host-unknown"})
EX_CONFIG = 78  # sysexits.h: the configuration is wrong


class Component(MultiService):
    """An XEP-0114 component that answers Iq requests with the responders of ``registry``.

    A component that has never authenticated and is refused with
    ``not-authorized`` or ``host-unknown`` stops the process with exit status
    78 (EX_CONFIG): retrying cannot fix a wrong name or secret. Once it has
    been authenticated, every failure is retried with backoff, except being
    replaced: when the server closes an authenticated stream with
    ``conflict`` (Prosody's ``kick_old``: a newer process took the name), the
    process stops with status 0, since reconnecting would only take the name
    back and start a tug of war.

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
        give_up: Callable[[Any, int], None] | None = None,
        jitter: Callable[[], float] = random.random,
        new_id: Callable[[], str] = random_id,
        overrides: Overrides | None = None,
    ) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._give_up = give_up or exit_after_shutdown
        self.settings = settings
        self.jid = settings.jid
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
        self.router = Router(
            registry,
            self.tracker,
            self,
            reactor,
            settings.limits,
            AccessControl(settings.access),
            self.metrics,
            log_requests=settings.log_requests,
        )
        self.disco = self._discovery(settings, registry)
        self.modules: list[HandlerModule] = []  # the handler modules being served, torn down when replaced
        self.instance_jid = settings.instance_jid

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
                self._refused,
                self._replaced,
                self.server_domain,
                reactor,
                jitter,
                self.metrics,
                parent=self,
            )

        self.link = link(settings.jid, "component.jid", endpoint)
        self.instance_link = None
        if settings.instance_jid is not None:
            self.instance_link = link(settings.instance_jid, "component.instance_jid", instance_endpoint)
        self.links = (self.link,) if self.instance_link is None else (self.link, self.instance_link)
        if settings.metrics_endpoint:
            metrics_service(self.metrics, settings.metrics_endpoint).setServiceParent(self)

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
            self,
            self.settings.handler_options if options is None else options,
            self._reactor,
            self.settings.shutdown_grace,
        )
        return self.modules

    def reload(self) -> bool:
        """Reload the handler directories and the disco configuration, keeping the connection.

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
        settings = replace(
            self.settings,
            handler_directories=settings.handler_directories,
            handler_options=settings.handler_options,
            identities=settings.identities,
            disco_items=settings.disco_items,
            disco_forms=settings.disco_forms,
            disco_provider_timeout=settings.disco_provider_timeout,
        )
        previous = (self.settings, self.registry, self.disco, self.modules)
        self.settings, self.registry = settings, Registry()
        self.disco = self._discovery(settings, self.registry)  # setup() functions publish into it
        try:
            modules = self.load_handlers()
        except HandlerLoadError as e:
            self.settings, self.registry, self.disco, self.modules = previous
            self.log.error("Reload failed; still serving the previous handlers: {error}", error=str(e))
            return False
        teardown_handlers(previous[3], self, self._reactor, self.settings.shutdown_grace)
        self.router.registry = self.registry
        self.log.info(
            "Reloaded {count} handler modules; disco#info features: {features}",
            count=len(modules),
            features=", ".join(sorted(self.registry.features)),
        )
        return True

    def _on_sighup(self, signum: int, frame: object) -> None:
        self._reactor.callFromThread(self.reload)

    def startService(self) -> None:
        if hasattr(self._reactor, "callFromThread"):  # a real reactor: SIGHUP reloads the handlers
            self._previous_sighup = signal.signal(signal.SIGHUP, self._on_sighup)
        for warning in self.settings.warnings:
            self.log.warn("{warning}", warning=warning)
        # Everything loaded so far (Twisted, handler modules, configuration) lives as long as the
        # process: move it out of the collector's sight, so collections scan only per-request garbage.
        gc.freeze()
        super().startService()

    def stopService(self) -> Deferred:
        """Stop taking requests, let those in flight finish, tear the handler modules down, close the stream.

        Requests in flight get up to ``shutdown_grace`` seconds to finish, and
        then the modules' ``teardown()`` functions up to ``shutdown_grace`` more.
        """
        if getattr(self, "_previous_sighup", None) is not None:
            signal.signal(signal.SIGHUP, self._previous_sighup)
            self._previous_sighup = None
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
        waiting.addCallback(lambda _: self._close_stream())
        waiting.addCallback(lambda _: MultiService.stopService(self))
        return waiting

    def _drained(self, _: object) -> None:
        # twistd and twist end a SIGTERM'd process by raising the signal again after clean-up; a
        # shutdown that answered everything it accepted exits 0 instead, so that supervisors and
        # scripts can tell it from one that lost requests.
        forget_exit_signal(self._reactor)

    def _not_drained(self, _: object) -> None:
        self.log.warn("Shutting down with {count} request(s) unanswered", count=self.router.in_flight)

    def _teardown_handlers(self) -> Deferred:
        modules, self.modules = self.modules, []
        return teardown_handlers(modules, self, self._reactor, self.settings.shutdown_grace)

    def _close_stream(self) -> None:
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

    def _stream_from(self, sender: str | None) -> ComponentStream | None:
        """The stream that may carry a stanza from ``sender``: the one authenticated for its domain.

        Everything goes out on the component's main stream unless it comes from this
        instance's own name, which only that name's stream may carry.
        """
        if self.instance_link is not None and sender:
            try:
                if parse_jid(sender).host == self.instance_jid:
                    return self.instance_link.stream
            except InvalidFormat:
                pass
        return self.link.stream

    def send(self, element: domish.Element) -> bool:
        """Write ``element`` to the stream for its ``from``; return ``False`` (and drop it) when not connected."""
        stream = self.link.stream if self.instance_link is None else self._stream_from(element.getAttribute("from"))
        if stream is None:
            self.log.debug("Not connected: dropped {element}", element=element.toXml())
            return False
        stream.send(element)
        return True

    def send_raw(self, xml: str, sender: str | None = None) -> bool:
        """Write serialized stanzas from ``sender`` (their ``from``); like ``send``.

        The caller vouches that ``xml`` is well-formed.
        """
        stream = self.link.stream if self.instance_link is None else self._stream_from(sender)
        if stream is None:
            self.log.debug("Not connected: dropped {xml}", xml=xml)
            return False
        stream.send(xml)
        return True

    def query(
        self, to: str, payload: domish.Element | str, type: str = "get", timeout: float | None = None
    ) -> Deferred:
        """Send an Iq and return a Deferred that fires with the response stanza.

        ``payload`` is an Element, or a namespace meaning an empty ``<query/>`` in
        it. Fails with ``IqError``, ``IqTimeout`` or ``NotConnected``.
        ``timeout=None`` uses ``response_timeout``; ``component.NO_TIMEOUT``
        waits as long as the connection lasts; ``cancel()`` forgets the query.
        With ``instance_jid`` configured the query goes out under that name, so
        that its response comes back to this instance, not to another one
        sharing the component's name.
        """
        return self.tracker.query(to, payload, type, timeout, sender=self.instance_jid)

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

    def _replaced(self, link: Link, text: str | None) -> None:
        self.log.warn(
            "Stopping: another connection took over {jid} at {server} ({text}); "
            "this process leaves the name to it instead of taking it back",
            jid=link.jid,
            server=self.settings.server,
            text=text or "conflict",
        )
        self._give_up(self._reactor, 0)

    def _refused(self, link: Link, condition: str, text: str | None) -> None:
        if condition in REFUSALS and not link.connection.ever_authenticated:
            self.log.critical(
                "Stopping: {server} refused {jid} ({condition}) before ever accepting it; "
                "check {key} and the secret in {path} against the server's configuration",
                server=self.settings.server,
                jid=link.jid,
                condition=condition,
                key=link.key,
                path=str(self.settings.path),
            )
            self._give_up(self._reactor, EX_CONFIG)


def _disco_query(namespace: str, node: str | None) -> domish.Element:
    query = domish.Element((namespace, "query"))
    if node is not None:
        query["node"] = node
    return query


def _payload(reply: domish.Element, namespace: str) -> domish.Element:
    """The result's ``<query/>``; an empty result counts as an empty answer."""
    return next(reply.elements(namespace, "query"), None) or domish.Element((namespace, "query"))


def exit_after_shutdown(reactor: Any, status: int) -> None:
    """Stop the reactor, and make the process exit with ``status`` once twistd has cleaned up.

    twistd and twist always exit 0 after the reactor stops; an ``atexit`` hook
    runs after their clean-up (pidfile removal, log flush) and sets the status.
    """

    def exit_with_status() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    atexit.register(exit_with_status)
    if reactor.running:
        reactor.stop()
