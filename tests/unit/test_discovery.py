"""Service discovery (XEP-0030, XEP-0128): XML in, XML compared, for every level and failure."""

import textwrap
from pathlib import Path
from xml.etree import ElementTree

import pytest

from component import DiscoInfo, Form, Identity, IqError, Item
from component.dataforms import Field
from component.testing import InMemoryComponent, make_settings

ROOT = Path(__file__).parents[2]
BUNDLED = ROOT / "handlers"
INFO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"
CLIENT = "juliet@localhost/balcony"

PUBLISHER = """
from twisted.internet import defer

from component import DiscoInfo, Identity, Item, StanzaError, responder


@responder("urn:example:weather", "get")
def weather(request):
    return None


def setup(component, options):
    disco = component.disco
    disco.add_feature("urn:example:declared")
    disco.add_feature("urn:xmpp:ping")  # also served by a responder: listed once
    disco.add_identity(Identity("component", "generic", "iqresponder"))  # also configured: listed once
    disco.add_item(Item("iq.localhost", node="stations", name="Weather stations"))
    disco.mount(
        "stations",
        identities=[Identity("hierarchy", "branch", "Stations")],
        features=["urn:example:weather"],
        items=[Item("iq.localhost", "station/oslo", "Oslo"), Item("iq.localhost", "station/bergen", "Bergen")],
    )
    disco.provide(info=lambda request: DiscoInfo(
        (Identity("hierarchy", "leaf", f"for {request.sender.userhost()}"),), ("urn:example:plain",)
    ), node="plain")
    disco.provide(info=lambda request: defer.succeed(DiscoInfo((Identity("hierarchy", "leaf", "deferred"),))),
                  node="deferred")

    async def later(request):
        return DiscoInfo((Identity("hierarchy", "leaf", "async"),))

    disco.provide(info=later, node="async")

    async def items_for(request):
        return [Item(f"{request.sender.user}@iq.localhost", name="your own address")]

    disco.provide(items=items_for, node="mine")

    def broken(request):
        raise RuntimeError("provider bug")

    disco.provide(info=broken, items=broken, node="broken")
    disco.provide(info=lambda request: defer.Deferred(), node="stuck")

    def refuses(request):
        raise StanzaError("forbidden")

    disco.provide(info=refuses, node="private")
"""

CONFIGURED = make_settings(
    identities=(Identity("component", "generic", "iqresponder"),),
    disco_items=(Item("pubsub.localhost", name="Publish-Subscribe"), Item("iq.localhost", node="stations")),
    disco_forms=(
        Form.of(
            "http://jabber.org/network/serverinfo",
            {"abuse-addresses": ["mailto:abuse@example.org"], "admin-addresses": ["xmpp:admin@example.org"]},
        ),
    ),
    disco_provider_timeout=3.0,
)


@pytest.fixture
def harness(tmp_path):
    (tmp_path / "publisher.py").write_text(textwrap.dedent(PUBLISHER))
    return InMemoryComponent([BUNDLED, tmp_path], settings=CONFIGURED)


def canonical(xml: str) -> str:
    return ElementTree.canonicalize(xml_data=xml, strip_text=True)


def ask(harness, namespace, node=None, to="iq.localhost", sender=CLIENT):
    node_attribute = f" node='{node}'" if node is not None else ""
    replies = harness.receive(
        f"<iq type='get' id='d1' from='{sender}' to='{to}'><query xmlns='{namespace}'{node_attribute}/></iq>"
    )
    return replies


def payload_xml(replies) -> str:
    [reply] = replies
    assert reply["type"] == "result", reply.toXml()
    [query] = list(reply.elements())
    return canonical(query.toXml())


def error_condition(replies):
    [reply] = replies
    assert reply["type"] == "error", reply.toXml()
    [error] = [c for c in reply.elements() if c.name == "error"]
    [name] = [c.name for c in error.elements() if c.name != "text"]
    return error["type"], name


def test_domain_info_has_identities_features_from_responders_and_modules_and_extended_info(harness):
    expected = f"""
    <query xmlns='{INFO}'>
      <identity category='component' type='generic' name='iqresponder'/>
      <feature var='http://jabber.org/protocol/commands'/>
      <feature var='{INFO}'/>
      <feature var='{ITEMS}'/>
      <feature var='jabber:iq:version'/>
      <feature var='urn:example:declared'/>
      <feature var='urn:example:weather'/>
      <feature var='urn:xmpp:ping'/>
      <feature var='urn:xmpp:time'/>
      <x xmlns='jabber:x:data' type='result'>
        <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/network/serverinfo</value></field>
        <field var='abuse-addresses' type='list-multi'><value>mailto:abuse@example.org</value></field>
        <field var='admin-addresses' type='list-multi'><value>xmpp:admin@example.org</value></field>
      </x>
    </query>"""
    assert payload_xml(ask(harness, INFO)) == canonical(expected)


def test_domain_items_come_from_configuration_and_modules_once_each_sorted(harness):
    expected = f"""
    <query xmlns='{ITEMS}'>
      <item jid='iq.localhost' node='stations' name='Weather stations'/>
      <item jid='pubsub.localhost' name='Publish-Subscribe'/>
    </query>"""
    assert payload_xml(ask(harness, ITEMS)) == canonical(expected)


def test_static_node_info_and_items_echo_the_node(harness):
    info = f"""
    <query xmlns='{INFO}' node='stations'>
      <identity category='hierarchy' type='branch' name='Stations'/>
      <feature var='urn:example:weather'/>
    </query>"""
    items = f"""
    <query xmlns='{ITEMS}' node='stations'>
      <item jid='iq.localhost' node='station/bergen' name='Bergen'/>
      <item jid='iq.localhost' node='station/oslo' name='Oslo'/>
    </query>"""
    assert payload_xml(ask(harness, INFO, node="stations")) == canonical(info)
    assert payload_xml(ask(harness, ITEMS, node="stations")) == canonical(items)


def test_provider_answers_per_requester(harness):
    alice = payload_xml(ask(harness, INFO, node="plain", sender="alice@localhost/a"))
    bob = payload_xml(ask(harness, INFO, node="plain", sender="bob@localhost/b"))
    assert "for alice@localhost" in alice and "for bob@localhost" in bob
    assert alice == canonical(
        f"<query xmlns='{INFO}' node='plain'><identity category='hierarchy' type='leaf' name='for alice@localhost'/>"
        "<feature var='urn:example:plain'/></query>"
    )


@pytest.mark.parametrize("node", ["deferred", "async"])
def test_provider_may_return_a_deferred_or_be_async(harness, node):
    assert f"name='{node}'" in payload_xml(ask(harness, INFO, node=node)).replace('"', "'")


def test_items_provider_answers_per_requester(harness):
    assert payload_xml(ask(harness, ITEMS, node="mine", sender="romeo@localhost/r")) == canonical(
        f"<query xmlns='{ITEMS}' node='mine'><item jid='romeo@iq.localhost' name='your own address'/></query>"
    )


def test_unknown_node_is_item_not_found(harness):
    assert error_condition(ask(harness, INFO, node="nowhere")) == ("cancel", "item-not-found")
    assert error_condition(ask(harness, ITEMS, node="nowhere")) == ("cancel", "item-not-found")


def test_failing_provider_answers_internal_server_error_for_its_node_only(harness, caplog_twisted):
    assert error_condition(ask(harness, INFO, node="broken")) == ("cancel", "internal-server-error")
    assert error_condition(ask(harness, ITEMS, node="broken")) == ("cancel", "internal-server-error")
    assert "provider bug" in "".join(e["log_failure"].getTraceback() for e in caplog_twisted if e.get("log_failure"))
    assert "urn:xmpp:ping" in payload_xml(ask(harness, INFO))
    assert "Stations" in payload_xml(ask(harness, INFO, node="stations"))


def test_provider_that_never_answers_times_out_with_internal_server_error(harness):
    assert ask(harness, INFO, node="stuck") == []
    harness.clock.advance(3.01)
    assert error_condition(harness.sent()) == ("cancel", "internal-server-error")


def test_provider_may_answer_with_its_own_stanza_error(harness):
    assert error_condition(ask(harness, INFO, node="private")) == ("auth", "forbidden")


def test_static_answers_are_serialized_once_and_rebuilt_after_a_registration(harness, monkeypatch):
    import component.discovery

    builds = []
    real = component.discovery.info_element
    monkeypatch.setattr(component.discovery, "info_element", lambda *a: builds.append(a) or real(*a))
    first = payload_xml(ask(harness, INFO))
    assert payload_xml(ask(harness, INFO)) == first
    assert len(builds) == 1
    harness.component.disco.add_feature("urn:example:later")
    assert "urn:example:later" in payload_xml(ask(harness, INFO))
    assert payload_xml(ask(harness, INFO)) != first
    assert len(builds) == 2


def resolution_harness():
    """Four providers, one at each level, each naming its level."""
    harness = InMemoryComponent([BUNDLED])
    disco = harness.component.disco

    def named(level):
        return lambda request: DiscoInfo((Identity("hierarchy", "leaf", level),))

    disco.provide(info=named("jid and node"), jid="bot@iq.localhost", node="status")
    disco.provide(info=named("jid"), jid="bot@iq.localhost")
    disco.provide(info=named("node"), node="status")
    return harness


@pytest.mark.parametrize(
    "to, node, level",
    [
        ("bot@iq.localhost", "status", "jid and node"),
        ("bot@iq.localhost", "other", "jid"),
        ("bot@iq.localhost", None, "jid"),
        ("someone@iq.localhost", "status", "node"),
        ("iq.localhost", "status", "node"),
    ],
)
def test_resolution_order_is_jid_and_node_then_jid_then_node_then_default(to, node, level):
    xml = payload_xml(ask(resolution_harness(), INFO, node=node, to=to)).replace('"', "'")
    assert f"name='{level}'" in xml


def test_default_provider_answers_what_no_other_level_claims():
    harness = resolution_harness()
    harness.component.disco.provide(info=lambda request: DiscoInfo((Identity("hierarchy", "leaf", "default"),)))
    assert "'default'" in payload_xml(ask(harness, INFO, to="someone@iq.localhost")).replace('"', "'")
    assert "'node'" in payload_xml(ask(harness, INFO, node="status")).replace('"', "'")


@pytest.mark.parametrize("to", ["nobody@iq.localhost", "iq.localhost/res", "nobody@iq.localhost/res"])
def test_a_jid_nobody_claimed_gets_the_domains_answer(harness, to):
    assert payload_xml(ask(harness, INFO, to=to)) == payload_xml(ask(harness, INFO))
    assert payload_xml(ask(harness, ITEMS, to=to)) == payload_xml(ask(harness, ITEMS))


def test_static_publishing_at_a_jid_answers_that_jid_with_responder_features(harness):
    disco = harness.component.disco
    disco.add_identity(Identity("client", "bot", "Weather bot"), jid="bot@iq.localhost")
    disco.add_item(Item("iq.localhost", "stations"), jid="bot@iq.localhost")
    info = payload_xml(ask(harness, INFO, to="bot@iq.localhost")).replace('"', "'")
    assert "category='client' name='Weather bot' type='bot'" in info and "category='component'" not in info
    assert "urn:xmpp:ping" in info  # the bot answers pings like every address of the component
    assert "stations" in payload_xml(ask(harness, ITEMS, to="bot@iq.localhost"))


def test_forms_with_the_same_form_type_are_one_form():
    info = DiscoInfo(
        forms=(Form.of("urn:example:form", {"a": "1"}), Form.of("urn:example:form", {"a": "2"}))
    ).normalized()
    assert len(info.forms) == 1


def test_client_side_disco_info_parses_identities_features_and_forms(harness):
    d = harness.component.facade.disco_info("pubsub.localhost", node="n1")
    [query] = harness.sent()
    [payload] = list(query.elements())
    assert (payload.uri, payload["node"]) == (INFO, "n1")
    results = []
    d.addCallback(results.append)
    harness.receive(
        f"<iq type='result' id='{query['id']}' from='pubsub.localhost' to='iq.localhost'>"
        f"<query xmlns='{INFO}' node='n1'><identity category='pubsub' type='service' name='PS' xml:lang='en'/>"
        "<feature var='http://jabber.org/protocol/pubsub'/>"
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:x</value></field>"
        "<field var='colours' type='list-multi'><value>red</value><value>blue</value></field></x></query></iq>"
    )
    [info] = results
    assert info == DiscoInfo(
        (Identity("pubsub", "service", "PS", "en"),),
        ("http://jabber.org/protocol/pubsub",),
        (Form("urn:x", (Field("colours", ("red", "blue"), multi=True),)),),
        "n1",
    )


def test_client_side_disco_items_parses_items(harness):
    d = harness.component.facade.disco_items("localhost")
    [query] = harness.sent()
    results = []
    d.addCallback(results.append)
    harness.receive(
        f"<iq type='result' id='{query['id']}' from='localhost' to='iq.localhost'><query xmlns='{ITEMS}'>"
        "<item jid='iq.localhost'/><item jid='pubsub.localhost' node='n' name='PS'/><item jid='@@bad'/></query></iq>"
    )
    assert results == [(Item("iq.localhost"), Item("pubsub.localhost", "n", "PS"))]


def test_client_side_failures_are_the_trackers(harness):
    d = harness.component.facade.disco_info("pubsub.localhost")
    [query] = harness.sent()
    failures = []
    d.addErrback(lambda f: failures.append(f.value))
    harness.receive(
        f"<iq type='error' id='{query['id']}' from='pubsub.localhost' to='iq.localhost'>"
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    )
    [error] = failures
    assert isinstance(error, IqError) and error.condition == "item-not-found"
