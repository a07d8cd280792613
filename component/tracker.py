"""Outbound Iq queries: ids, the pending map, timeouts, the sender check, cancel, fail-all.

A query is a Deferred. It fires with the response stanza on ``result`` and
fails with ``IqError``, ``IqTimeout`` or ``NotConnected``. Ids come from the
``secrets`` module, and a response resolves a query only when it comes from
the entity the query went to (RFC 6120 sections 8.1.2.1 and 10.3), so a forged
response with a guessed or sniffed id changes nothing.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.words.xish import domish

from component.errors import IqError, IqTimeout, NotConnected
from component.metrics import NoMetrics
from component.request import InvalidFormat, parse_jid

NO_TIMEOUT = math.inf
"""Pass as ``timeout`` to wait for a response for as long as the connection lasts."""


def random_id() -> str:
    """An unpredictable Iq id (96 random bits)."""
    return secrets.token_urlsafe(12)


class _Pending:
    __slots__ = ("deferred", "expected_from", "sent_from", "timer")

    def __init__(self, deferred: Deferred, expected_from: str, sent_from: str, timer: IDelayedCall | None) -> None:
        self.deferred = deferred
        self.expected_from = expected_from
        self.sent_from = sent_from
        self.timer = timer


class Tracker:
    """Sends queries and matches their responses.

    ``send`` writes a stanza and returns whether there was a stream to write
    it to; ``own_domain`` is the component's domain, the ``from`` of a query
    unless the caller names another ``sender`` domain (a response must be
    addressed to the domain its query came from, or to a JID under it);
    ``server_domain`` is the only entity whose responses may come without a
    ``from``.
    """

    log = Logger()

    def __init__(
        self,
        send: Callable[[domish.Element], bool],
        clock: IReactorTime,
        own_domain: str,
        server_domain: str | None,
        default_timeout: float = 30.0,
        new_id: Callable[[], str] = random_id,
        metrics: Any = None,
    ) -> None:
        self._send = send
        self._clock = clock
        self._own_domain = own_domain
        self._server_domain = server_domain
        self.default_timeout = default_timeout
        self._new_id = new_id
        self._pending: dict[str, _Pending] = {}
        self._metrics = metrics or NoMetrics()

    def __len__(self) -> int:
        return len(self._pending)

    def query(
        self,
        to: str,
        payload: domish.Element | str,
        type: str = "get",
        timeout: float | None = None,
        sender: str | None = None,
    ) -> Deferred:
        """Send an Iq ``type`` with ``payload`` to ``to`` from ``sender`` (a domain); see ``Component.query``."""
        if type not in ("get", "set"):
            raise ValueError(f"query type must be 'get' or 'set', not {type!r}")
        try:
            expected_from = parse_jid(to).full()
        except InvalidFormat as e:
            raise ValueError(f"not a valid JID: {to!r} ({e})") from None
        if isinstance(payload, str):
            payload = domish.Element((payload, "query"))

        iq_id = self._new_id()
        while iq_id in self._pending:
            iq_id = self._new_id()
        iq = domish.Element((None, "iq"))
        iq["type"] = type
        iq["id"] = iq_id
        iq["to"] = to
        sender = sender or self._own_domain
        iq["from"] = sender
        iq.addChild(payload)

        # Registered before it is sent: a response can arrive while the send is still on the stack.
        deferred = Deferred(lambda d: self._forget(iq_id))
        pending = self._pending[iq_id] = _Pending(deferred, expected_from, sender, None)
        self._metrics.query_sent()
        if not self._send(iq):
            del self._pending[iq_id]
            self._metrics.query_ended("not_connected")
            return fail(NotConnected(f"not connected: cannot send the query to {to}"))
        timeout = self.default_timeout if timeout is None else timeout
        if timeout != NO_TIMEOUT and not deferred.called:
            pending.timer = self._clock.callLater(timeout, self._expire, iq_id, to, timeout)
        return deferred

    def receive(self, iq: domish.Element) -> None:
        """Resolve the query this ``result`` or ``error`` answers, if it truly does."""
        pending = self._pending.get(iq.getAttribute("id"))
        if pending is None:
            return
        if not self._from_expected_sender(iq, pending):
            self.log.warn(
                "Ignored a response with id {id} from {sender} to {recipient}: the query went to {expected}",
                id=iq.getAttribute("id"),
                sender=iq.getAttribute("from"),
                recipient=iq.getAttribute("to"),
                expected=f"{pending.expected_from} from {pending.sent_from}",
            )
            return
        del self._pending[iq["id"]]
        if pending.timer is not None:
            pending.timer.cancel()
        if iq.getAttribute("type") == "result":
            self._metrics.query_ended("answered")
            pending.deferred.callback(iq)
        else:
            self._metrics.query_ended("failed")
            pending.deferred.errback(IqError.from_stanza(iq))

    def fail_all(self, reason: str, sent_from: str | None = None) -> None:
        """Fail pending queries with ``NotConnected``: those sent from ``sent_from``, or all.

        Their stream is gone, and with it the only way their responses could come back.
        """
        if sent_from is None:
            failing, self._pending = self._pending, {}
        else:
            failing = {key: entry for key, entry in self._pending.items() if entry.sent_from == sent_from}
            for key in failing:
                del self._pending[key]
        for entry in failing.values():
            if entry.timer is not None:
                entry.timer.cancel()
            self._metrics.query_ended("not_connected")
            entry.deferred.errback(NotConnected(reason))

    def _from_expected_sender(self, iq: domish.Element, pending: _Pending) -> bool:
        try:
            recipient = iq.getAttribute("to")
            if recipient is None or parse_jid(recipient).host != pending.sent_from:
                return False
            sender = iq.getAttribute("from")
            if sender is None:
                return pending.expected_from == self._server_domain
            return parse_jid(sender).full() == pending.expected_from
        except InvalidFormat:
            return False

    def _expire(self, iq_id: str, to: str, timeout: float) -> None:
        pending = self._pending.pop(iq_id, None)
        if pending is not None:
            self._metrics.query_ended("timed_out")
            pending.deferred.errback(IqTimeout(f"no response from {to} within {timeout:g} s"))

    def _forget(self, iq_id: str) -> None:
        pending = self._pending.pop(iq_id, None)
        if pending is None:
            return
        self._metrics.query_ended("cancelled")
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
