"""Outbound Iq queries: ids, the pending map, timeouts, the sender check, cancel, fail-all.

A query is a Deferred. It fires with the response stanza on ``result`` and
fails with ``IqError``, ``IqTimeout`` or ``NotConnected``. Ids come from the
``secrets`` module, and a response resolves a query only when it comes from
the entity the query went to (RFC 6120 sections 8.1.2.1 and 10.3), so a forged
response with a guessed or sniffed id changes nothing.

A component may have a hundred thousand queries out at once, so a pending
query is kept small (about 500 bytes with its Deferred): one entry in the
pending map, and its deadline in one heap served by a single timer, instead of
a timer per query (a ``DelayedCall`` alone is about 400 bytes). An answered or
cancelled query leaves its deadline in the heap until it comes up, or until
the heap holds more than twice as many deadlines as there are queries, when it
is rebuilt.
"""

from __future__ import annotations

import heapq
import math
import secrets
from collections.abc import Callable

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.words.xish import domish

from component.addresses import InvalidFormat, domain_of, normal_form
from component.errors import IqError, IqTimeout, NotConnected
from component.metrics import Metrics, NoMetrics

#: Pass as ``timeout`` to ``query()`` to wait for a response for as long as the connection lasts.
NO_TIMEOUT = math.inf


def random_id() -> str:
    """An unpredictable Iq id (96 random bits)."""
    return secrets.token_urlsafe(12)


class _Pending:
    """One query waiting for its response; called by its Deferred's ``cancel()``."""

    __slots__ = ("deadline", "deferred", "expected_from", "id", "sent_from", "timeout", "tracker")

    def __init__(self, tracker: Tracker, iq_id: str, expected_from: str, sent_from: str, timeout: float) -> None:
        self.tracker = tracker
        self.id = iq_id
        self.expected_from = expected_from
        self.sent_from = sent_from
        self.timeout = timeout
        self.deadline = math.inf
        self.deferred: Deferred[domish.Element] = Deferred(self)

    def __call__(self, deferred: Deferred[domish.Element]) -> None:
        self.tracker._forget(self.id)


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
        metrics: Metrics | NoMetrics | None = None,
    ) -> None:
        self._send = send
        self._clock = clock
        self._own_domain = own_domain
        self._server_domain = server_domain
        self.default_timeout = default_timeout
        self._new_id = new_id
        self._pending: dict[str | None, _Pending] = {}  # looked up with a response's id, which may be missing
        self._deadlines: list[tuple[float, str]] = []  # a heap; entries of ended queries are left to come up
        self._timer: IDelayedCall | None = None
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
    ) -> Deferred[domish.Element]:
        """Send an Iq ``type`` with ``payload`` to ``to`` from ``sender`` (a domain); see ``Component.query``."""
        if type not in ("get", "set"):
            raise ValueError(f"query type must be 'get' or 'set', not {type!r}")
        try:
            expected_from = normal_form(to)
        except InvalidFormat as e:
            raise ValueError(f"not a valid JID: {to!r} ({e})") from None
        if isinstance(payload, str):
            payload = domish.Element((payload, "query"))

        iq_id = self._new_id()
        while iq_id in self._pending:
            iq_id = self._new_id()
        iq = domish.Element((None, "iq"))
        sender = sender or self._own_domain
        iq.attributes = {"type": type, "id": iq_id, "to": to, "from": sender}
        iq.addChild(payload)

        # Registered before it is sent: a response can arrive while the send is still on the stack.
        pending = self._pending[iq_id] = _Pending(
            self, iq_id, expected_from, sender, self.default_timeout if timeout is None else timeout
        )
        self._metrics.query_sent()
        if not self._send(iq):
            del self._pending[iq_id]
            self._metrics.query_ended("not_connected")
            return fail(NotConnected(f"not connected: cannot send the query to {to}"))
        if pending.timeout != NO_TIMEOUT and iq_id in self._pending:
            self._add_deadline(pending)
        return pending.deferred

    def receive(self, iq: domish.Element) -> None:
        """Resolve the query this ``result`` or ``error`` answers, if it truly does."""
        attributes = iq.attributes
        pending = self._pending.get(attributes.get("id"))
        if pending is None:
            return
        if not self._from_expected_sender(attributes, pending):
            self.log.warn(
                "Ignored a response with id {id} from {sender} to {recipient}: the query went to {expected}",
                id=attributes.get("id"),
                sender=attributes.get("from"),
                recipient=attributes.get("to"),
                expected=f"{pending.expected_from} from {pending.sent_from}",
            )
            return
        self._end(pending)
        if attributes.get("type") == "result":
            self._metrics.query_ended("answered")
            pending.deferred.callback(iq)
        else:
            self._metrics.query_ended("failed")
            pending.deferred.errback(IqError.from_stanza(iq))

    def fail_all(self, reason: str, sent_from: str | None = None) -> None:
        """Fail pending queries with ``NotConnected``: those sent from ``sent_from``, or all.

        Their stream is gone, and with it the only way their responses could come back.
        """
        failing = [entry for entry in self._pending.values() if sent_from is None or entry.sent_from == sent_from]
        for entry in failing:
            self._end(entry)
        for entry in failing:
            self._metrics.query_ended("not_connected")
            entry.deferred.errback(NotConnected(reason))

    def _from_expected_sender(self, attributes: dict[str, str], pending: _Pending) -> bool:
        try:
            recipient = attributes.get("to")
            if recipient is None or domain_of(recipient) != pending.sent_from:
                return False
            sender = attributes.get("from")
            if sender is None:
                return pending.expected_from == self._server_domain
            return normal_form(sender) == pending.expected_from
        except InvalidFormat:
            return False

    # Deadlines: one heap, one timer.

    def _add_deadline(self, pending: _Pending) -> None:
        pending.deadline = deadline = self._clock.seconds() + pending.timeout
        heap = self._deadlines
        if len(heap) > 2 * len(self._pending) + 1024:  # mostly deadlines of queries that have ended
            heap[:] = [(entry.deadline, entry.id) for entry in self._pending.values() if entry.deadline != math.inf]
            heapq.heapify(heap)
        else:
            heapq.heappush(heap, (deadline, pending.id))
        if self._timer is None:
            self._timer = self._clock.callLater(pending.timeout, self._expire_due)
        elif deadline < self._timer.getTime():
            self._timer.reset(pending.timeout)

    def _expire_due(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        heap = self._deadlines
        due = []
        while heap and heap[0][0] <= now:
            deadline, iq_id = heapq.heappop(heap)
            pending = self._pending.get(iq_id)
            if pending is not None and pending.deadline == deadline:
                del self._pending[iq_id]
                due.append(pending)
        self._schedule_next()
        for pending in due:
            self._metrics.query_ended("timed_out")
            pending.deferred.errback(
                IqTimeout(f"no response from {pending.expected_from} within {pending.timeout:g} s")
            )

    def _schedule_next(self) -> None:
        """Set the timer for the earliest deadline still to come; none when nothing waits."""
        heap = self._deadlines
        while heap and heap[0][1] not in self._pending:
            heapq.heappop(heap)
        if not heap:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        delay = max(0.0, heap[0][0] - self._clock.seconds())
        if self._timer is None:
            self._timer = self._clock.callLater(delay, self._expire_due)
        else:
            self._timer.reset(delay)

    def _end(self, pending: _Pending) -> None:
        """Forget ``pending``; stop the timer when nothing waits any longer."""
        del self._pending[pending.id]
        if not self._pending and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._deadlines.clear()

    def _forget(self, iq_id: str) -> None:
        pending = self._pending.get(iq_id)
        if pending is None:
            return
        self._end(pending)
        self._metrics.query_ended("cancelled")
