"""The bundled handlers and the README's custom_xep example, tested as a handler author would:
with the ``handler_harness`` fixture of the test kit (component/testing.py), XML in, XML out."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

import component
from component.config import Identity
from component.testing import make_settings

ROOT = Path(__file__).parents[3]
BUNDLED = ROOT / "handlers"
CUSTOM_XEP = ROOT / "examples" / "handlers" / "custom_xep.py"
INFO = "http://jabber.org/protocol/disco#info"
ITEMS = "http://jabber.org/protocol/disco#items"
RESULT = "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'>"


def test_disco_info_lists_identity_and_every_served_namespace_sorted(handler_harness):
    reply = handler_harness(BUNDLED).ask(f"<iq type='get'><query xmlns='{INFO}'/></iq>")
    assert reply == (
        f"{RESULT}<query xmlns='{INFO}'><identity category='component' type='generic' name='iqresponder'/>"
        f"<feature var='http://jabber.org/protocol/commands'/>"
        f"<feature var='{INFO}'/><feature var='{ITEMS}'/><feature var='jabber:iq:version'/>"
        "<feature var='urn:xmpp:ping'/><feature var='urn:xmpp:time'/></query></iq>"
    )


def test_disco_info_features_follow_extra_handler_directories_without_duplicates(handler_harness, tmp_path):
    (tmp_path / "extra.py").write_text(
        "from component import responder\n"
        "@responder('urn:example:extra')\ndef a(request): pass\n"
        "@responder('urn:xmpp:ping', 'set', element='other')\ndef b(request): pass\n"
    )
    reply = handler_harness(BUNDLED, tmp_path).ask(f"<iq type='get'><query xmlns='{INFO}'/></iq>")
    features = re.findall(r"<feature var='([^']+)'/>", reply)
    assert features == sorted(set(features)) and "urn:example:extra" in features
    assert features.count("urn:xmpp:ping") == 1


def test_disco_info_uses_the_configured_identities_once_each(handler_harness):
    identities = (
        Identity("automation", "rpc", "b"),
        Identity("automation", "rpc", "b"),
        Identity("component", "generic"),
    )
    harness = handler_harness(BUNDLED, settings=make_settings(identities=identities))
    reply = harness.ask(f"<iq type='get'><query xmlns='{INFO}'/></iq>")
    assert re.findall(r"<identity [^>]*/>", reply) == [
        "<identity category='automation' type='rpc' name='b'/>",
        "<identity category='component' type='generic'/>",
    ]


def test_disco_items_is_empty_without_configured_items(handler_harness):
    assert handler_harness(BUNDLED).ask(f"<iq type='get'><query xmlns='{ITEMS}'/></iq>") == (
        f"{RESULT}<query xmlns='{ITEMS}'/></iq>"
    )


def test_disco_with_an_unknown_node_is_item_not_found(handler_harness):
    reply = handler_harness(BUNDLED).ask(f"<iq type='get'><query xmlns='{INFO}' node='x'/></iq>")
    assert "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in reply and "type='cancel'" in reply


def test_version_names_the_package_and_its_version_without_os_by_default(handler_harness):
    assert component.__version__ != "0+unknown"
    assert handler_harness(BUNDLED / "version.py").ask("<iq type='get'><query xmlns='jabber:iq:version'/></iq>") == (
        f"{RESULT}<query xmlns='jabber:iq:version'><name>iqresponder</name>"
        f"<version>{component.__version__}</version></query></iq>"
    )


def test_version_tells_the_os_when_configured(handler_harness):
    harness = handler_harness(BUNDLED / "version.py", options={"version": {"os": True}})
    assert "<os>" in harness.ask("<iq type='get'><query xmlns='jabber:iq:version'/></iq>")


def test_ping_is_an_empty_result(handler_harness):
    assert handler_harness(BUNDLED / "ping.py").ask("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>") == (
        "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'/>"
    )


def test_time_gives_utc_now_and_an_offset(handler_harness):
    reply = handler_harness(BUNDLED / "time.py").ask("<iq type='get'><time xmlns='urn:xmpp:time'/></iq>")
    match = re.fullmatch(
        re.escape(RESULT) + r"<time xmlns='urn:xmpp:time'><tzo>([+-]\d\d:\d\d)</tzo><utc>([^<]+)</utc></time></iq>",
        reply,
    )
    assert match, reply
    utc = datetime.fromisoformat(match.group(2))
    assert abs((datetime.now(UTC) - utc).total_seconds()) < 60


def test_bundled_responders_refuse_set(handler_harness):
    reply = handler_harness(BUNDLED).ask("<iq type='set'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert "<feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in reply


@pytest.fixture
def custom(handler_harness):
    return handler_harness(CUSTOM_XEP)


def test_custom_xep_set_then_get_returns_the_stored_value(custom):
    stored = custom.ask("<iq type='set'><query xmlns='custom-xep'><item key='colour'>blue</item></query></iq>")
    assert stored == "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'/>"
    assert custom.ask("<iq type='get'><query xmlns='custom-xep'><item key='colour'/></query></iq>") == (
        "<iq type='result' id='2' to='tester@localhost/test' from='iq.localhost'>"
        "<query xmlns='custom-xep'><item key='colour'>blue</item></query></iq>"
    )


def test_custom_xep_get_of_a_missing_key_raises_item_not_found(custom):
    reply = custom.ask("<iq type='get'><query xmlns='custom-xep'><item key='nothing-here'/></query></iq>")
    assert "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in reply
    assert ">Nothing is stored under 'nothing-here'</text>" in reply


def test_custom_xep_without_an_item_is_bad_request(custom):
    reply = custom.ask("<iq type='set'><query xmlns='custom-xep'/></iq>")
    assert "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in reply and "type='modify'" in reply
