"""One name's stream to the server: its connection, its keepalive, the queries sent under it, and its writes.

A component has one link under its own name (``component.jid``) and, when it shares that
name with other processes, a second under the instance's own name (``component.instance_jid``)
for its outbound queries. Each link reconnects, pings the server and fails its own pending
queries on its own, so losing one stream never disturbs the other.

A stream hands each stanza to the router with its link, and the reply is written with the
link's ``send``: a request is answered under the name it came to, on whichever stream that name
has when the answer is ready, with no address parsed to find it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from twisted.application.service import IServiceCollection
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.words.xish import domish

from component.config import Settings
from component.connection import ComponentConnection
from component.keepalive import Keepalive
from component.stream import ComponentStream, StanzaRouter
from component.tracker import Tracker


class Link:
    """The stream under ``jid``; ``key`` is the configuration key that names it, for messages.

    ``stream`` is the authenticated stream, or ``None`` while there is none.
    ``on_refused(link, condition, text)`` hears of the server refusing the name, and
    ``on_replaced(link, text)`` of another connection taking it over.
    """

    log = Logger()
    delegation = None  # requests on a link came to the component itself; see component/delegation.py

    def __init__(
        self,
        jid: str,
        key: str,
        settings: Settings,
        endpoint: IStreamClientEndpoint,
        tracker: Tracker,
        router: StanzaRouter,
        on_refused: Callable[[Link, str, str | None], None],
        on_replaced: Callable[[Link, str | None], None],
        server_domain: str,
        clock: IReactorTime,
        jitter: Callable[[], float],
        metrics: Any,
        parent: IServiceCollection,
        on_up: Callable[[Link], None] = lambda link: None,
        on_down: Callable[[Link], None] = lambda link: None,
    ) -> None:
        self.jid = jid
        self._on_up = on_up
        self._on_down = on_down
        self.key = key
        self.stream: ComponentStream | None = None
        self._tracker = tracker
        self._server = settings.server
        self.keepalive = Keepalive(
            partial(tracker.query, sender=jid),
            server_domain,
            settings.keepalive_interval,
            settings.keepalive_timeout,
            drop=self._drop,
            clock=clock,
        )
        self.connection = ComponentConnection(
            jid=jid,
            secret=settings.secret,
            endpoint=endpoint,
            server=settings.server,
            router=router,
            on_authenticated=self._authenticated,
            on_lost=self._lost,
            on_refused=lambda condition, text: on_refused(self, condition, text),
            on_replaced=lambda text: on_replaced(self, text),
            clock=clock,
            reconnect_max=settings.reconnect_max,
            jitter=jitter,
            handshake_timeout=settings.keepalive_timeout,
            limits=settings.limits,
            metrics=metrics,
        )
        self.connection.setServiceParent(parent)

    def send(self, stanza: domish.Element | str) -> bool:
        """Write a stanza (an Element, or XML text the caller vouches is well-formed) on this name's stream.

        The one write path of the component: replies, queries and keepalive
        pings. Returns ``False``, and drops the stanza, while there is no stream.
        """
        stream = self.stream
        if stream is None:
            self.log.debug(
                "Not connected as {jid}: dropped {xml}",
                jid=self.jid,
                xml=stanza if isinstance(stanza, str) else stanza.toXml(),
            )
            return False
        stream.send(stanza)
        return True

    def _authenticated(self, stream: ComponentStream) -> None:
        stream.link = self
        self.stream = stream
        self.keepalive.start()
        self._on_up(self)

    def _lost(self, reason: str) -> None:
        self.stream = None
        self.keepalive.stop()
        # Responses to the queries sent under this name could only come back on this stream.
        self._tracker.fail_all(f"lost the connection to {self._server}: {reason}", sent_from=self.jid)
        self._on_down(self)

    def _drop(self) -> None:
        if self.stream is not None:
            self.stream.transport.abortConnection()

    def close(self) -> None:
        """End the stream politely (``</stream:stream>``); the connection closes when the service stops."""
        self.keepalive.stop()
        if self.stream is not None:
            self.stream.sendFooter()
