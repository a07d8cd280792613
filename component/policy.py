"""Admission: who may ask what (access rules), and how often (a token bucket per sender).

Both run before a responder is looked up, so a refused request costs a dict
lookup or two and never reaches handler code.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.interfaces import IReactorTime
from twisted.words.protocols.jabber.jid import JID

from component.config_values import AccessRule


class AccessControl:
    """Allow lists per (type, namespace); a namespace without a rule is open to everyone.

    An entry of an allow list matches a sender by full JID, bare JID or domain.
    """

    def __init__(self, rules: Iterable[AccessRule]) -> None:
        self._allowed: dict[tuple[str, str | None], frozenset[str]] = {}  # looked up with any payload's namespace
        for rule in rules:
            for type in rule.types:
                self._allowed[(type, rule.namespace)] = (
                    self._allowed.get((type, rule.namespace), frozenset()) | rule.allow
                )

    def __bool__(self) -> bool:
        return bool(self._allowed)

    def allows(self, type: str, namespace: str | None, sender: JID | None) -> bool:
        allowed = self._allowed.get((type, namespace))
        if allowed is None:
            return True
        if sender is None:
            return False
        return sender.full() in allowed or sender.userhost() in allowed or sender.host in allowed


class SenderRateLimit:
    """A token bucket per sender (bare JID): ``rate`` requests a second, bursts of ``burst``.

    Kept as one float per sender (the generic cell rate algorithm): the time at
    which the sender's bucket will be full again. A sender whose bucket is full
    needs no entry, so the table holds only senders that asked recently, and a
    request from someone new costs one dict insertion. The table is bounded by
    ``max_senders``: when it is full, the senders whose buckets have refilled
    are forgotten, and if every one is still busy, the older half.
    """

    def __init__(self, rate: float, burst: int, clock: IReactorTime, max_senders: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_senders = max_senders
        self._interval = 1.0 / rate  # the time one token takes to come back
        self._tolerance = (burst - 1) * self._interval  # how far ahead of now a sender may run
        self._full_at: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._full_at)

    def allow(self, sender: str) -> bool:
        """Take one token for ``sender``; ``False`` when the bucket is empty."""
        now = self._clock.seconds()
        full_at = self._full_at.get(sender)
        if full_at is None:
            if len(self._full_at) >= self._max_senders:
                self._forget_quiet(now)
            full_at = now
        elif full_at < now:
            full_at = now
        elif full_at - now > self._tolerance:
            return False
        self._full_at[sender] = full_at + self._interval
        return True

    def _forget_quiet(self, now: float) -> None:
        table = self._full_at
        for sender in [sender for sender, full_at in table.items() if full_at <= now]:
            del table[sender]
        if len(table) >= self._max_senders:  # all busy: keep the newest half
            for sender in list(table)[: len(table) // 2]:
                del table[sender]
