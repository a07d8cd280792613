"""Handler faults, overload and access rules: each sender gets exactly one reply, and others are unaffected."""

import textwrap

import pytest
from twisted.internet import defer

from component.config import AccessRule, Limits
from component.testing import InMemoryComponent, make_settings

RESPONDERS = """
from twisted.internet import defer

from component import responder

NS = "urn:example:faults"
pending = []


@responder(NS, "get", element="fast")
def fast(request):
    return None


@responder(NS, "get", element="never")
def never(request):
    d = defer.Deferred(lambda d: pending.append("cancelled"))
    pending.append(d)
    return d


@responder(NS, "get", element="twice")
def twice(request):
    d = defer.Deferred()
    request.component.clock.callLater(1, d.callback, None)
    request.component.clock.callLater(2, d.callback, None)  # the second raises AlreadyCalledError
    return d


@responder(NS, "get", element="slow")
def slow(request):
    d = defer.Deferred()
    request.component.clock.callLater(5, d.callback, None)
    return d


@responder(NS, "set")
def private(request):
    return None
"""


def harness_with(tmp_path, **settings):
    (tmp_path / "faults.py").write_text(textwrap.dedent(RESPONDERS))
    return InMemoryComponent([tmp_path], settings=make_settings(**settings))


def request(kind, id="q1", sender="juliet@localhost/balcony", type="get", ns="urn:example:faults"):
    return f"<iq type='{type}' id='{id}' from='{sender}' to='iq.localhost'><{kind} xmlns='{ns}'/></iq>"


def condition(reply):
    assert reply["type"] == "error", reply.toXml()
    [error] = [c for c in reply.elements() if c.name == "error"]
    [name] = [c.name for c in error.elements() if c.name != "text"]
    return error["type"], name


def test_responder_that_never_finishes_is_answered_after_handler_timeout(tmp_path, caplog_twisted):
    harness = harness_with(tmp_path, limits=Limits(handler_timeout=10.0))
    assert harness.receive(request("never")) == []
    harness.clock.advance(9.9)
    assert harness.sent() == []
    harness.clock.advance(0.2)
    [reply] = harness.sent()
    assert condition(reply) == ("cancel", "internal-server-error")
    assert "did not answer" in caplog_twisted.text()
    assert harness.component.router.in_flight == 0
    # The Deferred is the responder's, perhaps shared with other requests: the router stops
    # waiting for it but does not cancel it, and its late result makes no second reply.
    module = next(m.module for m in harness.modules if m.name == "faults")
    [late] = module.pending
    late.callback(None)
    assert harness.sent() == []


def test_responder_that_calls_back_twice_gives_exactly_one_reply(tmp_path):
    harness = harness_with(tmp_path)
    harness.receive(request("twice"))
    harness.clock.advance(1)
    assert [reply["type"] for reply in harness.sent()] == ["result"]
    with pytest.raises(defer.AlreadyCalledError):
        harness.clock.advance(1)  # the responder's own second callback fails in its own code
    assert harness.sent() == []


def test_a_hung_responder_does_not_delay_another_senders_request(tmp_path):
    harness = harness_with(tmp_path)
    harness.receive(request("never", sender="mallory@localhost/x"))
    [reply] = harness.receive(request("fast", id="other", sender="juliet@localhost/b"))
    assert (reply["id"], reply["type"]) == ("other", "result")


def test_in_flight_cap_answers_resource_constraint_and_frees_up(tmp_path):
    harness = harness_with(tmp_path, limits=Limits(max_in_flight=2))
    for index in range(2):
        assert harness.receive(request("slow", id=f"s{index}", sender=f"u{index}@localhost/r")) == []
    [refused] = harness.receive(request("slow", id="s2", sender="u2@localhost/r"))
    assert condition(refused) == ("wait", "resource-constraint")
    harness.clock.advance(5)
    assert sorted(reply["id"] for reply in harness.sent()) == ["s0", "s1"]
    harness.receive(request("slow", id="s3", sender="u3@localhost/r"))
    harness.clock.advance(5)
    assert [reply["type"] for reply in harness.sent()] == ["result"]


def test_sender_over_its_rate_gets_resource_constraint_while_others_are_answered(tmp_path):
    harness = harness_with(tmp_path, limits=Limits(sender_rate=10.0, sender_burst=5))
    flood = "".join(request("fast", id=f"f{index}", sender="mallory@localhost/x") for index in range(50))
    replies = harness.receive(flood)
    assert [reply["type"] for reply in replies].count("result") == 5
    assert {condition(reply) for reply in replies if reply["type"] == "error"} == {("wait", "resource-constraint")}
    [other] = harness.receive(request("fast", id="ok", sender="juliet@localhost/b"))
    assert other["type"] == "result"
    harness.clock.advance(0.5)  # five tokens back at ten a second
    replies = harness.receive(flood)
    assert [reply["type"] for reply in replies].count("result") == 5


def test_rate_limit_counts_all_resources_of_a_sender_together(tmp_path):
    harness = harness_with(tmp_path, limits=Limits(sender_rate=1.0, sender_burst=2))
    replies = harness.receive("".join(request("fast", id=f"r{i}", sender=f"mallory@localhost/r{i}") for i in range(3)))
    assert [reply["type"] for reply in replies] == ["result", "result", "error"]


def test_rate_limit_table_stays_bounded():
    from twisted.internet import task

    from component.policy import SenderRateLimit

    clock = task.Clock()
    limit = SenderRateLimit(rate=1.0, burst=1, clock=clock, max_senders=100)
    for index in range(10_000):
        limit.allow(f"sender{index}@localhost")
        clock.advance(0.01)
    assert len(limit) <= 100


RULES = (
    AccessRule("urn:example:faults", ("set",), frozenset({"admin@localhost", "trusted.example", "ops@localhost/desk"})),
)


@pytest.mark.parametrize(
    "sender, allowed",
    [
        ("admin@localhost/any", True),  # bare JID listed
        ("bot@trusted.example/x", True),  # domain listed
        ("ops@localhost/desk", True),  # full JID listed
        ("ops@localhost/laptop", False),  # another resource of a full JID
        ("mallory@localhost/x", False),
        ("localhost", False),
    ],
)
def test_access_rules_allow_listed_jids_and_domains_and_forbid_the_rest(tmp_path, sender, allowed):
    harness = harness_with(tmp_path, access=RULES)
    [reply] = harness.receive(request("anything", type="set", sender=sender))
    if allowed:
        assert reply["type"] == "result"
    else:
        assert condition(reply) == ("auth", "forbidden")


def test_access_rules_apply_only_to_their_namespace_and_type(tmp_path):
    harness = harness_with(tmp_path, access=RULES)
    [get] = harness.receive(request("fast", sender="mallory@localhost/x"))
    assert get["type"] == "result"  # the rule is for set only


def test_without_rules_everyone_may_ask(tmp_path):
    harness = harness_with(tmp_path)
    [reply] = harness.receive(request("anything", type="set", sender="anyone@anywhere.example/x"))
    assert reply["type"] == "result"


def test_shutdown_refuses_new_requests_finishes_those_in_flight_and_closes_the_stream(tmp_path):
    harness = harness_with(tmp_path, shutdown_grace=10.0)
    harness.component.running = True
    harness.receive(request("slow", id="accepted"))
    stopped = harness.component.stopService()
    [refused] = harness.receive(request("fast", id="late", sender="romeo@localhost/r"))
    assert condition(refused) == ("wait", "resource-constraint")
    harness.clock.advance(5)
    written = harness.transport.value().decode()
    assert "id='accepted'" in written and written.endswith("</stream:stream>")
    done = []
    stopped.addCallback(done.append)
    assert len(done) == 1  # stopped


def test_shutdown_gives_up_on_a_hung_responder_after_the_grace_period(tmp_path, caplog_twisted):
    harness = harness_with(tmp_path, shutdown_grace=3.0, limits=Limits(handler_timeout=60.0))
    harness.component.running = True
    harness.receive(request("never", id="hung"))
    stopped = harness.component.stopService()
    done = []
    stopped.addCallback(done.append)
    harness.clock.advance(3.1)
    assert len(done) == 1
    assert "unanswered" in caplog_twisted.text()
