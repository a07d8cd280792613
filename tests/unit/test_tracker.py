"""Outbound queries: results, errors, timeouts, the sender check, cancel and fail-all, in memory."""

import textwrap

import pytest
from twisted.internet.defer import CancelledError
from twisted.words.xish import domish

from component import NO_TIMEOUT, IqError, IqTimeout, NotConnected, XMPPError
from component.testing import InMemoryComponent, make_settings

PEER = "peer.localhost"


@pytest.fixture
def harness():
    return InMemoryComponent(settings=make_settings(response_timeout=30.0))


def sent_query(harness):
    [iq] = harness.sent()
    return iq


class Outcome:
    """Watches a Deferred: ``value`` is None until it fires, then ('result', x) or ('failure', exception)."""

    def __init__(self, deferred):
        self.deferred = deferred
        self.value = None
        deferred.addCallbacks(self._fired, lambda failure: self._fired(failure.value, "failure"))

    def _fired(self, value, kind="result"):
        self.value = (kind, value)

    def cancel(self):
        self.deferred.cancel()


def query(harness, *args, **kwargs):
    return Outcome(harness.component.facade.query(*args, **kwargs))


def respond(harness, iq, type="result", sender=None, to="iq.localhost", body=""):
    sender = iq["to"] if sender is None else sender
    attributes = f" from='{sender}'" if sender else ""
    return harness.receive(f"<iq type='{type}' id='{iq['id']}'{attributes} to='{to}'>{body}</iq>")


def test_query_sends_a_get_with_a_payload_from_a_namespace_string(harness):
    harness.component.facade.query(PEER, "http://jabber.org/protocol/disco#info")
    iq = sent_query(harness)
    assert (iq["type"], iq["to"], iq["from"]) == ("get", PEER, "iq.localhost")
    [payload] = list(iq.elements())
    assert (payload.uri, payload.name) == ("http://jabber.org/protocol/disco#info", "query")


def test_query_sends_an_element_payload_as_a_set(harness):
    element = domish.Element(("urn:example:data", "store"))
    harness.component.facade.query(PEER, element, type="set")
    iq = sent_query(harness)
    assert iq["type"] == "set" and next(iq.elements()).name == "store"


def test_result_fires_the_deferred_with_the_response_stanza(harness):
    d = query(harness, PEER, "urn:example:q")
    respond(harness, sent_query(harness), body="<answer xmlns='urn:example:q'/>")
    kind, stanza = d.value
    assert kind == "result" and stanza["type"] == "result" and next(stanza.elements()).name == "answer"
    assert len(harness.component.tracker) == 0


def test_error_fails_with_iq_error_carrying_condition_type_text_application_and_stanza(harness):
    d = query(harness, PEER, "urn:example:q")
    body = textwrap.dedent("""
        <error type='modify'>
          <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
          <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>try again</text>
          <too-many-subscriptions xmlns='http://jabber.org/protocol/pubsub#errors'/>
        </error>""")
    respond(harness, sent_query(harness), type="error", body=body)
    kind, error = d.value
    assert kind == "failure" and isinstance(error, IqError) and isinstance(error, XMPPError)
    assert (error.condition, error.type, error.text) == ("bad-request", "modify", "try again")
    assert error.application.name == "too-many-subscriptions"
    assert error.stanza["type"] == "error"


@pytest.mark.parametrize(
    "body",
    ["", "<error code='404'/>", "<error type='bogus'><whatever xmlns='urn:x'/></error>", "<error/>"],
)
def test_malformed_legacy_or_unknown_errors_become_undefined_condition(harness, body):
    d = query(harness, PEER, "urn:example:q")
    respond(harness, sent_query(harness), type="error", body=body)
    kind, error = d.value
    assert kind == "failure" and isinstance(error, IqError) and error.condition == "undefined-condition"


def test_configured_response_timeout_applies_by_default(harness):
    d = query(harness, PEER, "urn:example:q")
    harness.clock.advance(29.9)
    assert d.value is None
    harness.clock.advance(0.2)
    assert isinstance(d.value[1], IqTimeout)
    assert len(harness.component.tracker) == 0


def test_per_call_timeout_wins(harness):
    d = query(harness, PEER, "urn:example:q", timeout=2)
    harness.clock.advance(2.01)
    assert isinstance(d.value[1], IqTimeout)


def test_no_timeout_waits_for_as_long_as_it_takes(harness):
    d = query(harness, PEER, "urn:example:q", timeout=NO_TIMEOUT)
    assert harness.clock.getDelayedCalls() == []
    harness.clock.advance(10**6)
    assert d.value is None
    respond(harness, sent_query(harness))
    assert d.value[0] == "result"


def test_the_timer_is_cancelled_when_the_response_arrives(harness):
    harness.component.facade.query(PEER, "urn:example:q")
    assert len(harness.clock.getDelayedCalls()) == 1
    respond(harness, sent_query(harness))
    assert harness.clock.getDelayedCalls() == []


def test_response_from_another_sender_is_ignored_and_the_query_keeps_waiting(harness, caplog_twisted):
    d = query(harness, PEER, "urn:example:q")
    iq = sent_query(harness)
    respond(harness, iq, sender="mallory@localhost/evil", body="<forged xmlns='urn:example:q'/>")
    assert d.value is None
    assert any(
        "mallory@localhost/evil" in caplog_twisted.format(e) for e in caplog_twisted if e["log_level"].name == "warn"
    )
    respond(harness, iq, body="<real xmlns='urn:example:q'/>")
    assert next(d.value[1].elements()).name == "real"


def test_query_to_a_full_jid_accepts_only_that_full_jid(harness):
    d = query(harness, "juliet@localhost/balcony", "urn:example:q")
    iq = sent_query(harness)
    respond(harness, iq, sender="juliet@localhost")
    respond(harness, iq, sender="juliet@localhost/other")
    assert d.value is None
    respond(harness, iq, sender="juliet@localhost/balcony")
    assert d.value[0] == "result"


def test_query_to_a_bare_jid_accepts_that_bare_jid_not_a_resource(harness):
    d = query(harness, "juliet@localhost", "urn:example:q")
    iq = sent_query(harness)
    respond(harness, iq, sender="juliet@localhost/balcony")
    assert d.value is None
    respond(harness, iq, sender="Juliet@LOCALHOST")  # the same JID, normalised
    assert d.value[0] == "result"


def test_response_without_from_counts_only_for_queries_to_our_server(harness):
    to_peer = query(harness, PEER, "urn:example:q")
    respond(harness, sent_query(harness), sender="")
    assert to_peer.value is None
    to_server = query(harness, "localhost", "urn:example:q")
    respond(harness, sent_query(harness), sender="")
    assert to_server.value[0] == "result"


def test_response_addressed_to_someone_else_is_ignored(harness):
    d = query(harness, PEER, "urn:example:q")
    iq = sent_query(harness)
    respond(harness, iq, to="other.localhost")
    assert d.value is None
    respond(harness, iq, to="someone@iq.localhost/x")
    assert d.value[0] == "result"


def test_ids_are_unpredictable_and_distinct(harness):
    for _ in range(50):
        harness.component.facade.query(PEER, "urn:example:q")
    ids = [iq["id"] for iq in harness.sent()]
    assert len(set(ids)) == 50 and all(len(i) >= 16 for i in ids)


def test_cancel_forgets_the_query_and_its_timer_at_once(harness):
    d = query(harness, PEER, "urn:example:q")
    iq = sent_query(harness)
    d.cancel()
    assert isinstance(d.value[1], CancelledError)
    assert len(harness.component.tracker) == 0 and harness.clock.getDelayedCalls() == []
    assert respond(harness, iq) == []  # arrives later: dropped quietly, never answered


def test_losing_the_connection_fails_every_pending_query_with_not_connected(harness):
    queries = [query(harness, PEER, "urn:example:q") for _ in range(3)]
    harness.disconnect()
    assert all(isinstance(d.value[1], NotConnected) for d in queries)
    assert len(harness.component.tracker) == 0 and harness.clock.getDelayedCalls() == []


def test_query_while_disconnected_fails_at_once(harness):
    harness.disconnect()
    d = query(harness, PEER, "urn:example:q")
    assert isinstance(d.value[1], NotConnected)
    assert len(harness.component.tracker) == 0


def test_invalid_destination_is_a_value_error(harness):
    with pytest.raises(ValueError):
        harness.component.facade.query("@@bad@@", "urn:example:q")


ASKING_RESPONDER = """
from component import responder

@responder("urn:example:ask", "get")
async def ask_peer(request):
    reply = await request.component.query("peer.localhost", "urn:example:data", timeout=5)
    return next(reply.elements())
"""


@pytest.fixture
def asking(tmp_path):
    (tmp_path / "asking.py").write_text(ASKING_RESPONDER)
    return InMemoryComponent([tmp_path])


def ask(harness):
    """A client's request to the asking responder; returns the outbound query it caused."""
    sent = harness.receive(
        "<iq type='get' id='c1' from='juliet@localhost/b' to='iq.localhost'><q xmlns='urn:example:ask'/></iq>"
    )
    [outbound] = sent
    assert outbound["to"] == "peer.localhost"
    return outbound


def error_condition(reply):
    [error] = [c for c in reply.elements() if c.name == "error"]
    [name] = [c.name for c in error.elements() if c.name != "text"]
    return error["type"], name


def test_async_responder_awaits_a_query_and_answers_with_its_result(asking):
    outbound = ask(asking)
    [reply] = respond(asking, outbound, body="<data xmlns='urn:example:data'>42</data>")
    assert (reply["id"], reply["type"], str(next(reply.elements()))) == ("c1", "result", "42")


def test_iq_timeout_escaping_the_responder_answers_remote_server_timeout(asking):
    ask(asking)
    asking.clock.advance(5.01)
    [reply] = asking.sent()
    assert reply["id"] == "c1" and error_condition(reply) == ("wait", "remote-server-timeout")


def test_iq_error_escaping_the_responder_answers_undefined_condition_without_the_third_partys_text(asking):
    outbound = ask(asking)
    body = (
        "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>internal host db7 says no</text></error>"
    )
    [reply] = respond(asking, outbound, type="error", body=body)
    assert error_condition(reply) == ("cancel", "undefined-condition")
    assert "db7" not in reply.toXml()


def test_not_connected_escaping_the_responder_is_not_sent_anywhere(asking):
    ask(asking)
    asking.disconnect()
    assert asking.transport.value() == b""
    assert len(asking.component.tracker) == 0


def test_every_pending_query_shares_one_timer_and_each_still_expires_at_its_own_time(harness):
    first = query(harness, PEER, "urn:example:q", timeout=30)
    harness.clock.advance(5)
    second = query(harness, PEER, "urn:example:q", timeout=30)
    shorter = query(harness, PEER, "urn:example:q", timeout=2)  # due before the timer set for the first
    assert len(harness.clock.getDelayedCalls()) == 1
    harness.clock.advance(2)
    assert isinstance(shorter.value[1], IqTimeout) and first.value is None
    harness.clock.advance(23)
    assert isinstance(first.value[1], IqTimeout) and second.value is None
    harness.clock.advance(5)
    assert isinstance(second.value[1], IqTimeout)
    assert len(harness.component.tracker) == 0 and harness.clock.getDelayedCalls() == []


def test_answered_queries_leave_no_deadlines_to_pile_up(harness):
    waiting = query(harness, PEER, "urn:example:q", timeout=30)  # keeps the timer and the heap alive
    harness.sent()
    tracker = harness.component.tracker
    for _ in range(5000):
        harness.component.facade.query(PEER, "urn:example:q", timeout=30)
        respond(harness, sent_query(harness))
    assert len(tracker) == 1
    assert len(tracker._deadlines) <= 2 * len(tracker) + 1024 + 1
    harness.clock.advance(30)
    assert isinstance(waiting.value[1], IqTimeout)


def test_a_response_to_an_address_in_another_form_is_matched_as_preparation_writes_it(harness):
    d = query(harness, "Juliet@Capulet.Example/Balcony", "urn:example:q")
    iq = sent_query(harness)
    respond(harness, iq, sender="juliet@capulet.example/Balcony")
    assert d.value[0] == "result"
