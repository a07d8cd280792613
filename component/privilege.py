"""XEP-0356 privileged entity: what the server lets the component do for its users, and the helpers that do it.

A server that grants privileges advertises them in a ``<message/>`` once the
component is connected: roster access (``get``, ``set`` or ``both``), sending
messages on the server's behalf (``outgoing``), presence, and in
``urn:xmpp:privilege:2`` Iqs sent as a user, per namespace and type. Two
versions are in use:

- ``urn:xmpp:privilege:1``: ejabberd's built-in ``mod_privilege`` (23.01);
  roster get works, roster set fails with ``internal-server-error`` (ejabberd
  issue 3942), and there are no privileged Iqs (they came in 24.10).
- ``urn:xmpp:privilege:2``: Prosody's ``mod_privilege`` (prosody-modules).

Handlers use ``component.privileged`` (``Privileged``). Each helper checks the
advertised permission first and fails at once with ``MissingPrivilege``, which
names what is missing and where to grant it, instead of sending what the server
would refuse. Advertisements are accepted only from the trusted servers
(``[delegation] servers``, by default the server's own domain).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.words.xish import domish

from component.addresses import InvalidFormat, parse_jid
from component.errors import IqError, NotConnected, StanzaError
from component.stream import NS_CLIENT, NS_FORWARD
from component.tracker import random_id

if TYPE_CHECKING:
    from component.metrics import Metrics, NoMetrics
    from component.service import Component

NS_PRIVILEGE_1 = "urn:xmpp:privilege:1"
"""ejabberd's version (built-in ``mod_privilege``)."""
NS_PRIVILEGE_2 = "urn:xmpp:privilege:2"
"""Prosody's version (``mod_privilege`` from prosody-modules): adds privileged Iqs."""
PRIVILEGE_VERSIONS = (NS_PRIVILEGE_1, NS_PRIVILEGE_2)
NS_ROSTER = "jabber:iq:roster"

_GRANTS_GET = ("get", "both")
_GRANTS_SET = ("set", "both")


class MissingPrivilege(StanzaError):
    """The server did not grant the component what a helper of ``component.privileged`` needs.

    ``str()`` names the permission and where to grant it, for the log; a
    responder that lets it escape answers ``service-unavailable``, whose text
    says no more than that the service is not set up for it.
    """

    def __init__(self, explanation: str) -> None:
        super().__init__("service-unavailable", text="The service lacks the server's permission for this")
        self.explanation = explanation

    def __str__(self) -> str:
        return self.explanation


@dataclass(frozen=True)
class Privileges:
    """The permissions one server advertised to one of the component's names (``none`` for what it did not)."""

    server: str
    """The server that granted them."""
    jid: str = ""
    """The component's name they were advertised to (and that privileged stanzas go out under)."""
    version: str | None = None
    """``urn:xmpp:privilege:1`` or ``:2``; ``None`` when the server advertised nothing."""
    roster: str = "none"
    """``none``, ``get``, ``set`` or ``both``."""
    message: str = "none"
    """``none`` or ``outgoing``."""
    presence: str = "none"
    """``none``, ``managed_entity`` or ``roster``."""
    iq: Mapping[str, str] = field(default_factory=dict)
    """``privilege:2``: the namespaces Iqs may be sent in as a user, each with ``get``, ``set`` or ``both``."""

    def may_query(self, namespace: str, type: str) -> bool:
        """Whether a privileged Iq ``type`` in ``namespace`` may be sent as a user."""
        granted = self.iq.get(namespace)
        return granted == "both" or granted == type

    def describe(self) -> str:
        """One line: every permission, as the server said it."""
        iq = ", ".join(f"{namespace} ({type})" for namespace, type in sorted(self.iq.items())) or "none"
        return f"roster {self.roster}, message {self.message}, presence {self.presence}, iq {iq}"


def parse_advertisement(server: str, jid: str, privilege: domish.Element) -> Privileges:
    """The ``<privilege/>`` element of a server's advertisement, read into ``Privileges``.

    Prosody 0.12's ``mod_privilege`` nests each iq ``<namespace/>`` inside the
    one before it (it never closes them), so they are read at any depth.
    """
    values: dict[str, str] = {}
    iq: dict[str, str] = {}
    for perm in privilege.elements(privilege.uri, "perm"):
        access = perm.getAttribute("access")
        if access in ("roster", "message", "presence"):
            values[access] = perm.getAttribute("type") or "none"
        elif access == "iq":
            for namespace in _descendants(perm, privilege.uri, "namespace"):
                if namespace.getAttribute("ns") and namespace.getAttribute("type") in ("get", "set", "both"):
                    iq[namespace["ns"]] = namespace["type"]
    return Privileges(server, jid, privilege.uri, iq=iq, **values)


def _descendants(element: domish.Element, uri: str, name: str) -> Iterable[domish.Element]:
    for child in element.elements():
        if child.uri == uri and child.name == name:
            yield child
            yield from _descendants(child, uri, name)


@dataclass(frozen=True)
class RosterItem:
    """One contact of a user's roster (RFC 6121 section 2.1.2)."""

    jid: str
    name: str | None = None
    subscription: str = "none"
    """``none``, ``to``, ``from`` or ``both``; in a roster set, ``remove`` removes the contact."""
    ask: str | None = None
    groups: tuple[str, ...] = ()

    @classmethod
    def from_element(cls, item: domish.Element) -> RosterItem:
        return cls(
            jid=item.getAttribute("jid", ""),
            name=item.getAttribute("name"),
            subscription=item.getAttribute("subscription", "none"),
            ask=item.getAttribute("ask"),
            groups=tuple(str(group) for group in item.elements(NS_ROSTER, "group")),
        )

    def to_element(self) -> domish.Element:
        item = domish.Element((NS_ROSTER, "item"))
        item["jid"] = self.jid
        if self.name is not None:
            item["name"] = self.name
        if self.subscription == "remove":
            item["subscription"] = "remove"
        for group in self.groups:
            item.addElement("group", content=group)
        return item


class PrivilegeGrants:
    """What each trusted server advertised to each of the component's names; the service keeps one."""

    log = Logger()

    def __init__(self, servers: Iterable[str], metrics: Metrics | NoMetrics | None = None) -> None:
        self.servers = frozenset(servers)
        self._metrics = metrics
        self._grants: dict[tuple[str, str], Privileges] = {}
        self._strangers_said = False  # an untrusted advertisement is a warning once, then a debug line

    def advertised(self, server: str | None, jid: str, privilege: domish.Element) -> None:
        """A server's ``<privilege/>`` advertisement, in a message from ``server`` to the component's name ``jid``."""
        if server not in self.servers:
            # Anyone can send the component a message: said once as a warning, then only for debugging.
            log = self.log.debug if self._strangers_said else self.log.warn
            self._strangers_said = True
            log(
                "Ignored a privilege advertisement from {server}, which is not in [delegation] servers ({servers})",
                server=server,
                servers=", ".join(sorted(self.servers)),
            )
            return
        privileges = parse_advertisement(server, jid, privilege)
        self._grants[(server, jid)] = privileges
        self.log.info(
            "{server} grants {jid} privileges ({version}): {privileges}",
            server=server,
            jid=jid,
            version=privileges.version,
            privileges=privileges.describe(),
        )
        if self._metrics is not None:
            self._metrics.set_privileges(privileges)

    def forget(self, jid: str) -> None:
        """The stream under ``jid`` is gone: a server advertises again, perhaps otherwise, on the next one."""
        for key in [key for key in self._grants if key[1] == jid]:
            del self._grants[key]
            if self._metrics is not None:
                self._metrics.forget_privileges(*key)

    def of(self, server: str, jids: Iterable[str]) -> Privileges:
        """What ``server`` granted the first of ``jids`` it advertised to (nothing at all when it advertised none)."""
        for jid in jids:
            privileges = self._grants.get((server, jid))
            if privileges is not None:
                return privileges
        return Privileges(server, ", ".join(jids))


class Privileged:
    """``component.privileged``: the server's users' rosters, messages as the server, and Iqs as a user.

    Every helper checks what the user's server advertised and fails at once
    with ``MissingPrivilege`` if it did not grant what the helper needs. The
    others fail like ``component.query``: ``IqError``, ``IqTimeout``,
    ``NotConnected``.
    """

    def __init__(self, grants: PrivilegeGrants, service: Component) -> None:
        self._grants = grants
        self._service = service

    def granted(self, server: str | None = None) -> Privileges:
        """What ``server`` (by default the component's server) granted the component."""
        return self._grants.of(server or self._service.server_domain, self._names())

    def roster(self, user: str, timeout: float | None = None) -> Deferred[list[RosterItem]]:
        """Fires with ``user``'s roster, a list of ``RosterItem``; needs the roster permission ``get`` or ``both``."""
        return self._roster_query(user, "get", (), timeout).addCallback(_roster_items)

    def set_roster(self, user: str, items: Iterable[RosterItem], timeout: float | None = None) -> Deferred[None]:
        """Adds, changes or (with ``subscription="remove"``) removes contacts of ``user``'s roster.

        Needs the roster permission ``set`` or ``both``. Fires with None once
        the server has applied it. (ejabberd 23.01 answers every privileged
        roster set with ``internal-server-error``: its issue 3942.)
        """
        return self._roster_query(user, "set", items, timeout).addCallback(lambda _: None)

    def _roster_query(
        self, user: str, type: str, items: Iterable[RosterItem], timeout: float | None
    ) -> Deferred[domish.Element]:
        """A roster get or set on ``user``'s roster, once the roster permission allows it."""
        try:
            bare, privileges = self._user(user)
            allowed = privileges.roster in (_GRANTS_GET if type == "get" else _GRANTS_SET)
            what = f"reading {bare}'s roster" if type == "get" else f"changing {bare}'s roster"
            self._require(allowed, privileges, what, "roster", type, privileges.roster)
        except (MissingPrivilege, ValueError) as e:
            return fail(e)
        query = domish.Element((NS_ROSTER, "query"))
        for item in items:
            query.addChild(item.to_element())
        return self._query(privileges, bare, query, type, timeout)

    def send_message(self, message: domish.Element) -> Deferred[None]:
        """Send ``message`` on the server's behalf: its ``from`` is the server or one of its users' bare JIDs.

        Needs the message permission ``outgoing``. Fires with None once
        written; the server delivers it as its own, and answers nothing (a
        refusal comes back as an error message, logged with the id of the
        message that carried it). ``message`` itself is left as it was.
        """
        sender = message.getAttribute("from")
        try:
            sender_jid = parse_jid(sender) if sender else None
        except InvalidFormat:
            sender_jid = None
        if sender_jid is None or sender_jid.resource is not None:
            return fail(
                ValueError(
                    f"a message sent as the server needs a from: the server or a user's bare JID, not {sender!r}"
                )
            )
        if not message.getAttribute("to"):
            return fail(ValueError("a message sent as the server needs a to"))
        privileges = self._grants.of(sender_jid.host, self._names())
        try:
            self._require(
                privileges.message == "outgoing",
                privileges,
                f"sending a message as {sender}",
                "message",
                "outgoing",
                privileges.message,
            )
        except MissingPrivilege as e:
            return fail(e)
        inner = domish.Element((NS_CLIENT, "message"))
        inner.attributes = dict(message.attributes)
        inner.children = list(message.children)  # shared, not moved: the caller's message keeps its children
        outer = domish.Element((None, "message"))
        outer.attributes = {"from": privileges.jid, "to": privileges.server, "id": random_id()}
        outer.addElement((privileges.version, "privilege")).addElement((NS_FORWARD, "forwarded")).addChild(inner)
        if not self._service.send(outer):
            return fail(NotConnected(f"not connected: cannot send the message as {sender}"))
        return succeed(None)

    def query(
        self, user: str, payload: domish.Element, type: str = "get", to: str | None = None, timeout: float | None = None
    ) -> Deferred[domish.Element]:
        """Send an Iq as ``user`` (a bare JID on the server), to ``to`` (by default the user's own account).

        Fires with the response Iq (as the server forwarded it back) when it is
        a result, fails with ``IqError`` when it is an error. Needs
        ``urn:xmpp:privilege:2`` and the iq permission for the payload's
        namespace and ``type``.
        """
        try:
            bare, privileges = self._user(user)
            if privileges.version == NS_PRIVILEGE_1:
                raise MissingPrivilege(
                    f"sending an Iq as {bare}: {privileges.server} speaks {NS_PRIVILEGE_1}, which has no privileged "
                    f"Iqs (ejabberd has them from 24.10, with {NS_PRIVILEGE_2})"
                )
            self._require(
                privileges.may_query(payload.uri, type),
                privileges,
                f"sending an Iq {type} in {payload.uri} as {bare}",
                f"iq {payload.uri}",
                type,
                privileges.iq.get(payload.uri or "", "none"),
            )
        except (MissingPrivilege, ValueError) as e:
            return fail(e)
        inner = domish.Element((NS_CLIENT, "iq"))
        inner.attributes = {"type": type, "id": random_id(), "from": bare}
        if to is not None:
            inner["to"] = to
        inner.addChild(payload)
        wrapper = domish.Element((NS_PRIVILEGE_2, "privileged_iq"))
        wrapper.addChild(inner)
        return self._query(privileges, bare, wrapper, type, timeout).addCallback(_forwarded_response)

    def _names(self) -> tuple[str, ...]:
        """The name whose grants count: this instance's own when it has one.

        A query sent under the shared name may have its response delivered to
        another instance (ejabberd spreads stanzas across them), so with
        ``instance_jid`` only what the server granted that name is used.
        """
        service = self._service
        return (service.instance_jid,) if service.instance_jid else (service.jid,)

    def _user(self, user: str) -> tuple[str, Privileges]:
        try:
            jid = parse_jid(user)
        except InvalidFormat as e:
            raise ValueError(f"not a valid JID: {user!r} ({e})") from None
        if jid.user is None:
            raise ValueError(f"expected a user's JID, got the domain {user!r}")
        return jid.userhost(), self._grants.of(jid.host, self._names())

    @staticmethod
    def _require(granted: bool, privileges: Privileges, what: str, access: str, needed: str, have: str) -> None:
        """Raise ``MissingPrivilege`` unless ``granted``; ``have`` is what the server granted for ``access``."""
        if granted:
            return
        if privileges.version is None:
            raise MissingPrivilege(
                f"{what} needs the privilege {access} {needed}, but {privileges.server} advertised no privileges to "
                f"{privileges.jid or 'this component'} (is mod_privilege enabled for it, and granting that name?)"
            )
        raise MissingPrivilege(
            f"{what} needs the privilege {access} {needed}, but {privileges.server} granted {privileges.jid} "
            f"{access} {have} ({privileges.version}); grant it in Prosody's privileged_entities or ejabberd's "
            f"mod_privilege"
        )

    def _query(
        self, privileges: Privileges, to: str, payload: domish.Element, type: str, timeout: float | None
    ) -> Deferred[domish.Element]:
        return self._service.tracker.query(to, payload, type, timeout, sender=privileges.jid)


def _roster_items(reply: domish.Element) -> list[RosterItem]:
    query = next(reply.elements(NS_ROSTER, "query"), None)
    if query is None:
        return []
    return [RosterItem.from_element(item) for item in query.elements(NS_ROSTER, "item")]


def _forwarded_response(reply: domish.Element) -> domish.Element:
    """The Iq in the result's ``<privilege><forwarded>``; an error inside fails as ``IqError``."""
    privilege = next(reply.elements(NS_PRIVILEGE_2, "privilege"), None)
    forwarded = next(privilege.elements(NS_FORWARD, "forwarded"), None) if privilege is not None else None
    inner: domish.Element | None = next(forwarded.elements(NS_CLIENT, "iq"), None) if forwarded is not None else None
    if inner is None:
        raise IqError("undefined-condition", "cancel", "the server's answer forwarded no Iq", stanza=reply)
    if inner.getAttribute("type") == "error":
        raise IqError.from_stanza(inner)
    return inner
