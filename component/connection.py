"""The XEP-0114 stream to the server, kept up by Twisted's ``ClientService``.

The handshake is Twisted's ``ConnectComponentAuthenticator``. What this module
adds is what twisted.words gets wrong for a long-running component: the
backoff counts attempts since the last *successful handshake* (not since the
last TCP connect, so a wrong secret is not retried once a second forever), a
refusal by the server is logged in one line with its condition and text, and
an authenticated stream hands each ``<iq/>`` straight to the router with no
XPath evaluation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.application.internet import backoffPolicy
from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IProtocol, IProtocolFactory, IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, xmlstream
from twisted.words.protocols.jabber.component import ConnectComponentAuthenticator
from zope.interface import implementer

from component.config import Limits
from component.metrics import NoMetrics
from component.stream import ComponentStream, StanzaRouter
from component.twisted_private import QuietClientService
from component.twisted_typed import Service

INITIAL_RETRY_DELAY = 0.5  # seconds; doubles per failed attempt up to reconnect_max, plus up to 1 s of jitter


@implementer(IStreamClientEndpoint)
class _ReportingEndpoint:
    """Logs why a connection attempt failed; ``ClientService`` only says when it will retry."""

    log = Logger()

    def __init__(self, endpoint: IStreamClientEndpoint, server: str) -> None:
        self._endpoint = endpoint
        self._server = server

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        def report(failure: Failure) -> Failure:
            self.log.warn("Cannot connect to {server}: {reason}", server=self._server, reason=failure.getErrorMessage())
            return failure

        return self._endpoint.connect(factory).addErrback(report)

    def __repr__(self) -> str:
        return self._server


class _StreamFactory(protocol.Factory):
    noisy = False  # one "Starting factory" line per reconnect attempt says nothing useful

    def __init__(self, connection: ComponentConnection) -> None:
        self.connection = connection

    def buildProtocol(self, addr: IAddress | None) -> ComponentStream:
        return self.connection.build_stream()


class ComponentConnection(Service):
    """Keeps one authenticated component stream up, reconnecting with backoff.

    ``on_authenticated(stream)`` and ``on_lost(reason)`` tell the owner when
    the stream can and cannot be used; ``on_refused(condition, text)`` reports
    the server refusing the component's name or secret, and
    ``on_replaced(text)`` the server closing an authenticated stream with
    ``conflict`` because another connection took the name.
    """

    log = Logger()

    def __init__(
        self,
        jid: str,
        secret: str,
        endpoint: IStreamClientEndpoint,
        server: str,
        router: StanzaRouter,
        on_authenticated: Callable[[ComponentStream], None],
        on_lost: Callable[[str], None],
        on_refused: Callable[[str, str | None], None],
        clock: IReactorTime,
        on_replaced: Callable[[str | None], None] = lambda text: None,
        reconnect_max: float = 60.0,
        jitter: Callable[[], float] = random.random,
        handshake_timeout: float = 20.0,
        limits: Limits | None = None,
        metrics: Any = None,
    ) -> None:
        self._metrics = metrics or NoMetrics()
        self.jid = jid
        self._clock = clock
        self.handshake_timeout = handshake_timeout
        self._limits = limits or Limits()
        self._secret = secret
        self.server = server
        self._router = router
        self._on_authenticated = on_authenticated
        self._on_lost = on_lost
        self._on_refused = on_refused
        self._on_replaced = on_replaced
        self._backoff = backoffPolicy(INITIAL_RETRY_DELAY, reconnect_max, 2.0, jitter)
        self.attempts_since_authenticated = 0
        self.ever_authenticated = False
        self.stream: ComponentStream | None = None
        self._client = QuietClientService(
            _ReportingEndpoint(endpoint, server), _StreamFactory(self), retryPolicy=self._next_delay, clock=clock
        )

    def startService(self) -> None:
        super().startService()
        self._client.startService()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self._client.stopService()

    def _next_delay(self, _attempts_since_tcp_connect: int) -> float:
        # ClientService resets its own count on every TCP connect; ours resets only on a handshake.
        self.attempts_since_authenticated += 1
        self._metrics.reconnect_scheduled()
        delay = self._backoff(self.attempts_since_authenticated)
        self.log.info(
            "Reconnecting to {server} in {delay:.1f} s (attempt {attempt} since the last handshake)",
            server=self.server,
            delay=delay,
            attempt=self.attempts_since_authenticated,
        )
        return delay

    def build_stream(self) -> ComponentStream:
        stream = ComponentStream(ConnectComponentAuthenticator(self.jid, self._secret))
        stream.max_stanza_bytes = self._limits.max_stanza_bytes
        stream.max_depth = self._limits.max_depth
        stream.addObserver(xmlstream.STREAM_CONNECTED_EVENT, self._connected)
        stream.addObserver(xmlstream.STREAM_AUTHD_EVENT, self._authenticated)
        stream.addObserver(xmlstream.STREAM_ERROR_EVENT, lambda failure: self._stream_error(stream, failure))
        stream.addObserver(xmlstream.STREAM_END_EVENT, lambda reason: self._ended(stream, reason))
        return stream

    def _connected(self, stream: ComponentStream) -> None:
        stream.handshake_timer = self._clock.callLater(self.handshake_timeout, self._handshake_overdue, stream)

    def _handshake_overdue(self, stream: ComponentStream) -> None:
        stream.refused = True  # reported here; the end of the connection needs no second line
        self.log.warn(
            "{server} did not complete the handshake within {timeout:g} s; dropping the connection",
            server=self.server,
            timeout=self.handshake_timeout,
        )
        stream.transport.abortConnection()

    def _authenticated(self, stream: ComponentStream) -> None:
        stream.handshake_timer.cancel()
        self.attempts_since_authenticated = 0
        self.ever_authenticated = True
        self.stream = stream
        stream.router = self._router
        self._metrics.set_connected(self.jid, True)
        self.log.info("Authenticated as {jid} to {server}", jid=self.jid, server=self.server)
        self._on_authenticated(stream)

    def _stream_error(self, stream: ComponentStream, failure: Failure) -> None:
        problem = failure.value
        if isinstance(problem, error.StreamError):
            condition, text = problem.condition, problem.text
        else:
            condition, text = "not-well-formed", str(problem)
        if stream is self.stream:
            self.log.warn(
                "Stream error from {server}: {condition}{text}",
                server=self.server,
                condition=condition,
                text=f" ({text})" if text else "",
            )
            if condition == "conflict":
                self._on_replaced(text)
        else:
            stream.refused = True
            self.log.error(
                "{server} refused {jid}: {condition}{text}",
                server=self.server,
                jid=self.jid,
                condition=condition,
                text=f" ({text})" if text else "",
            )
            self._on_refused(condition, text)

    def _ended(self, stream: ComponentStream, reason: Failure) -> None:
        stream.router = None
        timer = getattr(stream, "handshake_timer", None)
        if timer is not None and timer.active():
            timer.cancel()
        if stream is self.stream:
            self.stream = None
            self._metrics.set_connected(self.jid, False)
            if self.running:
                self.log.warn(
                    "Lost the connection to {server}: {reason}", server=self.server, reason=reason.getErrorMessage()
                )
            else:  # the service is stopping: the component closed the stream itself, as it should
                self.log.info("Closed the connection to {server}", server=self.server)
            self._on_lost(reason.getErrorMessage())
        elif _tls_failure(reason):
            self.log.error(
                "TLS to {server} failed, nothing was sent: {problem}", server=self.server, problem=_tls_failure(reason)
            )
        elif not stream.refused:
            self.log.warn(
                "The connection to {server} closed before the XEP-0114 handshake completed: {reason}",
                server=self.server,
                reason=reason.getErrorMessage(),
            )


def _tls_failure(reason: Failure) -> str | None:
    """A plain description of a failed TLS handshake, or ``None`` when it was not one."""
    try:
        from OpenSSL import SSL
        from service_identity.exceptions import VerificationError
    except ImportError:  # pragma: no cover - both come with the project's dependencies
        return None
    problem = reason.value
    if isinstance(problem, VerificationError):
        names = ", ".join(
            getattr(getattr(error, "mismatched_id", None), "hostname", b"?").decode(errors="replace")
            for error in problem.errors
        )
        return f"the server's certificate is not valid for {names} (or not trusted)"
    if isinstance(problem, SSL.Error):
        details = "; ".join(entry[-1] for entry in problem.args[0] if isinstance(entry, tuple)) or str(problem)
        return f"{details} (is the server's certificate signed by a trusted authority? see trustRoots)"
    return None
