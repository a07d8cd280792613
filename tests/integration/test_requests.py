"""Against each real server: a slixmpp client's Iqs reach the component under twistd and get the right replies."""

import asyncio
from xml.etree import ElementTree

import pytest

from tests.integration.xmpp_client import error_of

pytestmark = pytest.mark.integration

DISCO_INFO = "http://jabber.org/protocol/disco#info"
CLIENT_JID = "alice@localhost/tests"


def payload(reply):
    children = list(reply)
    assert len(children) == 1, ElementTree.tostring(reply)
    return children[0]


def addressed(reply, frm="iq.localhost"):
    assert reply.get("from") == frm and reply.get("to") == CLIENT_JID, ElementTree.tostring(reply)
    return reply


def test_disco_info_lists_the_identity_and_the_served_features(client):
    reply = addressed(client.iq(f"<query xmlns='{DISCO_INFO}'/>"))
    assert reply.get("type") == "result"
    query = payload(reply)
    identities = [(i.get("category"), i.get("type"), i.get("name")) for i in query.iter(f"{{{DISCO_INFO}}}identity")]
    features = [f.get("var") for f in query.iter(f"{{{DISCO_INFO}}}feature")]
    assert identities == [("component", "generic", "iqresponder")]
    assert features == sorted(
        {
            DISCO_INFO,
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/commands",  # the bundled admin commands
            "jabber:iq:version",
            "urn:xmpp:ping",
            "urn:xmpp:time",
            "custom-xep",
        }
    )


def test_disco_info_parsed_by_slixmpp_xep_0030(client):
    async def ask():
        return await client.xmpp.plugin["xep_0030"].get_info(jid="iq.localhost", timeout=10)

    info = asyncio.run_coroutine_threadsafe(ask(), client.loop).result(15)
    assert "urn:xmpp:ping" in info["disco_info"]["features"]
    assert ("component", "generic", None, "iqresponder") in info["disco_info"]["identities"]


def test_version(client):
    query = payload(addressed(client.iq("<query xmlns='jabber:iq:version'/>")))
    assert query.findtext("{jabber:iq:version}name") == "iqresponder"
    assert query.findtext("{jabber:iq:version}version")


def test_ping(client):
    reply = addressed(client.iq("<ping xmlns='urn:xmpp:ping'/>"))
    assert reply.get("type") == "result" and list(reply) == []


def test_time(client):
    element = payload(addressed(client.iq("<time xmlns='urn:xmpp:time'/>")))
    assert element.findtext("{urn:xmpp:time}utc").endswith("Z")
    assert element.findtext("{urn:xmpp:time}tzo")[0] in "+-"


def test_custom_set_then_get_from_the_handler_directory_the_test_wrote(client):
    stored = client.iq("<query xmlns='custom-xep'><item key='colour'>teal</item></query>", type="set")
    assert addressed(stored).get("type") == "result"
    query = payload(addressed(client.iq("<query xmlns='custom-xep'><item key='colour'/></query>")))
    item = query.find("{custom-xep}item")
    assert (item.get("key"), item.text) == ("colour", "teal")


def test_custom_get_of_a_missing_key_is_the_responders_stanza_error(client):
    reply = addressed(client.iq("<query xmlns='custom-xep'><item key='absent'/></query>"))
    assert error_of(reply) == ("cancel", "item-not-found")


def test_unknown_namespace_is_service_unavailable(client):
    assert error_of(addressed(client.iq("<query xmlns='urn:example:nobody-serves-this'/>"))) == (
        "cancel",
        "service-unavailable",
    )


# Prosody 0.12 checks the child count of a client's Iq get/set itself and answers bad-request
# ("Incorrect number of children for IQ stanza") before routing it, without a 'to'. What the
# client sees is still the RFC's answer; the component's own handling of these stanzas, arriving
# on its stream, is covered by tests/unit/test_router.py.
def test_get_without_payload_is_bad_request(client):
    reply = client.iq("")
    assert reply.get("from") == "iq.localhost"
    assert error_of(reply) == ("modify", "bad-request")


def test_get_with_two_payloads_is_bad_request(client):
    reply = client.iq("<ping xmlns='urn:xmpp:ping'/><time xmlns='urn:xmpp:time'/>")
    assert reply.get("from") == "iq.localhost"
    assert error_of(reply) == ("modify", "bad-request")


@pytest.mark.parametrize("to", ["user@iq.localhost", "iq.localhost/res"])
def test_iq_to_an_address_under_the_component_is_answered_from_that_address(client, to):
    reply = addressed(client.iq("<ping xmlns='urn:xmpp:ping'/>", to=to), frm=to)
    assert reply.get("type") == "result"


def test_the_secret_never_appears_in_the_log(component, secret_file, client):
    client.iq("<ping xmlns='urn:xmpp:ping'/>")
    assert "Authenticated as iq.localhost" in component.log()
    assert secret_file.read_text() not in component.log()
