"""Hostile input on the stream: each kind closes the stream with the right stream error, or is answered."""

import pytest

from component.config import Limits
from component.testing import InMemoryComponent, make_settings

NS_STREAMS = "urn:ietf:params:xml:ns:xmpp-streams"
PING = "<iq type='get' id='p1' from='juliet@localhost/b' to='iq.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"


@pytest.fixture
def harness():
    from pathlib import Path

    settings = make_settings(limits=Limits(max_stanza_bytes=4096, max_depth=8))
    return InMemoryComponent([Path(__file__).parents[2] / "handlers"], settings=settings)


def closed_with(harness, data: bytes) -> str | None:
    """Feed raw bytes; return the stream error condition the component closed with, if it did."""
    harness.stream.dataReceived(data)
    written = harness.transport.value().decode("utf-8", "replace")
    if not harness.transport.disconnecting:
        return None
    assert written.endswith("</stream:stream>"), written
    start = written.index("<stream:error>")
    condition = written[start:].split("<", 3)[2].split(" ")[0]
    return condition


def still_answers(harness) -> bool:
    harness.transport.clear()
    return bool(harness.receive(PING))


@pytest.mark.parametrize(
    "data, condition",
    [
        (b"<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'></iq>", "not-well-formed"),
        (b"<iq type='get' id='x'><p:ping/></iq>", "not-well-formed"),  # undeclared prefix
        (b"<iq type='get' id='\xff\xfe'/>", "not-well-formed"),  # invalid UTF-8
        (b"<iq type='get' id='x'><!-- a comment --><ping xmlns='urn:xmpp:ping'/></iq>", "restricted-xml"),
        (b"<?pi something?>", "restricted-xml"),
        (b"<iq type='get' id='x' from='a@b/c' to='iq.localhost'>" + b"<a>" * 20, "policy-violation"),
        (b"<iq type='get' id='x'><q xmlns='urn:x'>" + b"x" * 10_000, "policy-violation"),
    ],
    ids=["unclosed", "undeclared-prefix", "invalid-utf8", "comment", "processing-instruction", "deep", "large"],
)
def test_stream_level_faults_close_the_stream_with_the_right_error(harness, data, condition):
    assert closed_with(harness, data) == condition


def test_doctype_and_billion_laughs_are_refused_before_any_expansion():
    from component.stream import LimitedElementStream, StreamFault

    laughs = (
        b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
        + b"".join(
            b"<!ENTITY lol%d '%s'>" % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10) for i in range(1, 10)
        )
        + b"]><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>&lol9;"
    )
    stream = LimitedElementStream(4096, 8)
    stream.DocumentStartEvent = stream.ElementEvent = stream.DocumentEndEvent = lambda *a: None
    with pytest.raises(StreamFault) as raised:
        stream.parse(laughs)
    assert raised.value.condition == "restricted-xml"


def test_after_a_stream_fault_the_stream_ignores_further_bytes(harness):
    assert closed_with(harness, b"<iq><unclosed></iq>") == "not-well-formed"
    harness.stream.dataReceived(PING.encode())  # arrives after the close: no crash, no reply
    assert "p1" not in harness.transport.value().decode()


def test_a_stanza_just_under_the_size_limit_is_answered(harness):
    padding = "x" * 3000
    replies = harness.receive(
        f"<iq type='get' id='big' from='juliet@localhost/b' to='iq.localhost'><q xmlns='urn:x'>{padding}</q></iq>"
    )
    assert [reply["id"] for reply in replies] == ["big"]


def test_a_failure_inside_the_router_is_logged_and_the_stream_goes_on(harness, caplog_twisted, monkeypatch):
    def explode(iq):
        raise RuntimeError("bug in routing")

    monkeypatch.setattr(harness.stream, "route_iq", explode)
    harness.stream.dataReceived(PING.encode())
    assert not harness.transport.disconnecting
    assert "bug in routing" in "".join(e["log_failure"].getTraceback() for e in caplog_twisted if e.get("log_failure"))


def test_many_stanzas_over_time_do_not_accumulate_in_the_parser(harness):
    for index in range(200):
        assert harness.receive(PING.replace("p1", f"p{index}"))
    assert harness.stream.stream.currElem is None and harness.stream.stream.stanzaSize == 0


@pytest.mark.parametrize("namespace", ["a&lt;b", "x&amp;y", "q&apos;uote", "d&quot;q", "gt&gt;"])
def test_namespaces_with_markup_characters_are_echoed_as_well_formed_xml(harness, namespace):
    # Found by `make soak`: domish writes namespace names unescaped, so an echoed payload in such a
    # namespace made the reply malformed, and the server would have closed the stream.
    [reply] = harness.receive(
        f"<iq type='get' id='ns' from='juliet@localhost/b' to='iq.localhost'><query xmlns=\"{namespace}\"/></iq>"
    )
    [payload, error] = list(reply.elements())
    assert payload.uri == namespace.replace("&lt;", "<").replace("&amp;", "&").replace("&apos;", "'").replace(
        "&quot;", '"'
    ).replace("&gt;", ">")
    assert error.name == "error" and not harness.transport.disconnecting
