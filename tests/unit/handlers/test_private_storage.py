"""examples/handlers/private_storage.py: XEP-0049 private storage for the server's users, through delegation."""

from pathlib import Path

import pytest

MODULE = Path(__file__).parents[3] / "examples" / "handlers" / "private_storage.py"
JULIET = "juliet@localhost/balcony"
PREFS = "<prefs xmlns='urn:example:prefs'><nick>Juliet</nick><colour shade='deep'>red</colour></prefs>"


@pytest.fixture
def harness(handler_harness):
    return handler_harness(MODULE)


def ask(harness, type, content, sender=JULIET, to=None, version="urn:xmpp:delegation:2"):
    address = f" to='{to}'" if to else ""
    return harness.ask_delegated(
        f"<iq type='{type}' id='p'{address}><query xmlns='jabber:iq:private'>{content}</query></iq>",
        sender=sender,
        version=version,
    )


def test_a_stored_document_comes_back_as_it_was_stored(harness):
    assert ask(harness, "set", PREFS) == f"<iq type='result' id='p' to='{JULIET}'/>"
    assert ask(harness, "get", "<prefs xmlns='urn:example:prefs'/>", sender="juliet@localhost/phone") == (
        f"<iq type='result' id='p' to='juliet@localhost/phone'><query xmlns='jabber:iq:private'>{PREFS}</query></iq>"
    )


def test_a_document_never_stored_comes_back_empty(harness):
    assert ask(harness, "get", "<prefs xmlns='urn:example:prefs'/>", version="urn:xmpp:delegation:1") == (
        f"<iq type='result' id='p' to='{JULIET}'>"
        "<query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>"
    )


def test_each_user_and_each_namespace_has_its_own_document(harness):
    ask(harness, "set", PREFS)
    ask(harness, "set", "<prefs xmlns='urn:example:prefs'><nick>Romeo</nick></prefs>", sender="romeo@localhost/r")
    assert "Juliet" in ask(harness, "get", "<prefs xmlns='urn:example:prefs'/>")
    assert "Romeo" in ask(harness, "get", "<prefs xmlns='urn:example:prefs'/>", sender="romeo@localhost/r")
    assert "Juliet" not in ask(harness, "get", "<prefs xmlns='urn:example:other'/>")


def test_the_users_own_bare_jid_is_the_same_storage(harness):
    ask(harness, "set", PREFS, to="juliet@localhost")
    assert "Juliet" in ask(harness, "get", "<prefs xmlns='urn:example:prefs'/>")


@pytest.mark.parametrize("to", ["romeo@localhost", "localhost"])
def test_another_users_storage_or_the_servers_is_forbidden(harness, to):
    assert "<forbidden" in ask(harness, "get", "<prefs xmlns='urn:example:prefs'/>", to=to)


@pytest.mark.parametrize(
    ("content", "condition"),
    [
        ("", "bad-request"),
        ("<a xmlns='urn:example:a'/><b xmlns='urn:example:b'/>", "bad-request"),
        ("<roster xmlns='jabber:iq:roster'/>", "not-acceptable"),
        (f"<big xmlns='urn:example:big'>{'x' * 70000}</big>", "not-acceptable"),
    ],
)
def test_what_cannot_be_stored_is_refused(harness, content, condition):
    assert f"<{condition}" in ask(harness, "set", content)


def test_it_answers_only_what_the_server_forwarded(harness):
    reply = harness.ask(
        "<iq type='get'><query xmlns='jabber:iq:private'><prefs xmlns='urn:example:prefs'/></query></iq>"
    )
    assert "service-unavailable" in reply


def test_it_asks_the_server_for_the_delegation(harness):
    assert "jabber:iq:private" in harness.component.delegations.asked


def test_a_user_keeps_a_bounded_number_of_documents(harness, monkeypatch):
    module = next(module for module in harness.component.modules if module.name == "private_storage")
    monkeypatch.setattr(module.module, "MAX_DOCUMENTS", 3)
    for n in range(3):
        assert "result" in ask(harness, "set", f"<d xmlns='urn:example:d{n}'/>")
    assert "resource-constraint" in ask(harness, "set", "<d xmlns='urn:example:d3'/>")
    assert "result" in ask(harness, "set", "<d xmlns='urn:example:d0'>changed</d>")  # replacing one is fine
    assert "result" in ask(harness, "set", "<d xmlns='urn:example:d3'/>", sender="romeo@localhost/r")
