"""XEP-0355 namespace delegation: the server's users' Iqs in a namespace, answered by ordinary responders.

A server delegates a namespace to the component: it forwards each of its users'
Iqs in that namespace, addressed to the server itself or to a user's bare JID,
wrapped in ``<delegation><forwarded>``, and sends the component's answer on to
the user as its own. Two versions of the protocol are in use, and both are
served here, each answered in the version it came in:

- ``urn:xmpp:delegation:1``: ejabberd's built-in ``mod_delegation`` (23.01).
  At connection time it asks the component for disco#info on the nodes
  ``urn:xmpp:delegation:1::NS`` (the server) and ``urn:xmpp:delegation:1:bare:NS``
  (its users' bare JIDs), and delegates each only once that is answered.
- ``urn:xmpp:delegation:2``: Prosody's ``mod_delegation`` (prosody-modules).
  It asks the same with ``:2``, but advertises without waiting for the answers.

The component answers those nodes for each namespace it asks to have delegated
(a responder declared with ``delegated=True``, or ``[delegation] namespaces``)
with the features of the responders for it. A forwarded Iq is unwrapped into
the router's ordinary path: access rules, rate limits and the responder see the
original user as the sender, and ``request.delegation`` says who forwarded it
and for which address. The reply is wrapped on the way out by
``DelegatedLink``.

Only a trusted server may forward: ``[delegation] servers``, by default the
server's own domain. Anyone else could wrap a forged Iq "from" any user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from component.addresses import InvalidFormat, parse_jid
from component.discovery import DiscoInfo, Discovery
from component.errors import StanzaError
from component.serializer import escape_attribute
from component.stream import NS_CLIENT, NS_FORWARD

if TYPE_CHECKING:
    from component.metrics import Metrics, NoMetrics
    from component.request import Request
    from component.router import Router
    from component.stream import ReplyLink

NS_DELEGATION_1 = "urn:xmpp:delegation:1"
"""ejabberd's version (built-in ``mod_delegation``)."""
NS_DELEGATION_2 = "urn:xmpp:delegation:2"
"""Prosody's version (``mod_delegation`` from prosody-modules)."""
DELEGATION_VERSIONS = (NS_DELEGATION_1, NS_DELEGATION_2)

NOT_FROM_SERVER = StanzaError("forbidden", text="Only the server forwards delegated requests")
BAD_WRAPPER = StanzaError("bad-request", text="A delegation forwards exactly one Iq get or set from the server's users")
NOT_DELEGATED = StanzaError("service-unavailable")


@dataclass(frozen=True)
class Delegation:
    """How a delegated request reached the component: ``request.delegation`` (``None`` for any other request)."""

    server: str
    """The server that forwarded it, as a domain."""
    to: JID
    """Where the user sent it: the server itself, or a user's bare JID on it (the sender's own when it named none)."""
    version: str
    """The delegation namespace it came in, ``urn:xmpp:delegation:1`` or ``:2``; the reply goes back in the same."""

    @property
    def bare(self) -> bool:
        """Whether it was sent to a user's bare JID rather than to the server itself."""
        return self.to.user is not None


def _always(info: DiscoInfo) -> Callable[[Request], DiscoInfo]:
    """A disco#info provider that answers ``info`` to every request."""
    return lambda request: info


def delegation_nodes(namespace: str) -> tuple[str, ...]:
    """The disco#info nodes a server asks about before it delegates ``namespace``: both versions, server and bare."""
    return tuple(
        f"{version}{separator}{namespace}" for version in DELEGATION_VERSIONS for separator in ("::", ":bare:")
    )


class DelegatedLink:
    """Where the reply to a delegated request goes: wrapped as the server expects, on the link the server used.

    The router writes every reply with its request's link, as text that starts
    with ``<iq`` (component/router.py); this link puts the ``jabber:client``
    namespace on it and the server's ``<delegation><forwarded>`` around it, as
    the result of the server's own Iq. An error of the user's request is an
    error *inside* the wrapper: the server passes it on to the user as it is.
    """

    __slots__ = ("_end", "_link", "_start", "delegation", "jid")

    def __init__(self, link: ReplyLink, wrapper_iq: domish.Element, delegation: Delegation) -> None:
        self._link = link
        self.delegation = delegation
        self.jid = delegation.to.full()
        attributes = wrapper_iq.attributes
        start = (
            f"<iq type='result' id='{escape_attribute(attributes['id'])}' to='{escape_attribute(delegation.server)}'"
        )
        if "to" in attributes:
            start += f" from='{escape_attribute(attributes['to'])}'"
        self._start = f"{start}><delegation xmlns='{delegation.version}'><forwarded xmlns='{NS_FORWARD}'>"
        self._end = "</forwarded></delegation></iq>"

    def send(self, reply: str) -> bool:
        """Write the reply to the user's Iq (``<iq ...>...</iq>`` text, as the router writes it), wrapped."""
        return self._link.send(f"{self._start}<iq xmlns='{NS_CLIENT}'{reply[3:]}{self._end}")

    def __repr__(self) -> str:
        return f"<delegated by {self.delegation.server} for {self.jid}>"


class Delegations:
    """What the component asks servers to delegate, what they granted, and the unwrapping of what they forward.

    ``asked()`` gives the namespaces to ask for, each with where it was asked
    (a module's file, or the configuration). ``servers`` are the domains
    trusted to forward. ``grant_wait`` is how long after a connection a
    namespace may go without being granted before the component says so.
    """

    log = Logger()

    def __init__(
        self,
        asked: Callable[[], Mapping[str, str]],
        servers: Iterable[str],
        clock: IReactorTime,
        grant_wait: float = 10.0,
        metrics: Metrics | NoMetrics | None = None,
        jid: str = "",
    ) -> None:
        self._asked = asked
        self.servers = frozenset(servers)
        self._clock = clock
        self.grant_wait = grant_wait
        self._metrics = metrics
        self.jid = jid
        self.granted: dict[str, dict[str, str]] = {}
        """By server: each namespace it advertised delegating to the component, with the version it used."""
        self._warned: set[str] = set()  # namespaces already said not to be granted, said once per process
        self._refused: set[tuple[str, str]] = set()  # (server, namespace) forwarded but never asked for
        self._strangers_said = False  # an untrusted advertisement is a warning once, then a debug line
        self._check: IDelayedCall | None = None
        self._asked_now: Mapping[str, str] | None = None

    @property
    def asked(self) -> Mapping[str, str]:
        """The namespaces the component asks to have delegated, each with where it was asked (as last published)."""
        if self._asked_now is None:
            self._asked_now = dict(self._asked())
        return self._asked_now

    # Service discovery: the nodes the server asks about before it delegates.

    def publish(self, disco: Discovery) -> None:
        """Answer the servers' disco#info on the delegation nodes of every namespace asked for.

        Called once the handler modules are loaded (again after a reload): what
        is asked for is read then, not on every forwarded request.
        """
        self._asked_now = dict(self._asked())
        for namespace in self.asked:
            answer = _always(DiscoInfo(features=(namespace,)))
            for node in delegation_nodes(namespace):
                disco.provide(info=answer, node=node)

    # Advertisements.

    def connected(self) -> None:
        """The component's stream is up: the servers advertise again; check after ``grant_wait`` what they granted."""
        self.disconnected()
        if self.asked:
            self._check = self._clock.callLater(self.grant_wait, self.check_granted)

    def disconnected(self) -> None:
        """The component's stream is gone, or the component stops: what was granted is no longer."""
        self.granted = {}
        if self._metrics is not None:
            self._metrics.clear_delegations()
        if self._check is not None and self._check.active():
            self._check.cancel()
        self._check = None

    def advertised(self, server: str | None, delegation: domish.Element) -> None:
        """A server's ``<delegation/>`` advertisement (in a message from ``server``): note and log what it granted."""
        if server not in self.servers:
            # Anyone can send the component a message: said once as a warning, then only for debugging.
            log = self.log.debug if self._strangers_said else self.log.warn
            self._strangers_said = True
            log(
                "Ignored a delegation advertisement from {server}, which is not in [delegation] servers ({servers})",
                server=server,
                servers=", ".join(sorted(self.servers)),
            )
            return
        granted = self.granted.setdefault(server, {})
        new = []
        for delegated in delegation.elements(delegation.uri, "delegated"):
            namespace = delegated.getAttribute("namespace")
            if namespace and namespace not in granted:
                granted[namespace] = delegation.uri
                new.append(namespace)
                if self._metrics is not None:
                    self._metrics.set_delegation(server, namespace)
        if not new:
            return
        asked = self.asked
        self.log.info(
            "{server} delegates to {jid} ({version}): {namespaces}",
            server=server,
            jid=self.jid,
            version=delegation.uri,
            namespaces=", ".join(f"{ns}" + ("" if ns in asked else " (asked for by no responder)") for ns in new),
        )
        for namespace in new:
            if namespace in self._warned:
                self._warned.discard(namespace)
                self.log.info("Delegation of {namespace} is granted now", namespace=namespace)

    def check_granted(self) -> None:
        """Say once, for each namespace asked for and granted by no server, what to configure on the server."""
        self._check = None
        granted = {namespace for namespaces in self.granted.values() for namespace in namespaces}
        for namespace, origin in sorted(self.asked.items()):
            if namespace in granted or namespace in self._warned:
                continue
            self._warned.add(namespace)
            self.log.warn(
                "{origin} asks for delegation of {namespace}, but {servers} did not grant it within {wait:g} s; "
                'on Prosody, enable "delegation" globally and in the Component section and add '
                '["{namespace}"] = {{ jid = "{jid}" }} to delegations under the VirtualHost; '
                "on ejabberd, add {namespace} to mod_delegation's namespaces with an access rule that allows {jid}",
                origin=origin,
                namespace=namespace,
                servers=" or ".join(sorted(self.servers)),
                wait=self.grant_wait,
                jid=self.jid,
            )

    # Forwarded requests.

    def unwrap(self, iq: domish.Element, wrapper: domish.Element, link: ReplyLink, router: Router) -> None:
        """Hand the user's Iq forwarded in ``iq`` to ``router``, its reply to be wrapped; or answer ``iq`` itself.

        ``wrapper`` is the ``<delegation/>`` payload of ``iq``. Never raises.
        """
        server = iq.attributes.get("from")
        if server not in self.servers or isinstance(link, DelegatedLink):
            router.reply_error(link, iq, NOT_FROM_SERVER)
            return
        inner = _forwarded_iq(iq, wrapper)
        if inner is None:
            router.reply_error(link, iq, BAD_WRAPPER)
            return
        to = inner.attributes.get("to")
        try:
            user = parse_jid(inner.attributes["from"])
            recipient = parse_jid(to) if to else user.userhostJID()
        except InvalidFormat:
            router.reply_error(link, iq, BAD_WRAPPER)
            return
        if recipient.host != server or recipient.resource is not None:
            router.reply_error(link, iq, BAD_WRAPPER)
            return
        reply_link = DelegatedLink(link, iq, Delegation(server, recipient, wrapper.uri))
        payload = next(inner.elements(), None)
        namespace = payload.uri if payload is not None else None
        if namespace is not None and namespace not in self.asked:
            if (server, namespace) not in self._refused:
                self._refused.add((server, namespace))
                self.log.warn(
                    "{server} forwards {namespace} requests, but no responder asked for its delegation: answered "
                    "service-unavailable (declare the responder with delegated=True, or list it in "
                    "[delegation] namespaces)",
                    server=server,
                    namespace=namespace,
                )
            router.reply_error(reply_link, inner, NOT_DELEGATED)
            return
        if namespace is not None and namespace not in self.granted.get(server, ()):
            # An instance that shares its name may never see the advertisement: the request shows the grant.
            self.granted.setdefault(server, {})[namespace] = wrapper.uri
            if self._metrics is not None:
                self._metrics.set_delegation(server, namespace)
            if namespace in self._warned:
                self._warned.discard(namespace)
                self.log.info(
                    "{server} forwards {namespace} requests: its delegation is granted",
                    server=server,
                    namespace=namespace,
                )
        router.receive(inner, reply_link)


def _forwarded_iq(iq: domish.Element, wrapper: domish.Element) -> domish.Element | None:
    """The user's Iq in ``<delegation><forwarded><iq/>``, if the server's Iq is a set carrying exactly that."""
    if iq.attributes.get("type") != "set" or "id" not in iq.attributes:
        return None
    forwarded = _only_child(wrapper)
    if forwarded is None or forwarded.uri != NS_FORWARD or forwarded.name != "forwarded":
        return None
    inner = _only_child(forwarded)
    if inner is None or inner.uri != NS_CLIENT or inner.name != "iq":
        return None
    attributes = inner.attributes
    if attributes.get("type") not in ("get", "set") or "id" not in attributes or not attributes.get("from"):
        return None
    return inner


def _only_child(element: domish.Element) -> domish.Element | None:
    children = [child for child in element.children if child.__class__ is not str]
    return children[0] if len(children) == 1 else None
