"""Service discovery through each real server, parsed by slixmpp's XEP-0030 client, hashed by its XEP-0115."""

import pytest
from slixmpp.exceptions import IqError

pytestmark = pytest.mark.integration

SERVERINFO = "http://jabber.org/network/serverinfo"

PUBLISHER = """
from component import DiscoInfo, Identity, Item


def setup(component, options):
    disco = component.disco
    disco.add_feature("urn:example:declared")
    disco.mount(
        "stations",
        identities=[Identity("hierarchy", "branch", "Stations")],
        features=["urn:example:weather"],
        items=[Item("iq.localhost", "station/oslo", "Oslo")],
    )
    disco.add_identity(Identity("client", "bot", "Weather bot"), jid="bot@iq.localhost")
    disco.provide(
        info=lambda request: DiscoInfo((Identity("hierarchy", "leaf", f"asked by {request.sender.userhost()}"),)),
        node="whoami",
    )
"""


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("disco-handlers")
    (directory / "publisher.py").write_text(PUBLISHER)
    return directory


@pytest.fixture(scope="module")
def extra_config():
    return """
[disco]
identities = [{ category = "component", type = "generic", name = "iqresponder" }]
items = [{ jid = "pubsub.localhost", name = "Publish-Subscribe" }, { jid = "iq.localhost", node = "stations" }]

[[disco.extended]]
form_type = "http://jabber.org/network/serverinfo"
abuse-addresses = ["mailto:abuse@localhost"]
admin-addresses = ["xmpp:admin@localhost", "mailto:admin@localhost"]
"""


def info(client, jid="iq.localhost", node=None):
    return client.call(client.xmpp.plugin["xep_0030"].get_info, jid=jid, node=node, timeout=10)


def items(client, jid="iq.localhost", node=None):
    return client.call(client.xmpp.plugin["xep_0030"].get_items, jid=jid, node=node, timeout=10)


def test_domain_info_identities_features_and_extended_form(client):
    disco = info(client)["disco_info"]
    assert disco["identities"] == {("component", "generic", None, "iqresponder")}
    features = disco.get_features(dedupe=False)  # as sent: in document order, duplicates kept
    assert features == sorted(set(features))
    assert {"http://jabber.org/protocol/disco#info", "urn:xmpp:ping", "urn:example:declared"} <= set(features)
    form = disco["form"]
    assert form["values"]["FORM_TYPE"] == [SERVERINFO]
    assert form.get_fields()["FORM_TYPE"]["type"] == "hidden"
    assert form["values"]["abuse-addresses"] == ["mailto:abuse@localhost"]
    assert form["values"]["admin-addresses"] == ["xmpp:admin@localhost", "mailto:admin@localhost"]


def test_domain_items_from_configuration(client):
    found = set(items(client)["disco_items"]["items"])
    assert found == {("pubsub.localhost", None, "Publish-Subscribe"), ("iq.localhost", "stations", None)}


def test_static_node_info_and_items_echo_the_node(client):
    reply = info(client, node="stations")
    assert reply["disco_info"]["node"] == "stations"
    assert reply["disco_info"]["identities"] == {("hierarchy", "branch", None, "Stations")}
    assert items(client, node="stations")["disco_items"]["items"] == {("iq.localhost", "station/oslo", "Oslo")}


def test_provider_node_answers_per_requester(client):
    assert info(client, node="whoami")["disco_info"]["identities"] == {
        ("hierarchy", "leaf", None, "asked by alice@localhost")
    }


def test_per_jid_answer_and_a_jid_nobody_claimed(client):
    bot = info(client, jid="bot@iq.localhost")["disco_info"]
    assert bot["identities"] == {("client", "bot", None, "Weather bot")}
    unclaimed = info(client, jid="nobody@iq.localhost")["disco_info"]
    assert unclaimed["identities"] == info(client)["disco_info"]["identities"]
    assert unclaimed["features"] == info(client)["disco_info"]["features"]


def test_unknown_node_is_item_not_found(client):
    with pytest.raises(IqError) as raised:
        info(client, node="nowhere")
    assert raised.value.condition == "item-not-found"


def test_xep_0115_hashes_our_reply_the_same_twice_and_accepts_it(client):
    caps = client.xmpp.plugin["xep_0115"]
    first = caps.generate_verstring(info(client)["disco_info"], "sha-1")
    second_reply = info(client)["disco_info"]
    second = caps.generate_verstring(second_reply, "sha-1")
    assert first == second and first
    assert client.call(caps._validate_caps, second_reply, "sha-1", first) is True


def test_the_server_lists_the_component_in_its_own_disco_items(client):
    found = items(client, jid="localhost")["disco_items"]["items"]
    assert "iq.localhost" in {jid for jid, _node, _name in found}
