"""The bundled handlers (disco, version, ping, time) and the README's custom_xep example, XML in, XML out."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

import component
from component.config import Identity
from component.testing import InMemoryComponent, make_settings

ROOT = Path(__file__).parents[3]
BUNDLED = ROOT / "handlers"
EXAMPLES = ROOT / "examples" / "handlers"
CLIENT = "juliet@localhost/balcony"
INFO = "http://jabber.org/protocol/disco#info"


def ask(harness, body, type="get", to="iq.localhost"):
    [reply] = harness.receive(f"<iq type='{type}' id='h1' from='{CLIENT}' to='{to}'>{body}</iq>")
    assert (reply["id"], reply["to"], reply["from"]) == ("h1", CLIENT, to)
    return reply


def child(reply):
    [element] = list(reply.elements())
    return element


def condition(reply):
    assert reply["type"] == "error", reply.toXml()
    [error] = [c for c in reply.elements() if c.name == "error"]
    [name] = [c.name for c in error.elements() if c.name != "text"]
    return name


@pytest.fixture
def bundled():
    return InMemoryComponent([BUNDLED])


def test_disco_info_lists_identity_and_every_served_namespace_sorted(bundled):
    query = child(ask(bundled, "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
    assert [(i["category"], i["type"], i["name"]) for i in query.elements(INFO, "identity")] == [
        ("component", "generic", "iqresponder")
    ]
    assert [f["var"] for f in query.elements(INFO, "feature")] == [
        "http://jabber.org/protocol/disco#info",
        "http://jabber.org/protocol/disco#items",
        "jabber:iq:version",
        "urn:xmpp:ping",
        "urn:xmpp:time",
    ]


def test_disco_info_features_follow_extra_handler_directories_without_duplicates(tmp_path):
    (tmp_path / "extra.py").write_text(
        "from component import responder\n"
        "@responder('urn:example:extra')\ndef a(request): pass\n"
        "@responder('urn:xmpp:ping', 'set', element='other')\ndef b(request): pass\n"
    )
    harness = InMemoryComponent([BUNDLED, tmp_path])
    features = [
        f["var"]
        for f in child(ask(harness, "<query xmlns='http://jabber.org/protocol/disco#info'/>")).elements(INFO, "feature")
    ]
    assert features == sorted(set(features)) and "urn:example:extra" in features
    assert features.count("urn:xmpp:ping") == 1


def test_disco_info_uses_the_configured_identities_once_each():
    identities = (
        Identity("automation", "rpc", "b"),
        Identity("automation", "rpc", "b"),
        Identity("component", "generic"),
    )
    harness = InMemoryComponent([BUNDLED], settings=make_settings(identities=identities))
    query = child(ask(harness, "<query xmlns='http://jabber.org/protocol/disco#info'/>"))
    found = [(i["category"], i["type"], i.getAttribute("name")) for i in query.elements(INFO, "identity")]
    assert found == [("automation", "rpc", "b"), ("component", "generic", None)]


def test_disco_items_is_empty_for_now(bundled):
    query = child(ask(bundled, "<query xmlns='http://jabber.org/protocol/disco#items'/>"))
    assert query.uri == "http://jabber.org/protocol/disco#items" and list(query.elements()) == []


def test_disco_with_an_unknown_node_is_item_not_found(bundled):
    assert (
        condition(ask(bundled, "<query xmlns='http://jabber.org/protocol/disco#info' node='x'/>")) == "item-not-found"
    )


def test_version_names_the_package_and_its_version_without_os_by_default(bundled):
    query = child(ask(bundled, "<query xmlns='jabber:iq:version'/>"))
    assert {c.name: str(c) for c in query.elements()} == {"name": "iqresponder", "version": component.__version__}
    assert component.__version__ != "0+unknown"


def test_version_tells_the_os_when_configured():
    harness = InMemoryComponent([BUNDLED], options={"version": {"os": True}})
    query = child(ask(harness, "<query xmlns='jabber:iq:version'/>"))
    assert [c.name for c in query.elements()] == ["name", "version", "os"]


def test_ping_is_an_empty_result(bundled):
    reply = ask(bundled, "<ping xmlns='urn:xmpp:ping'/>")
    assert reply["type"] == "result" and list(reply.elements()) == []


def test_time_gives_utc_now_and_an_offset(bundled):
    element = child(ask(bundled, "<time xmlns='urn:xmpp:time'/>"))
    values = {c.name: str(c) for c in element.elements()}
    assert set(values) == {"tzo", "utc"}
    assert values["tzo"][0] in "+-" and values["tzo"][3] == ":"
    utc = datetime.strptime(values["utc"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - utc).total_seconds()) < 60


def test_bundled_responders_refuse_set(bundled):
    assert condition(ask(bundled, "<ping xmlns='urn:xmpp:ping'/>", type="set")) == "feature-not-implemented"


@pytest.fixture
def custom():
    return InMemoryComponent([EXAMPLES])


def test_custom_xep_set_then_get_returns_the_stored_value(custom):
    set_reply = ask(custom, "<query xmlns='custom-xep'><item key='colour'>blue</item></query>", type="set")
    assert set_reply["type"] == "result"
    item = next(child(ask(custom, "<query xmlns='custom-xep'><item key='colour'/></query>")).elements())
    assert (item["key"], str(item)) == ("colour", "blue")


def test_custom_xep_get_of_a_missing_key_raises_item_not_found(custom):
    assert condition(ask(custom, "<query xmlns='custom-xep'><item key='nothing-here'/></query>")) == "item-not-found"


def test_custom_xep_without_an_item_is_bad_request(custom):
    assert condition(ask(custom, "<query xmlns='custom-xep'/>", type="set")) == "bad-request"
