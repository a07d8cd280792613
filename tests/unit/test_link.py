"""Links (component/link.py), one stream per name: the instance's own (``instance_jid``) beside
the component's, and the outbound queries that go out on it.

When several processes share the component's name (ejabberd spreads stanzas across them),
the response to an outbound query may reach another process. Each process therefore also
authenticates under a name of its own and sends its queries from it, so the server routes
the responses back to that stream. Shown here in memory, with both streams.
"""

from pathlib import Path

import pytest
from twisted.internet import task
from twisted.internet.defer import Deferred

from component import NotConnected
from component.process import EX_CONFIG, ProcessPolicy
from component.registry import Registry
from component.service import Component
from component.testing import InMemoryComponent, make_settings
from tests.unit.test_connection import NOT_AUTHORIZED, ScriptedServer

SHARED, OWN = "iq.localhost", "iq-1.localhost"
CLIENT = "alice@localhost/phone"
BUNDLED = Path(__file__).parents[2] / "handlers"
ASKING = """
from twisted.internet.defer import Deferred

from component import responder

waiting = []


@responder("urn:example:ask", "get", element="ask")
async def ask(request):
    reply = await request.component.query(request.sender.full(), "urn:example:peer")
    return reply.firstChildElement()


@responder("urn:example:ask", "get", element="later")
def later(request):
    waiting.append(Deferred())
    return waiting[-1]
"""


@pytest.fixture
def memory(tmp_path):
    (tmp_path / "asking.py").write_text(ASKING)
    return InMemoryComponent([BUNDLED, tmp_path], settings=make_settings(instance_jid=OWN))


def outcome(deferred: Deferred):
    results = []
    deferred.addBoth(results.append)
    return results[0] if results else None


def test_requests_on_the_shared_name_are_answered_on_its_stream(memory):
    [reply] = memory.receive(f"<iq type='get' id='1' from='{CLIENT}' to='{SHARED}'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert (reply["type"], reply["from"], reply["to"]) == ("result", SHARED, CLIENT)
    assert memory.sent(instance=True) == []


def test_requests_to_the_own_name_are_answered_on_its_own_stream(memory):
    request = f"<iq type='get' id='2' from='{CLIENT}' to='{OWN}'><ping xmlns='urn:xmpp:ping'/></iq>"
    [reply] = memory.receive(request, instance=True)
    assert (reply["type"], reply["from"], reply["to"]) == ("result", OWN, CLIENT)
    assert memory.sent() == []


def test_an_error_to_the_own_name_goes_out_on_its_own_stream(memory):
    request = f"<iq type='get' id='3' from='{CLIENT}' to='{OWN}'><nothing xmlns='urn:example:none'/></iq>"
    [reply] = memory.receive(request, instance=True)
    assert (reply["type"], reply["from"]) == ("error", OWN)
    assert memory.sent() == []


def test_a_malformed_recipient_on_the_own_stream_is_answered_there_from_the_own_name(memory):
    request = f"<iq type='get' id='5' from='{CLIENT}' to='@@bad@@'><ping xmlns='urn:xmpp:ping'/></iq>"
    [reply] = memory.receive(request, instance=True)
    assert (reply["type"], reply["from"], reply["to"]) == ("error", OWN, CLIENT)
    assert memory.sent() == []


def test_a_reply_ready_after_its_stream_reconnected_goes_out_on_the_new_stream_of_the_same_name(memory):
    memory.receive(
        f"<iq type='get' id='4' from='{CLIENT}' to='{OWN}'><later xmlns='urn:example:ask'/></iq>", instance=True
    )
    memory.disconnect(instance=True)
    memory.connect()
    [asking] = [loaded.module for loaded in memory.modules if loaded.name == "asking"]
    asking.waiting.pop().callback(None)
    [reply] = memory.sent(instance=True)
    assert (reply["type"], reply["id"], reply["from"]) == ("result", "4", OWN)
    assert memory.sent() == []


def test_an_outbound_query_goes_out_under_the_own_name_and_its_response_comes_back_there(memory):
    memory.receive(f"<iq type='get' id='4' from='{CLIENT}' to='{SHARED}'><ask xmlns='urn:example:ask'/></iq>")
    [query] = memory.sent(instance=True)
    assert (query["type"], query["from"], query["to"]) == ("get", OWN, CLIENT)

    response = f"<iq type='result' id='{query['id']}' from='{CLIENT}' to='{OWN}'><peer xmlns='urn:example:peer'/></iq>"
    assert memory.receive(response, instance=True) == []
    # The request came in under the shared name, so its reply goes out there.
    [reply] = memory.sent()
    assert (reply["type"], reply["id"], reply["from"]) == ("result", "4", SHARED)
    assert reply.firstChildElement().uri == "urn:example:peer"


def test_a_response_addressed_to_the_shared_name_does_not_resolve_a_query_from_the_own_name(memory):
    query = memory.component.facade.query(CLIENT, "urn:example:peer")
    [sent] = memory.sent(instance=True)
    memory.receive(f"<iq type='result' id='{sent['id']}' from='{CLIENT}' to='{SHARED}'/>")
    assert not query.called
    memory.receive(f"<iq type='result' id='{sent['id']}' from='{CLIENT}' to='{OWN}'/>", instance=True)
    assert outcome(query)["type"] == "result"


def test_losing_the_own_stream_fails_its_queries_and_later_ones_at_once_while_requests_are_still_answered(memory):
    pending = memory.component.facade.query(CLIENT, "urn:example:peer")
    memory.disconnect(instance=True)
    assert outcome(pending).check(NotConnected)
    assert outcome(memory.component.facade.query(CLIENT, "urn:example:peer")).check(NotConnected)

    [reply] = memory.receive(f"<iq type='get' id='5' from='{CLIENT}' to='{SHARED}'><ping xmlns='urn:xmpp:ping'/></iq>")
    assert reply["type"] == "result"


def test_losing_the_shared_stream_leaves_the_queries_of_the_own_name_waiting(memory):
    pending = memory.component.facade.query(CLIENT, "urn:example:peer")
    [sent] = memory.sent(instance=True)
    memory.disconnect()
    assert not pending.called
    memory.receive(f"<iq type='result' id='{sent['id']}' from='{CLIENT}' to='{OWN}'/>", instance=True)
    assert outcome(pending)["type"] == "result"


def test_each_stream_has_its_own_keepalive_under_its_own_name():
    harness = InMemoryComponent(settings=make_settings(instance_jid=OWN), keepalive=True)
    harness.clock.advance(harness.settings.keepalive_interval)
    [shared_ping] = harness.sent()
    [own_ping] = harness.sent(instance=True)
    assert (shared_ping["from"], own_ping["from"]) == (SHARED, OWN)
    assert shared_ping["to"] == own_ping["to"] == "localhost"

    # Only the shared stream's server answers: the silent own stream alone is dropped.
    harness.receive(f"<iq type='result' id='{shared_ping['id']}' from='localhost' to='{SHARED}'/>")
    harness.clock.advance(harness.settings.keepalive_timeout + 0.1)
    assert harness.instance_transport.disconnecting
    assert not harness.transport.disconnecting


def test_a_refused_own_name_before_ever_authenticating_gives_up_naming_its_key(caplog_twisted):
    gave_up = []
    clock = task.Clock()
    shared, own = ScriptedServer(clock), ScriptedServer(clock)
    shared.accepting = own.accepting = True
    policy = ProcessPolicy(clock, give_up=lambda reactor, status: gave_up.append(status))
    component = Component(
        make_settings(instance_jid=OWN),
        Registry(),
        reactor=clock,
        endpoint=shared,
        instance_endpoint=own,
        jitter=lambda: 0.0,
        on_refused=policy.refused,
        on_replaced=policy.replaced,
    )
    policy.serve(component)
    component.startService()
    shared.accept()
    assert gave_up == []
    own.refuse(NOT_AUTHORIZED)
    assert gave_up == [EX_CONFIG]
    stopping = [caplog_twisted.format(e) for e in caplog_twisted if "Stopping" in caplog_twisted.format(e)]
    assert len(stopping) == 1 and OWN in stopping[0] and "component.instance_jid" in stopping[0]


def test_connection_metrics_are_per_name():
    harness = InMemoryComponent(
        settings=make_settings(instance_jid=OWN, metrics_endpoint="tcp:port=0:interface=127.0.0.1")
    )
    registry = harness.component.metrics.registry
    assert registry.get_sample_value("iqresponder_connected", {"jid": SHARED}) == 1
    assert registry.get_sample_value("iqresponder_connected", {"jid": OWN}) == 1
    harness.disconnect(instance=True)
    assert registry.get_sample_value("iqresponder_connected", {"jid": SHARED}) == 1
    assert registry.get_sample_value("iqresponder_connected", {"jid": OWN}) == 0
