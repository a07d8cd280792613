"""Prometheus metrics, served by twisted.web on a configured endpoint (off by default).

Label values are bounded: a request's namespace is labelled as itself only when
a responder serves it, otherwise as ``other``, so strangers inventing
namespaces cannot grow the metrics without bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.twisted import MetricsResource
from twisted.application.service import Service
from twisted.application.strports import service as endpoint_service
from twisted.web.resource import Resource
from twisted.web.server import Site

if TYPE_CHECKING:
    from component.privilege import Privileges

OTHER = "other"


class Metrics:
    """The component's counters; ``NoMetrics`` stands in when metrics are off."""

    def __init__(self, served: Callable[[str | None], bool]) -> None:
        self._served = served
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "iqresponder_requests",
            "Iq get and set requests answered, by namespace, type and outcome (result or the error condition)",
            ["namespace", "type", "outcome"],
            registry=self.registry,
        )
        self.responder_seconds = Histogram(
            "iqresponder_responder_seconds",
            "Time from a request's arrival to its reply, for requests a responder handled",
            ["namespace"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.queries_pending = Gauge(
            "iqresponder_outbound_queries_pending", "Outbound queries waiting for a response", registry=self.registry
        )
        self.queries = Counter(
            "iqresponder_outbound_queries",
            "Outbound queries ended, by outcome: answered, failed (an error response), timed_out, "
            "not_connected, cancelled",
            ["outcome"],
            registry=self.registry,
        )
        self.connected = Gauge(
            "iqresponder_connected",
            "1 while the stream for this name (component.jid, or component.instance_jid) is authenticated",
            ["jid"],
            registry=self.registry,
        )
        self.reconnects = Counter("iqresponder_reconnects", "Reconnection attempts scheduled", registry=self.registry)
        self.privileges = Gauge(
            "iqresponder_privilege",
            "1 for each permission a server advertised to one of the component's names (XEP-0356): access is "
            "roster, message, presence or iq:NAMESPACE, type what it granted",
            ["server", "jid", "access", "type"],
            registry=self.registry,
        )
        self.delegations = Gauge(
            "iqresponder_delegated",
            "1 for each namespace a server delegates to the component (XEP-0355)",
            ["server", "namespace"],
            registry=self.registry,
        )

    def namespace(self, namespace: str | None) -> str:
        return namespace if namespace and self._served(namespace) else OTHER

    def request(self, namespace: str | None, type: str, outcome: str, seconds: float | None = None) -> None:
        label = self.namespace(namespace)
        self.requests.labels(label, type or "none", outcome).inc()
        if seconds is not None:
            self.responder_seconds.labels(label).observe(seconds)

    def query_sent(self) -> None:
        self.queries_pending.inc()

    def query_ended(self, outcome: str) -> None:
        self.queries_pending.dec()
        self.queries.labels(outcome).inc()

    def set_connected(self, jid: str, connected: bool) -> None:
        self.connected.labels(jid).set(1 if connected else 0)

    def reconnect_scheduled(self) -> None:
        self.reconnects.inc()

    def set_privileges(self, privileges: Privileges) -> None:
        """What ``privileges`` (component/privilege.py) says, in place of what its server said before to that name."""
        self.forget_privileges(privileges.server, privileges.jid)
        granted = [("roster", privileges.roster), ("message", privileges.message), ("presence", privileges.presence)]
        granted += [(f"iq:{namespace}", type) for namespace, type in privileges.iq.items()]
        for access, type in granted:
            self.privileges.labels(privileges.server, privileges.jid, access, type).set(1)

    def _privilege_labels(self, server: str, jid: str) -> Iterator[tuple[str, str, str, str]]:
        for metric in self.privileges.collect():
            for sample in metric.samples:
                labels = sample.labels
                if labels["server"] == server and labels["jid"] == jid:
                    yield (server, jid, labels["access"], labels["type"])

    def forget_privileges(self, server: str, jid: str) -> None:
        """The stream under ``jid`` is gone: what ``server`` granted it no longer holds."""
        for labels in list(self._privilege_labels(server, jid)):
            self.privileges.remove(*labels)

    def set_delegation(self, server: str, namespace: str) -> None:
        self.delegations.labels(server, namespace).set(1)

    def clear_delegations(self) -> None:
        self.delegations.clear()


class NoMetrics:
    """Metrics switched off: every call does nothing, at the cost of a method call."""

    def request(self, namespace: str | None, type: str, outcome: str, seconds: float | None = None) -> None:
        pass

    def query_sent(self) -> None:
        pass

    def query_ended(self, outcome: str) -> None:
        pass

    def set_connected(self, jid: str, connected: bool) -> None:
        pass

    def reconnect_scheduled(self) -> None:
        pass

    def set_privileges(self, privileges: Privileges) -> None:
        pass

    def forget_privileges(self, server: str, jid: str) -> None:
        pass

    def set_delegation(self, server: str, namespace: str) -> None:
        pass

    def clear_delegations(self) -> None:
        pass


def metrics_service(metrics: Metrics, endpoint: str) -> Service:
    """A service that serves ``/metrics`` on the Twisted server endpoint string ``endpoint``."""
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=metrics.registry))
    site = Site(root)
    site.noisy = False
    return endpoint_service(endpoint, site)
