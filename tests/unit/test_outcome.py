"""What a responder or disco provider returns or raises becomes one reply, decided in component/outcome.py."""

import asyncio
import gc
import textwrap
from pathlib import Path

import pytest
from twisted.internet import defer
from twisted.words.xish import domish

from component.testing import InMemoryComponent

RESPONDERS = """
import asyncio

from twisted.internet import defer
from twisted.words.xish import domish

from component import StanzaError, responder
from component.discovery import DiscoInfo

NS = "urn:example:outcome"
shared = {}
returned = {}


def answer(text):
    element = domish.Element((NS, "answer"))
    element.addContent(text)
    return element


@responder(NS, "get", element="shared")
def from_a_cache_of_lookups_in_flight(request):
    key = request.payload.getAttribute("key")
    if key not in shared:
        shared[key] = defer.Deferred()
    return shared[key]


class Awaitable:
    def __await__(self):
        if False:
            yield
        return answer("from __await__")


@responder(NS, "get", element="awaitable")
def awaitable(request):
    return Awaitable()


@responder(NS, "get", element="coroutine")
async def coroutine(request):
    await defer.succeed(None)
    return answer("from a coroutine")


@responder(NS, "get", element="future")
def future(request):
    returned["future"] = asyncio.get_event_loop().create_future()
    return returned["future"]


@responder(NS, "get", element="cancelled")
def cancelled(request):
    return defer.fail(defer.CancelledError())


@responder(NS, "get", element="unwritable")
def unwritable(request):
    return answer("a control character \x01 XML cannot carry")


@responder(NS, "get", element="pending")
def pending(request):
    returned["pending"] = defer.Deferred()
    return returned["pending"]


def setup(component, options):
    component.disco.provide(info=lambda request: shared.setdefault("info", defer.Deferred()), node="shared")
    component.disco.provide(info=lambda request: 1 / 0, node="broken")
"""

NS = "urn:example:outcome"


@pytest.fixture
def harness(tmp_path):
    (tmp_path / "outcome.py").write_text(textwrap.dedent(RESPONDERS))
    return InMemoryComponent([Path(__file__).parents[2] / "handlers", tmp_path])


@pytest.fixture
def module(harness):
    return next(loaded.module for loaded in harness.modules if loaded.name == "outcome")


def ask(harness, element, id="q", sender="juliet@localhost/b", key=""):
    return harness.receive(
        f"<iq type='get' id='{id}' from='{sender}' to='iq.localhost'><{element} xmlns='{NS}' key='{key}'/></iq>"
    )


def answers(replies):
    return [(reply["id"], reply["type"], str(next(iter(reply.elements()), ""))) for reply in replies]


def condition(reply):
    [error] = [child for child in reply.elements() if child.name == "error"]
    return next(child.name for child in error.elements() if child.name != "text")


def test_a_deferred_shared_by_several_requests_answers_each_and_stays_untouched(harness, module):
    for index in range(3):
        assert ask(harness, "shared", id=f"r{index}", key="k") == []
    shared = module.shared["k"]
    shared.callback(module.answer("the lookup"))
    assert answers(harness.sent()) == [(f"r{index}", "result", "the lookup") for index in range(3)]
    seen = []
    shared.addCallback(lambda result: seen.append(result) or result)  # its owner, or a fourth request
    assert str(seen[0]) == "the lookup"
    assert answers(ask(harness, "shared", id="r3", key="k")) == [("r3", "result", "the lookup")]


def test_a_shared_deferred_that_fails_fails_each_request_and_its_owner_still_sees_the_failure(harness, module):
    for index in range(2):
        ask(harness, "shared", id=f"r{index}", key="f")
    shared = module.shared["f"]
    seen = []
    shared.addErrback(seen.append)  # registered by the owner before it fired
    shared.errback(RuntimeError("lookup failed"))
    assert [condition(reply) for reply in harness.sent()] == ["internal-server-error"] * 2
    assert seen[0].check(RuntimeError)


def test_a_failed_deferred_that_nobody_shares_is_not_reported_again_as_unhandled(harness, module, caplog_twisted):
    ask(harness, "pending")
    module.returned.pop("pending").errback(defer.CancelledError())
    assert condition(harness.sent()[0]) == "internal-server-error"
    gc.collect()
    assert "Unhandled error in Deferred" not in caplog_twisted.text()


def test_a_responders_deferred_is_not_cancelled_when_the_router_stops_waiting(harness, module):
    ask(harness, "pending")
    harness.clock.advance(harness.settings.limits.handler_timeout + 1)
    assert condition(harness.sent()[0]) == "internal-server-error"
    late = module.returned.pop("pending")
    assert not late.called  # not cancelled: it may be shared
    late.callback(None)
    assert harness.sent() == []


def test_an_object_with_await_is_awaited(harness):
    assert answers(ask(harness, "awaitable")) == [("q", "result", "from __await__")]


def test_a_coroutine_is_awaited(harness):
    assert answers(ask(harness, "coroutine")) == [("q", "result", "from a coroutine")]


def test_an_asyncio_future_is_awaited(harness, module):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        assert ask(harness, "future") == []
        module.returned["future"].set_result(module.answer("from a Future"))
        loop.run_until_complete(asyncio.sleep(0))  # the loop delivers the Future's callbacks
        assert answers(harness.sent()) == [("q", "result", "from a Future")]
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def test_a_cancelled_error_escaping_a_responder_is_logged(harness, caplog_twisted):
    [reply] = ask(harness, "cancelled")
    assert condition(reply) == "internal-server-error"
    assert "was cancelled while answering" in caplog_twisted.text()


def test_a_failure_while_writing_the_reply_after_the_responder_finished_is_logged(
    harness, module, monkeypatch, caplog_twisted
):
    ask(harness, "pending")

    def broken(stanza):
        raise RuntimeError("the writer broke")

    monkeypatch.setattr(harness.component.link, "send", broken)
    module.returned.pop("pending").callback(None)
    failures = [event for event in caplog_twisted if event.get("log_failure") is not None]
    assert [event["log_failure"].getErrorMessage() for event in failures] == ["the writer broke"]
    assert "Failed to reply" in caplog_twisted.format(failures[0])
    assert harness.component.router.in_flight == 0


def test_an_answer_that_cannot_be_written_as_xml_is_an_internal_server_error(harness, caplog_twisted):
    [reply] = ask(harness, "unwritable")
    assert condition(reply) == "internal-server-error"
    assert "cannot be written" in caplog_twisted.text()
    assert not harness.transport.disconnecting


def disco(harness, node, id="d"):
    return harness.receive(
        f"<iq type='get' id='{id}' from='juliet@localhost/b' to='iq.localhost'>"
        f"<query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/></iq>"
    )


def test_a_disco_provider_follows_the_same_rules(harness, module, caplog_twisted):
    assert disco(harness, "shared", id="d1") == [] and disco(harness, "shared", id="d2") == []
    module.shared["info"].callback(module.DiscoInfo(features=("urn:example:shared",)))
    replies = harness.sent()
    assert [reply["id"] for reply in replies] == ["d1", "d2"]
    assert all("urn:example:shared" in reply.toXml() for reply in replies)
    [broken] = disco(harness, "broken")
    assert condition(broken) == "internal-server-error"
    [logged] = [event for event in caplog_twisted if event.get("log_failure") is not None]
    assert "Disco info provider" in caplog_twisted.format(logged) and logged["log_failure"].check(ZeroDivisionError)


def test_the_tracker_registers_a_query_before_sending_it(harness):
    tracker = harness.component.tracker
    results = []

    def send_and_answer_at_once(iq):
        response = domish.Element((None, "iq"))
        response.attributes.update(type="result", id=iq["id"], to=iq["from"], **{"from": iq["to"]})
        tracker.receive(response)
        return True

    tracker._send = send_and_answer_at_once
    tracker.query("localhost", "urn:xmpp:ping").addCallback(results.append)
    assert [response["type"] for response in results] == ["result"]
    assert len(tracker) == 0
