"""Keepalive: notice a server that stopped answering, and drop the connection so it is remade.

A TCP connection to a server that hangs (or a link that died without a reset)
looks healthy for a long time: writes still succeed into the socket buffer.
So while the stream is up, every ``interval`` seconds the component pings its
server (XEP-0199) through the tracker; a server that does not answer within
``timeout`` is taken for dead. Any answer, an error included, proves it alive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.xish import domish

from component.errors import IqTimeout
from component.payload import Payload

NS_PING = "urn:xmpp:ping"


class Ping(Payload, namespace=NS_PING, element="ping"):
    """XEP-0199's ``<ping/>``: what the keepalive sends, and what the bundled ping handler answers."""


class Keepalive:
    """Pings ``server_domain`` through ``query`` while started; calls ``drop`` when it stays silent."""

    log = Logger()

    def __init__(
        self,
        query: Callable[..., Deferred[domish.Element]],
        server_domain: str,
        interval: float,
        timeout: float,
        drop: Callable[[], None],
        clock: IReactorTime,
    ) -> None:
        self._query = query
        self.server_domain = server_domain
        self.interval = interval
        self.timeout = timeout
        self._drop = drop
        self._loop = LoopingCall(self._ping)
        self._loop.clock = clock
        self._pending: Deferred[Any] | None = None

    def start(self) -> None:
        if not self._loop.running:
            self._loop.start(self.interval, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        if self._pending is not None:
            self._pending.cancel()

    def _ping(self) -> None:
        if self._pending is not None:  # the previous ping is still waiting for its answer
            return
        self._pending = self._query(self.server_domain, domish.Element((NS_PING, "ping")), timeout=self.timeout)
        self._pending.addCallbacks(self._answered, self._failed)

    def _answered(self, _reply: domish.Element) -> None:
        self._pending = None

    def _failed(self, failure: Failure) -> None:
        self._pending = None
        # An error reply is an answer; a lost connection or a cancelled ping says nothing new.
        if failure.check(IqTimeout):
            self.log.warn(
                "{server} did not answer a keepalive ping within {timeout:g} s; dropping the connection",
                server=self.server_domain,
                timeout=self.timeout,
            )
            self._drop()
