"""The tutorial's hello.py, in each version the tutorial writes (docs/tutorial.md, steps 2, 3 and 5).

The page's own tests run the second and third versions; these check what they
leave out: the first version's checks by hand, that every version answers the
same, and the command's form and access.
"""

from pathlib import Path

import pytest

from component.testing import make_settings

ROOT = Path(__file__).parents[3]
BY_HAND = ROOT / "docs" / "examples" / "hello_raw.py"
WITH_PAYLOAD = ROOT / "docs" / "examples" / "hello_payload.py"
FINISHED = ROOT / "examples" / "handlers" / "hello.py"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"


@pytest.mark.parametrize("module", [BY_HAND, WITH_PAYLOAD, FINISHED], ids=lambda path: path.name)
def test_every_version_greets_the_name_it_is_given_and_answers_no_set(handler_harness, module):
    harness = handler_harness(module)
    assert harness.ask("<iq type='get'><hello xmlns='urn:example:hello' name='a &amp; b'/></iq>") == (
        "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'>"
        "<hello xmlns='urn:example:hello' name='a &amp; b'>Hello, a &amp; b!</hello></iq>"
    )
    reply = harness.ask("<iq type='set'><hello xmlns='urn:example:hello' name='alice'/></iq>")
    assert f"<feature-not-implemented xmlns='{STANZAS}'/>" in reply and "type='cancel'" in reply


def test_the_first_version_checks_the_name_by_hand(handler_harness):
    reply = handler_harness(BY_HAND).ask("<iq type='get'><hello xmlns='urn:example:hello'/></iq>")
    assert f"<bad-request xmlns='{STANZAS}'/>" in reply and "type='modify'" in reply
    assert "Say whom to greet: &lt;hello name='...'/&gt;" in reply


@pytest.mark.parametrize("module", [WITH_PAYLOAD, FINISHED], ids=lambda path: path.name)
def test_with_a_payload_class_a_request_without_the_name_never_reaches_the_responder(handler_harness, module):
    reply = handler_harness(module).ask("<iq type='get'><hello xmlns='urn:example:hello'/></iq>")
    assert f"<bad-request xmlns='{STANZAS}'/>" in reply
    assert "&lt;hello xmlns='urn:example:hello'/&gt;: name: attribute 'name' is missing" in reply


def test_the_command_offers_its_form_to_complete_and_an_empty_name_does_not_pass(handler_harness):
    run = handler_harness(FINISHED).command("hello", sender="juliet@localhost/balcony")
    form = run.execute()
    assert (form.status, form.actions, form.fields) == (
        "executing",
        ("complete",),
        {"FORM_TYPE": ["urn:example:hello"], "name": ["juliet"]},
    )
    assert run.complete(name="").error[:3] == ("modify", "bad-request", "bad-payload")
    assert run.complete(name="Romeo").notes == [("info", "Hello, Romeo!")]


def test_the_command_is_for_the_servers_own_users_and_its_admins(handler_harness):
    harness = handler_harness(ROOT / "handlers", FINISHED, settings=make_settings(admins=("ops@example.org",)))
    assert harness.command("hello", sender="mallory@example.net/x").execute().error[:2] == ("auth", "forbidden")
    assert harness.command("hello", sender="ops@example.org/desk").execute().status == "executing"
    items = f"<iq type='get'><query xmlns='{DISCO_ITEMS}' node='http://jabber.org/protocol/commands'/></iq>"
    assert "node='hello'" in harness.ask(items, sender="alice@localhost/phone")
    assert "node='hello'" not in harness.ask(items, sender="mallory@example.net/x")
