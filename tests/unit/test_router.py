"""The router's table (DESIGN.md, RFC 6120 section 8), one behaviour per test."""

import textwrap
from pathlib import Path

import pytest

from component.errors import NS_STANZAS
from component.testing import InMemoryComponent

CLIENT = "juliet@localhost/balcony"

RESPONDERS = """
from twisted.internet import defer, task
from twisted.words.xish import domish

from component import IqError, IqTimeout, StanzaError, responder

NS = "urn:example:router"
later_replies = []


def echo(request):
    return request.payload


@responder(NS, "get", element="plain")
def plain(request):
    return echo(request)


@responder(NS, "get", element="none")
def none(request):
    return None


@responder(NS, "get", element="deferred")
def deferred(request):
    return defer.succeed(echo(request))


@responder(NS, "get", element="later")
def later(request):
    d = defer.Deferred()
    later_replies.append(d)
    return d


@responder(NS, "get", element="coroutine")
async def coroutine(request):
    await defer.succeed(None)
    return echo(request)


@responder(NS, "get", element="stanza-error")
def stanza_error(request):
    raise StanzaError("not-allowed", text="not for you")


@responder(NS, "get", element="async-stanza-error")
async def async_stanza_error(request):
    raise StanzaError("item-not-found")


@responder(NS, "get", element="crash")
def crash(request):
    raise RuntimeError("secret internals")


@responder(NS, "get", element="not-an-element")
def not_an_element(request):
    return "a string"


@responder(NS, "get", element="iq-timeout")
def iq_timeout(request):
    raise IqTimeout("nobody answered")


@responder(NS, "get", element="iq-error")
def iq_error(request):
    raise IqError("forbidden", "auth", text="third party's private text")


@responder(NS, "get", element="request")
def describe(request):
    reply = domish.Element((NS, "request"))
    reply["sender"] = request.sender.full()
    reply["recipient"] = request.recipient.full()
    reply["type"] = request.type
    reply["id"] = request.id
    reply["payload"] = request.payload.name
    reply["stanza"] = request.stanza.name
    reply["component"] = request.component.jid
    return reply


@responder(NS, "set")
def any_set(request):
    return None


@responder("urn:example:get-only", "get")
def get_only(request):
    return None
"""


@pytest.fixture
def harness(tmp_path: Path) -> InMemoryComponent:
    (tmp_path / "router_cases.py").write_text(textwrap.dedent(RESPONDERS))
    return InMemoryComponent([tmp_path])


def later_reply(harness: InMemoryComponent):
    """The Deferred the ``later`` responder returned last."""
    return harness.modules[0].module.later_replies[-1]


def iq(body: str = "", type: str = "get", id: str = "q1", sender: str = CLIENT, to: str = "iq.localhost") -> str:
    attributes = f" type='{type}'" if type else ""
    attributes += f" id='{id}'" if id is not None else ""
    attributes += f" from='{sender}'" if sender else ""
    attributes += f" to='{to}'" if to else ""
    return f"<iq{attributes}>{body}</iq>"


def case(element: str, ns: str = "urn:example:router") -> str:
    return f"<{element} xmlns='{ns}'/>"


def only(replies):
    assert len(replies) == 1, [r.toXml() for r in replies]
    return replies[0]


def error_condition(reply):
    assert reply["type"] == "error", reply.toXml()
    [error] = [child for child in reply.elements() if child.name == "error"]
    assert error.uri == "jabber:component:accept"  # the stream's namespace, not jabber:client
    conditions = [child.name for child in error.elements() if child.uri == NS_STANZAS and child.name != "text"]
    assert len(conditions) == 1
    return error["type"], conditions[0]


def payload(reply):
    children = list(reply.elements())
    assert len(children) == 1, reply.toXml()
    return children[0]


def test_reply_carries_the_request_id_with_to_and_from_swapped(harness):
    reply = only(harness.receive(iq(case("plain"), id="abc-123", to="iq.localhost")))
    assert (reply["type"], reply["id"], reply["to"], reply["from"]) == ("result", "abc-123", CLIENT, "iq.localhost")


def test_plain_responder_returns_the_result_payload(harness):
    reply = only(harness.receive(iq(case("plain"))))
    assert payload(reply).name == "plain" and payload(reply).uri == "urn:example:router"


def test_responder_returning_none_gives_an_empty_result(harness):
    reply = only(harness.receive(iq(case("none"))))
    assert reply["type"] == "result" and list(reply.elements()) == []


def test_deferred_responder_result(harness):
    assert payload(only(harness.receive(iq(case("deferred"))))).name == "deferred"


def test_reply_waits_for_a_deferred_that_fires_later(harness):
    assert harness.receive(iq(case("later"))) == []
    later_reply(harness).callback(None)
    assert only(harness.sent())["type"] == "result"


def test_async_def_responder_result(harness):
    assert payload(only(harness.receive(iq(case("coroutine"))))).name == "coroutine"


def test_request_exposes_sender_recipient_type_id_payload_stanza_component(harness):
    reply = only(harness.receive(iq(case("request"), id="r9", to="bot@iq.localhost/x")))
    described = payload(reply)
    assert dict(described.attributes) == {
        "sender": CLIENT,
        "recipient": "bot@iq.localhost/x",
        "type": "get",
        "id": "r9",
        "payload": "request",
        "stanza": "iq",
        "component": "iq.localhost",
    }


def test_stanza_error_becomes_that_error_with_its_text(harness):
    reply = only(harness.receive(iq(case("stanza-error"))))
    assert error_condition(reply) == ("cancel", "not-allowed")
    [error] = [child for child in reply.elements() if child.name == "error"]
    assert str(next(error.elements(NS_STANZAS, "text"))) == "not for you"


def test_stanza_error_from_async_responder(harness):
    assert error_condition(only(harness.receive(iq(case("async-stanza-error"))))) == ("cancel", "item-not-found")


def test_other_exception_becomes_internal_server_error_and_logs_traceback(harness, caplog_twisted):
    reply = only(harness.receive(iq(case("crash"), id="boom")))
    assert error_condition(reply) == ("cancel", "internal-server-error")
    assert "secret internals" not in reply.toXml()
    [event] = [e for e in caplog_twisted if e.get("log_failure")]
    text = caplog_twisted.format(event)
    assert CLIENT in text and "boom" in text and "urn:example:router" in text
    assert "RuntimeError: secret internals" in event["log_failure"].getTraceback()


def test_return_value_that_is_not_an_element_becomes_internal_server_error(harness, caplog_twisted):
    assert error_condition(only(harness.receive(iq(case("not-an-element"))))) == ("cancel", "internal-server-error")
    assert any("returned str" in caplog_twisted.format(e) for e in caplog_twisted)


def test_iq_timeout_escaping_a_responder_becomes_remote_server_timeout(harness):
    assert error_condition(only(harness.receive(iq(case("iq-timeout"))))) == ("wait", "remote-server-timeout")


def test_iq_error_escaping_a_responder_becomes_undefined_condition_without_its_text(harness):
    reply = only(harness.receive(iq(case("iq-error"))))
    assert error_condition(reply) == ("cancel", "undefined-condition")
    assert "private text" not in reply.toXml()


def test_namespace_without_any_responder_is_service_unavailable(harness):
    reply = only(harness.receive(iq(case("query", ns="urn:example:nobody"))))
    assert error_condition(reply) == ("cancel", "service-unavailable")


def test_error_reply_echoes_a_small_payload(harness):
    reply = only(harness.receive(iq(case("query", ns="urn:example:nobody"))))
    assert [child.uri for child in reply.elements() if child.name == "query"] == ["urn:example:nobody"]


def test_error_reply_echoes_a_large_payload_as_its_element_and_attributes_alone(harness):
    big = f"<query xmlns='urn:example:nobody' node='n' sessionid='s'>{'x' * 5000}<big/></query>"
    reply = only(harness.receive(iq(big)))
    echoed, _ = list(reply.elements())
    assert (echoed.uri, echoed.name, dict(echoed.attributes)) == (
        "urn:example:nobody",
        "query",
        {"node": "n", "sessionid": "s"},
    )
    assert echoed.children == []


def test_error_reply_leaves_out_a_payload_whose_attributes_alone_are_large(harness):
    big = f"<query xmlns='urn:example:nobody' note='{'x' * 5000}'/>"
    reply = only(harness.receive(iq(big)))
    assert [child.name for child in reply.elements()] == ["error"]


def test_namespace_with_responders_for_another_type_is_feature_not_implemented(harness):
    assert only(harness.receive(iq(case("query", ns="urn:example:get-only"))))["type"] == "result"
    reply = only(harness.receive(iq(case("query", ns="urn:example:get-only"), type="set")))
    assert error_condition(reply) == ("cancel", "feature-not-implemented")


def test_responder_for_any_element_answers_elements_without_their_own(harness):
    assert only(harness.receive(iq(case("whatever"), type="set")))["type"] == "result"


def test_get_for_an_element_nobody_serves_in_a_served_namespace_is_feature_not_implemented(harness):
    reply = only(harness.receive(iq(case("unheard-of"))))
    assert error_condition(reply) == ("cancel", "feature-not-implemented")


def test_get_without_payload_is_bad_request(harness):
    assert error_condition(only(harness.receive(iq("")))) == ("modify", "bad-request")


def test_get_with_two_payloads_is_bad_request(harness):
    reply = only(harness.receive(iq(case("plain") + case("none"))))
    assert error_condition(reply) == ("modify", "bad-request")


def test_text_beside_the_payload_does_not_count_as_a_second_payload(harness):
    assert only(harness.receive(iq(" \n" + case("plain") + " ")))["type"] == "result"


def test_request_without_id_is_dropped(harness, caplog_twisted):
    assert harness.receive(iq(case("plain"), id=None)) == []
    assert any("without an id" in caplog_twisted.format(e) for e in caplog_twisted)


def test_unknown_iq_type_is_bad_request(harness):
    assert error_condition(only(harness.receive(iq(case("plain"), type="subscribe")))) == ("modify", "bad-request")


@pytest.mark.parametrize("type", ["result", "error"])
def test_result_and_error_stanzas_are_never_answered(harness, type):
    assert harness.receive(iq(case("plain"), type=type)) == []
    assert harness.receive(iq("", type=type, id="unknown")) == []


def test_malformed_sender_jid_is_dropped_and_logged_as_no_reply_could_be_addressed(harness, caplog_twisted):
    assert harness.receive(iq(case("plain"), sender="@@bad@@")) == []
    assert "@@bad@@" in caplog_twisted.text()


@pytest.mark.parametrize("to", ["@@bad@@", "a..b", "x@"])
def test_malformed_recipient_jid_is_jid_malformed_from_the_component(harness, to):
    reply = only(harness.receive(iq(case("plain"), to=to)))
    assert error_condition(reply) == ("modify", "jid-malformed")
    assert reply["from"] == "iq.localhost"


def test_iq_to_a_user_of_the_component_domain_is_answered_from_that_address(harness):
    reply = only(harness.receive(iq(case("plain"), to="user@iq.localhost")))
    assert reply["from"] == "user@iq.localhost" and reply["type"] == "result"
    reply = only(harness.receive(iq(case("plain"), to="iq.localhost/res")))
    assert reply["from"] == "iq.localhost/res" and reply["type"] == "result"


def test_replies_while_disconnected_are_dropped_not_raised(harness):
    harness.receive(iq(case("later")))
    harness.disconnect()
    later_reply(harness).callback(None)
    assert harness.transport.value() == b""


def test_each_request_gets_exactly_one_reply(harness):
    requests = [iq(case(kind), id=f"n{n}") for n, kind in enumerate(["plain", "none", "crash", "stanza-error"] * 5)]
    replies = harness.receive("".join(requests))
    assert sorted(reply["id"] for reply in replies) == sorted(f"n{n}" for n in range(20))


def test_with_request_logging_on_each_request_is_one_debug_event_with_sender_id_namespace(tmp_path, caplog_twisted):
    from component.testing import make_settings

    (tmp_path / "router_cases.py").write_text(textwrap.dedent(RESPONDERS))
    harness = InMemoryComponent([tmp_path], settings=make_settings(log_requests=True))
    harness.receive(iq(case("plain"), id="logged-1") + iq(case("crash"), id="logged-2"))
    events = [e for e in caplog_twisted if e["log_level"].name == "debug" and e.get("id", "").startswith("logged")]
    assert [(e["id"], e["outcome"]) for e in events] == [("logged-1", "result"), ("logged-2", "internal-server-error")]
    assert all(e["sender"] == CLIENT and e["namespace"] == "urn:example:router" for e in events)


def test_without_request_logging_no_debug_event_is_made(harness, caplog_twisted):
    harness.receive(iq(case("plain"), id="quiet"))
    assert [e for e in caplog_twisted if e.get("id") == "quiet"] == []
