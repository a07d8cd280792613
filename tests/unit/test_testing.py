"""The handler test kit itself: stable ids, outbound queries answered by the test, timeouts, logged failures."""

import pytest

from component.testing import HandlerHarness, LoggedFailures

TEXT_MODULE = """
from twisted.words.xish import domish

from component import IqError, IqTimeout, responder


@responder("urn:example:proxy", "get")
async def proxy(request):
    try:
        reply = await request.component.query("backend.localhost", "urn:example:data", timeout=5)
    except IqError as e:
        answer = domish.Element(("urn:example:proxy", "failed"))
        answer["condition"] = e.condition
        return answer
    except IqTimeout:
        return domish.Element(("urn:example:proxy", "late"))
    return next(reply.elements())
"""


def harness(handler_harness, tmp_path):
    (tmp_path / "proxy.py").write_text(TEXT_MODULE)
    return handler_harness(tmp_path / "proxy.py")


def test_outbound_queries_are_listed_with_stable_ids_and_answered_by_the_test(handler_harness, tmp_path):
    kit = harness(handler_harness, tmp_path)
    assert kit.ask("<iq type='get'><query xmlns='urn:example:proxy'/></iq>") is None  # waiting on the backend
    [query] = kit.queries()
    assert query == (
        "<iq type='get' id='q1' to='backend.localhost' from='iq.localhost'><query xmlns='urn:example:data'/></iq>"
    )
    kit.answer(query, "<data xmlns='urn:example:data'>42</data>")
    assert kit.reply("1") == (
        "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'>"
        "<data xmlns='urn:example:data'>42</data></iq>"
    )


def test_an_outbound_query_can_be_answered_with_an_error(handler_harness, tmp_path):
    kit = harness(handler_harness, tmp_path)
    kit.ask("<iq type='get' id='e'><query xmlns='urn:example:proxy'/></iq>")
    [query] = kit.queries()
    kit.answer(
        query, "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>", "error"
    )
    assert "condition='item-not-found'" in kit.reply("e")


def test_the_clock_drives_timeouts(handler_harness, tmp_path):
    kit = harness(handler_harness, tmp_path)
    kit.ask("<iq type='get' id='t'><query xmlns='urn:example:proxy'/></iq>")
    kit.advance(5.1)
    assert "<late xmlns='urn:example:proxy'/>" in kit.reply("t")


TIMED_MODULE = """
from twisted.internet import task

from component import responder


@responder("urn:example:timer", "get")
def in_five_seconds(request):
    return task.deferLater(request.component.clock, 5, lambda: None)
"""


def test_a_handler_timed_with_the_component_clock_answers_when_the_harness_advances_it(handler_harness, tmp_path):
    (tmp_path / "timer.py").write_text(TIMED_MODULE)
    kit = handler_harness(tmp_path / "timer.py")
    assert kit.ask("<iq type='get'><query xmlns='urn:example:timer'/></iq>") is None
    kit.advance(4.9)
    assert kit.reply("1") is None
    kit.advance(0.1)
    assert kit.reply("1") == "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'/>"


def test_requests_may_give_their_own_id_and_sender(handler_harness):
    from pathlib import Path

    kit = handler_harness(Path(__file__).parents[2] / "handlers" / "ping.py")
    assert kit.ask("<iq type='get' id='mine'><ping xmlns='urn:xmpp:ping'/></iq>", sender="romeo@localhost/r") == (
        "<iq type='result' id='mine' to='romeo@localhost/r' from='iq.localhost'/>"
    )


CRASHING_MODULE = """
from component import responder


@responder("urn:example:crash", "get")
def crash(request):
    raise RuntimeError("a bug in the handler")
"""


def test_a_failure_the_component_logs_fails_the_test_though_the_reply_looks_handled(tmp_path):
    (tmp_path / "crash.py").write_text(CRASHING_MODULE)
    with pytest.raises(AssertionError, match="a bug in the handler"), LoggedFailures() as logged:
        reply = HandlerHarness(tmp_path / "crash.py", logged=logged).ask(
            "<iq type='get'><query xmlns='urn:example:crash'/></iq>"
        )
        assert "internal-server-error" in reply


def test_a_failure_the_test_expects_is_claimed_and_passes(tmp_path):
    (tmp_path / "crash.py").write_text(CRASHING_MODULE)
    with LoggedFailures() as logged:
        kit = HandlerHarness(tmp_path / "crash.py", logged=logged)
        assert "internal-server-error" in kit.ask("<iq type='get'><query xmlns='urn:example:crash'/></iq>")
        [event] = kit.expect_logged_failure("a bug in the handler")
    assert event["log_failure"].check(RuntimeError)


def test_expecting_a_failure_that_was_not_logged_fails(handler_harness):
    from pathlib import Path

    kit = handler_harness(Path(__file__).parents[2] / "handlers" / "ping.py")
    kit.ask("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
    with pytest.raises(AssertionError, match="no failure with 'anything' was logged"):
        kit.expect_logged_failure("anything")
