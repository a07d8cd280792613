"""Admission: who may ask what (access rules), and how often (a token bucket per sender).

Both run before a responder is looked up, so a refused request costs a dict
lookup or two and never reaches handler code.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet.interfaces import IReactorTime
from twisted.words.protocols.jabber.jid import JID

from component.config import AccessRule


class AccessControl:
    """Allow lists per (type, namespace); a namespace without a rule is open to everyone.

    An entry of an allow list matches a sender by full JID, bare JID or domain.
    """

    def __init__(self, rules: Iterable[AccessRule]) -> None:
        self._allowed: dict[tuple[str, str], frozenset[str]] = {}
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

    The table of buckets is bounded: when it outgrows ``max_senders``, buckets
    that have refilled (senders that went quiet) are forgotten first.
    """

    def __init__(self, rate: float, burst: int, clock: IReactorTime, max_senders: int = 10_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max_senders = max_senders
        self._buckets: dict[str, list[float]] = {}  # sender -> [tokens, last refill time]

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, sender: str) -> bool:
        """Take one token for ``sender``; ``False`` when the bucket is empty."""
        now = self._clock.seconds()
        bucket = self._buckets.get(sender)
        if bucket is None:
            if len(self._buckets) >= self._max_senders:
                self._forget_quiet(now)
            self._buckets[sender] = [self.burst - 1.0, now]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            return False
        bucket[0] = tokens - 1.0
        return True

    def _forget_quiet(self, now: float) -> None:
        full = [s for s, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for sender in full:
            del self._buckets[sender]
        if len(self._buckets) >= self._max_senders:  # all busy: keep the newest half
            for sender in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[sender]
