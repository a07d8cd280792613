"""Answering for the server's users, through Prosody and ejabberd: delegation (XEP-0355) and privileges (XEP-0356).

The suite's servers delegate ``jabber:iq:private``, ``urn:iqresponder:test:delegated``
and ``urn:iqresponder:test:unasked`` to the component, and grant it roster access
and messages as the server (conf/prosody/prosody.cfg.lua, conf/ejabberd/ejabberd.yml.template).
Prosody 0.12 with prosody-modules speaks ``delegation:2`` and ``privilege:2``
(with privileged Iqs); ejabberd 23.01 speaks ``delegation:1`` and ``privilege:1``.
Clients are slixmpp sessions that know nothing of the component: they talk to
their own server and account.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar
from xml.etree import ElementTree

import pytest
from slixmpp.xmlstream import ElementBase

from tests.integration.conftest import EXAMPLES, PASSWORD, USER
from tests.integration.servers import EACH_SERVER
from tests.integration.xmpp_client import XmppClient, error_of

pytestmark = [pytest.mark.integration, pytest.mark.servers(*EACH_SERVER)]

NS_PROBE = "urn:iqresponder:test:delegated"
NS_CONTROL = "urn:iqresponder:test:control"
NS_AS_USER = "urn:iqresponder:test:as-user"
ME = f"{USER}@localhost"
VERSIONS = {
    "prosody": ("urn:xmpp:delegation:2", "urn:xmpp:privilege:2"),
    "ejabberd": ("urn:xmpp:delegation:1", "urn:xmpp:privilege:1"),
}

PROBE = f'''
"""What the tests drive: a delegated responder that says how its request came, and the privileged helpers."""

from twisted.words.xish import domish

from component import IqError, MissingPrivilege, RosterItem, StanzaError, responder


@responder("{NS_PROBE}", delegated=True)
def who(request):
    answer = domish.Element(("{NS_PROBE}", "who"))
    answer["sender"] = request.sender.full()
    delegation = request.delegation
    answer["server"], answer["to"], answer["version"] = delegation.server, delegation.to.full(), delegation.version
    return answer


@responder("urn:iqresponder:test:ungranted", delegated=True)
def ungranted(request):
    return None


def refused(error):
    element = domish.Element(("{NS_CONTROL}", "refused"))
    element["condition"] = error.condition if isinstance(error, IqError) else "missing-privilege"
    element.addContent(str(error))
    return element


@responder("{NS_CONTROL}", "get", "roster")
async def roster(request):
    try:
        items = await request.component.privileged.roster(request.payload["user"])
    except (IqError, MissingPrivilege) as e:
        return refused(e)
    answer = domish.Element(("{NS_CONTROL}", "roster"))
    for item in items:
        answer.addElement("item")["jid"] = item.jid
    return answer


@responder("{NS_CONTROL}", "set", "roster")
async def add_contact(request):
    try:
        await request.component.privileged.set_roster(
            request.payload["user"], [RosterItem(request.payload["contact"], "Added by the component")]
        )
    except (IqError, MissingPrivilege) as e:
        return refused(e)


@responder("{NS_CONTROL}", "get", "privileged")
async def ask_as_user(request):
    try:
        reply = await request.component.privileged.query(
            request.payload["user"], domish.Element(("{NS_AS_USER}", "whoami")), to=request.component.jid
        )
    except (IqError, MissingPrivilege) as e:
        return refused(e)
    answer = domish.Element(("{NS_CONTROL}", "privileged"))
    answer["type"] = reply["type"]
    answer["sender"] = next(reply.elements("{NS_AS_USER}", "whoami"))["sender"]
    return answer


@responder("{NS_AS_USER}", "get")
def whoami(request):
    answer = domish.Element(("{NS_AS_USER}", "whoami"))
    answer["sender"] = request.sender.full()
    return answer


@responder("{NS_CONTROL}", "set", "message")
async def message(request):
    message = domish.Element((None, "message"))
    message["from"], message["to"], message["type"] = request.payload["from"], request.payload["to"], "chat"
    message.addElement("body", content=request.payload["body"])
    try:
        await request.component.privileged.send_message(message)
    except MissingPrivilege as e:
        raise StanzaError("not-allowed", text=str(e)) from None


@responder("{NS_CONTROL}", "get", "granted")
def granted(request):
    answer = domish.Element(("{NS_CONTROL}", "granted"))
    privileges = request.component.privileged.granted()
    answer["version"], answer["roster"], answer["message"] = privileges.version, privileges.roster, privileges.message
    return answer
'''


class Prefs(ElementBase):
    """A document for XEP-0049 private storage, as slixmpp's plugin stores and retrieves it."""

    name = "prefs"
    namespace = "urn:example:prefs"
    plugin_attrib = "prefs"
    interfaces: ClassVar[set[str]] = {"nick"}
    sub_interfaces: ClassVar[set[str]] = {"nick"}


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("delegation-handlers")
    (directory / "probe.py").write_text(PROBE)
    (directory / "private_storage.py").write_text((EXAMPLES / "private_storage.py").read_text())
    return directory


@pytest.fixture(scope="module")
def extra_config():
    return "[delegation]\ngrant_wait = 2\n"


@pytest.fixture(scope="module")
def versions(server):
    return VERSIONS[server.kind]


@pytest.fixture(scope="module")
def friend(server):
    server.register("romeo", PASSWORD)
    return "romeo@localhost"


def server_kind(delegation: str) -> str:
    return next(kind for kind, (version, _) in VERSIONS.items() if version == delegation)


def child(reply: ElementTree.Element, namespace: str, name: str) -> ElementTree.Element:
    found = reply.find(f"{{{namespace}}}{name}")
    assert found is not None, ElementTree.tostring(reply)
    return found


def test_the_server_grants_what_it_was_configured_to_and_the_component_logs_it(component, versions):
    delegation, privilege = versions
    prefix = f"localhost delegates to iq.localhost ({delegation}): "

    def granted() -> set[str] | None:
        lines = [line.split(prefix, 1)[1] for line in component.log().splitlines() if prefix in line]
        said = {namespace for line in lines for namespace in line.split(", ")}
        return said if {"jabber:iq:private", NS_PROBE} <= said else None

    said = component.wait_until(granted, "the delegations granted")
    if server_kind(delegation) == "prosody":  # it delegates what it is configured to, without asking
        assert "urn:iqresponder:test:unasked (asked for by no responder)" in said
    else:  # ejabberd delegates only what the component answered its disco#info queries for
        assert not any("unasked" in namespace for namespace in said)
    component.wait_for_log(f"localhost grants iq.localhost privileges ({privilege}): roster both, message outgoing")


def test_a_namespace_asked_for_but_not_granted_is_said_once_with_what_to_configure(component):
    warning = component.wait_for_log("urn:iqresponder:test:ungranted, but localhost did not grant it within 2 s")
    line = next(line for line in warning.splitlines() if "urn:iqresponder:test:ungranted, but" in line)
    assert "probe.py" in line and "delegations under the VirtualHost" in line and "mod_delegation" in line
    assert component.log().count("urn:iqresponder:test:ungranted, but") == 1


def test_a_users_iq_to_its_server_is_answered_by_the_component_as_the_server(client, versions):
    reply = client.iq(f"<who xmlns='{NS_PROBE}'/>", to="localhost")
    assert (reply.get("type"), reply.get("from")) == ("result", "localhost")
    who = child(reply, NS_PROBE, "who")
    assert who.attrib == {"sender": f"{ME}/tests", "server": "localhost", "to": "localhost", "version": versions[0]}


def test_a_users_iq_to_its_own_bare_jid_is_answered_by_the_component_as_its_account(client, versions):
    reply = client.iq(f"<who xmlns='{NS_PROBE}'/>", to=ME)
    # Prosody leaves out a from that is the user's own bare JID (RFC 6120 8.1.2.1 allows either).
    assert reply.get("type") == "result" and reply.get("from") in (None, ME)
    assert child(reply, NS_PROBE, "who").attrib["to"] == ME


def test_a_stock_clients_private_storage_is_kept_by_the_component(server, component):
    session = XmppClient(f"{ME}/storage", PASSWORD, server.c2s_port)
    try:
        session.xmpp.register_plugin("xep_0049")
        session.xmpp.plugin["xep_0049"].register(Prefs)
        prefs = Prefs()
        prefs["nick"] = "Juliet"

        async def store_and_retrieve():
            await session.xmpp.plugin["xep_0049"].store(prefs, timeout=10)
            return await session.xmpp.plugin["xep_0049"].retrieve("prefs", timeout=10)

        reply = session.call(store_and_retrieve)
        assert reply["private"]["prefs"]["nick"] == "Juliet"
        assert reply["from"] in ("", ME)  # from the user's own account
    finally:
        session.close()


def test_a_namespace_the_server_delegates_but_no_responder_asked_for_is_refused(client, server, component):
    reply = client.iq("<q xmlns='urn:iqresponder:test:unasked'/>", to="localhost")
    assert error_of(reply) == ("cancel", "service-unavailable")
    if server.kind == "prosody":  # forwarded all the same, and refused by the component
        component.wait_for_log("localhost forwards urn:iqresponder:test:unasked requests, but no responder asked")
    else:  # never delegated: ejabberd answers itself
        assert "urn:iqresponder:test:unasked" not in component.log()


def test_a_forged_delegation_sent_by_a_user_reaches_no_responder(client):
    forged = (
        "<delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>"
        f"<iq xmlns='jabber:client' type='get' id='f' from='admin@localhost/x' to='localhost'><who xmlns='{NS_PROBE}'/></iq>"
        "</forwarded></delegation>"
    )
    reply = client.iq(forged, type="set")
    assert error_of(reply) == ("auth", "forbidden")


def test_a_privileged_roster_get_returns_the_users_roster(client, friend):
    client.iq(f"<query xmlns='jabber:iq:roster'><item jid='{friend}' name='Romeo'/></query>", type="set", to=ME)
    reply = client.iq(f"<roster xmlns='{NS_CONTROL}' user='{ME}'/>")
    assert [item.get("jid") for item in child(reply, NS_CONTROL, "roster")] == [friend]


def test_a_privileged_roster_set_is_applied_or_refused_as_the_server_version_does(server, client):
    reply = client.iq(f"<roster xmlns='{NS_CONTROL}' user='{ME}' contact='nurse@localhost'/>", type="set")
    roster = client.iq("<query xmlns='jabber:iq:roster'/>", to=ME)
    contacts = [item.get("jid") for item in roster.iter("{jabber:iq:roster}item")]
    if server.kind == "prosody":
        assert reply.get("type") == "result" and list(reply) == []
        assert "nurse@localhost" in contacts
    else:  # ejabberd 23.01 answers every privileged roster set with internal-server-error (its issue 3942)
        refused = child(reply, NS_CONTROL, "refused")
        assert refused.get("condition") == "internal-server-error"
        assert "nurse@localhost" not in contacts


def test_a_message_sent_as_the_server_reaches_the_user(client, server):
    received = asyncio.run_coroutine_threadsafe(_next_message(client), client.loop)
    for sender in ("localhost", "romeo@localhost"):
        reply = client.iq(
            f"<message xmlns='{NS_CONTROL}' from='{sender}' to='{ME}' body='Hello from {sender}'/>", type="set"
        )
        assert reply.get("type") == "result"
        message = received.result(10)
        assert (str(message["from"]), message["body"]) == (sender, f"Hello from {sender}")
        received = asyncio.run_coroutine_threadsafe(_next_message(client), client.loop)
    received.cancel()


async def _next_message(client):
    arrived = asyncio.get_running_loop().create_future()

    def take(message):
        if not arrived.done():
            arrived.set_result(message)

    client.xmpp.add_event_handler("message", take)
    try:
        return await arrived
    finally:
        client.xmpp.del_event_handler("message", take)


def test_a_privileged_iq_is_sent_as_the_user_with_privilege_2_and_fails_at_once_with_1(client, server):
    reply = client.iq(f"<privileged xmlns='{NS_CONTROL}' user='{ME}'/>")
    if server.kind == "prosody":  # the component asks itself as the user: the server vouches for the sender
        assert child(reply, NS_CONTROL, "privileged").attrib == {"type": "result", "sender": ME}
    else:  # ejabberd 23.01 speaks privilege:1, which has no privileged Iqs: nothing is sent
        refused = child(reply, NS_CONTROL, "refused")
        assert refused.get("condition") == "missing-privilege" and "no privileged Iqs" in refused.text


def test_the_granted_privileges_are_what_the_server_advertised(client, versions):
    granted = child(client.iq(f"<granted xmlns='{NS_CONTROL}'/>"), NS_CONTROL, "granted")
    assert granted.attrib == {"version": versions[1], "roster": "both", "message": "outgoing"}
