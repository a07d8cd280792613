"""Hostile input on the stream: a stanza's fault is answered for that stanza; only a broken stream closes."""

from pathlib import Path

import pytest

from component.config import Limits
from component.parser import StanzaParser, StreamFault
from component.testing import InMemoryComponent, make_settings

NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
PING = "<iq type='get' id='p1' from='juliet@localhost/b' to='iq.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
LIMITS = Limits(max_stanza_bytes=4096, max_depth=8)


@pytest.fixture
def harness():
    settings = make_settings(limits=LIMITS)
    return InMemoryComponent([Path(__file__).parents[2] / "handlers"], settings=settings)


def closed_with(harness, data: bytes) -> str | None:
    """Feed raw bytes; return the stream error condition the component closed with, if it did."""
    harness.stream.dataReceived(data)
    written = harness.transport.value().decode("utf-8", "replace")
    if not harness.transport.disconnecting:
        return None
    assert written.endswith("</stream:stream>"), written
    start = written.index("<stream:error>")
    return written[start:].split("<", 3)[2].split(" ")[0]


def still_answers(harness) -> bool:
    harness.transport.clear()
    return [reply["id"] for reply in harness.receive(PING)] == ["p1"]


def error_of(reply) -> tuple[str, str, str | None]:
    """(type, condition, text) of an error reply."""
    [error] = [child for child in reply.elements() if child.name == "error"]
    [condition] = [child.name for child in error.elements() if child.uri == NS_STANZAS and child.name != "text"]
    text = next((str(child) for child in error.elements() if child.name == "text"), None)
    return error["type"], condition, text


def deep(levels: int) -> str:
    return "<a>" * levels + "</a>" * levels


@pytest.mark.parametrize(
    "data, condition",
    [
        (b"<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'></iq>", "not-well-formed"),
        (b"<iq type='get' id='x'><p:ping/></iq>", "not-well-formed"),  # undeclared prefix
        (b"<iq type='get' id='\xff\xfe'/>", "not-well-formed"),  # invalid UTF-8
        (b"<iq type='get' id='x'><!-- a comment --><ping xmlns='urn:xmpp:ping'/></iq>", "restricted-xml"),
        (b"<?pi something?>", "restricted-xml"),
    ],
    ids=["unclosed", "undeclared-prefix", "invalid-utf8", "comment", "processing-instruction"],
)
def test_faults_of_the_xml_stream_itself_close_it_with_the_right_error(harness, data, condition):
    assert closed_with(harness, data) == condition


@pytest.mark.parametrize(
    "payload, text",
    [
        (f"<q xmlns='urn:x'>{'x' * 10_000}</q>", "Stanza larger than 4096 bytes"),
        (f"<q xmlns='urn:x'>{deep(20)}</q>", "Elements nested deeper than 8 levels"),
        (f"<q xmlns='urn:x' a='{'&quot;' * 1000}'/>", "Stanza larger than 4096 bytes"),
    ],
    ids=["large", "deep", "large-attribute"],
)
def test_a_request_over_a_limit_gets_policy_violation_and_the_stream_stays_up(harness, payload, text):
    [reply] = harness.receive(f"<iq type='set' id='big' from='juliet@localhost/b' to='iq.localhost'>{payload}</iq>")
    assert (reply["type"], reply["id"], reply["to"], reply["from"]) == (
        "error",
        "big",
        "juliet@localhost/b",
        "iq.localhost",
    )
    assert error_of(reply) == ("modify", "policy-violation", text)
    assert not harness.transport.disconnecting
    assert still_answers(harness)


def test_an_oversized_request_arriving_in_pieces_is_read_to_its_end_without_keeping_its_content(harness):
    harness.stream.dataReceived(
        b"<iq type='get' id='big' from='juliet@localhost/b' to='iq.localhost'><q xmlns='urn:x'>"
    )
    parser = harness.stream.stream
    for _ in range(parser.hard_limit_bytes // 4100 - 1):  # several times the limit, below the hard one
        harness.stream.dataReceived(b"<item>" + b"x" * 4000 + b"</item>")
        parser = harness.stream.stream
        assert parser.stanza is not None and parser.stanza.children == [] and parser.current is None
    assert harness.sent() == []  # nothing is answered before the stanza ends
    harness.stream.dataReceived(b"</q></iq>" + PING.encode())
    replies = harness.sent()
    assert [(reply["id"], reply["type"]) for reply in replies] == [("big", "error"), ("p1", "result")]
    assert error_of(replies[0])[1] == "policy-violation"


def test_requests_around_a_faulty_stanza_in_the_same_read_are_all_answered(harness):
    before = PING.replace("p1", "before")
    after = PING.replace("p1", "after")
    oversized = (
        f"<iq type='get' id='deep' from='romeo@localhost/r' to='iq.localhost'><q xmlns='urn:x'>{deep(30)}</q></iq>"
    )
    replies = harness.receive(before + oversized + after)
    assert [(reply["id"], reply["type"]) for reply in replies] == [
        ("before", "result"),
        ("deep", "error"),
        ("after", "result"),
    ]


@pytest.mark.parametrize(
    "stanza",
    [
        "<iq type='get' id='x' to='iq.localhost'><q xmlns='urn:x'>{}</q></iq>",  # no from
        "<iq type='get' from='juliet@localhost/b' to='iq.localhost'><q xmlns='urn:x'>{}</q></iq>",  # no id
        "<iq type='result' id='x' from='juliet@localhost/b' to='iq.localhost'><q xmlns='urn:x'>{}</q></iq>",
        "<message from='juliet@localhost/b' to='iq.localhost'><body>{}</body></message>",
    ],
    ids=["no-from", "no-id", "result", "message"],
)
def test_a_faulty_stanza_that_cannot_be_answered_is_dropped_with_one_log_line(harness, caplog_twisted, stanza):
    assert harness.receive(stanza.format(deep(20))) == []
    assert not harness.transport.disconnecting
    dropped = [event for event in caplog_twisted if "Dropped" in caplog_twisted.format(event)]
    assert len(dropped) == 1 and "nested deeper than 8 levels" in caplog_twisted.format(dropped[0])
    assert still_answers(harness)


def test_one_stanza_growing_past_the_hard_limit_closes_the_stream(harness):
    hard_limit = harness.stream.stream.hard_limit_bytes
    assert hard_limit >= 4 * LIMITS.max_stanza_bytes
    harness.stream.dataReceived(
        b"<iq type='get' id='huge' from='juliet@localhost/b' to='iq.localhost'><q xmlns='urn:x'>"
    )
    assert closed_with(harness, b"x" * hard_limit) == "policy-violation"


def test_a_start_tag_growing_past_the_hard_limit_closes_the_stream(harness):
    hard_limit = harness.stream.stream.hard_limit_bytes
    assert closed_with(harness, b"<iq type='get' id='" + b"x" * hard_limit) == "policy-violation"


def test_white_space_keepalives_between_stanzas_never_add_up_to_a_limit(harness):
    for _ in range(100):
        harness.stream.dataReceived(b" " * 4000)
    assert not harness.transport.disconnecting
    assert still_answers(harness)


def test_doctype_and_billion_laughs_are_refused_before_any_expansion():
    laughs = (
        b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
        + b"".join(
            b"<!ENTITY lol%d '%s'>" % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10) for i in range(1, 10)
        )
        + b"]><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>&lol9;"
    )
    with pytest.raises(StreamFault) as raised:
        StanzaParser(4096, 8).parse(laughs)
    assert raised.value.condition == "restricted-xml"


def test_after_a_stream_fault_the_stream_ignores_further_bytes(harness):
    assert closed_with(harness, b"<iq><unclosed></iq>") == "not-well-formed"
    harness.stream.dataReceived(PING.encode())  # arrives after the close: no crash, no reply
    assert "p1" not in harness.transport.value().decode()


def test_a_stanza_just_under_the_size_limit_is_answered(harness):
    head = "<iq type='get' id='big' from='juliet@localhost/b' to='iq.localhost'><q xmlns='urn:x'>"
    padding = "x" * (LIMITS.max_stanza_bytes - len(head) - len("</q></iq>") - 10)
    [reply] = harness.receive(f"{head}{padding}</q></iq>")
    assert error_of(reply)[1] == "service-unavailable"  # answered by the router, not refused by the parser


def test_the_default_limit_takes_what_the_servers_forward_at_their_own_limits():
    # Prosody and ejabberd take 256 KiB from a client and write each quote they forward as a
    # six-byte entity: a client's stanza can reach the component six times larger.
    assert Limits().max_stanza_bytes >= 6 * 256 * 1024 + 4096


def test_a_failure_inside_the_router_is_logged_and_the_stream_goes_on(harness, caplog_twisted, monkeypatch):
    def explode(iq, link):
        raise RuntimeError("bug in routing")

    monkeypatch.setattr(harness.component.router, "receive", explode)
    harness.stream.dataReceived(PING.encode())
    assert not harness.transport.disconnecting
    assert "bug in routing" in "".join(e["log_failure"].getTraceback() for e in caplog_twisted if e.get("log_failure"))


def test_many_stanzas_over_time_do_not_accumulate_in_the_parser(harness):
    for index in range(200):
        assert harness.receive(PING.replace("p1", f"p{index}"))
    parser = harness.stream.stream
    assert parser.current is None and parser.stanza is None and parser.depth == 1


@pytest.mark.parametrize("namespace", ["a&lt;b", "x&amp;y", "q&apos;uote", "d&quot;q", "gt&gt;"])
def test_namespaces_with_markup_characters_are_echoed_as_well_formed_xml(harness, namespace):
    # Found by `make soak`: a namespace name written unescaped made the reply malformed, and the
    # server would have closed the stream.
    [reply] = harness.receive(
        f"<iq type='get' id='ns' from='juliet@localhost/b' to='iq.localhost'><query xmlns=\"{namespace}\"/></iq>"
    )
    [payload, error] = list(reply.elements())
    unescaped = namespace.replace("&lt;", "<").replace("&amp;", "&").replace("&apos;", "'")
    assert payload.uri == unescaped.replace("&quot;", '"').replace("&gt;", ">")
    assert error.name == "error" and not harness.transport.disconnecting
