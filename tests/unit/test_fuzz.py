"""Property-based fuzzing of what arrives on the stream: generated stanzas and mutated bytes.

Bounded here (`make test`); `make soak` runs the same properties with many more
examples and prints how many inputs were tried.

The stream logs a failure in routing and keeps going (one stanza must not end it), so
replies alone cannot show that routing failed: every example also fails on any failure
logged while it ran (``LoggedFailures``).
"""

from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from component.config import Limits
from component.request import InvalidFormat, parse_jid
from component.router import Router
from component.testing import InMemoryComponent, LoggedFailures, make_settings

HANDLERS = [Path(__file__).parents[2] / "handlers", Path(__file__).parents[2] / "examples" / "handlers"]
LIMITS = Limits(max_stanza_bytes=16 * 1024, max_depth=12)
NAMESPACES = [
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "jabber:iq:version",
    "urn:xmpp:ping",
    "urn:xmpp:time",
    "custom-xep",
    "urn:example:hello",
    "urn:example:unknown",
]
# How many examples: the "suite" profile in `make test`, "soak" in `make soak` (tests/conftest.py).
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
xml_text = text.filter(lambda value: all(ord(c) >= 0x20 or c in "\t\n\r" for c in value))
jids = st.one_of(
    st.sampled_from(["juliet@localhost/balcony", "localhost", "iq.localhost", "user@iq.localhost/r", "@@", "a..b"]),
    xml_text,
)


@st.composite
def elements(draw, depth=0):
    name = draw(st.sampled_from(["query", "ping", "time", "item", "hello", "x", "echo"]))
    attributes = {}
    if draw(st.booleans()):
        # A namespace name is a URI reference: no white space (domish also splits names on it).
        uri = xml_text.filter(lambda value: value and not any(c.isspace() for c in value))
        attributes["xmlns"] = draw(st.one_of(st.sampled_from(NAMESPACES), uri))
    for key in draw(st.lists(st.sampled_from(["node", "key", "var", "type"]), max_size=2, unique=True)):
        attributes[key] = draw(xml_text)
    children = draw(st.lists(elements(depth + 1), max_size=2)) if depth < 3 else []
    body = escape(draw(xml_text)) + "".join(children)
    rendered = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    return f"<{name}{rendered}>{body}</{name}>"


@st.composite
def stanzas(draw):
    attributes = {}
    for key, values in (
        ("type", st.sampled_from(["get", "set", "result", "error", "subscribe", ""])),
        ("id", xml_text),
        ("from", jids),
        ("to", jids),
    ):
        if draw(st.booleans()) or key in ("type", "id"):
            attributes[key] = draw(values)
    payloads = draw(st.lists(elements(), max_size=3))
    rendered = "".join(f" {key}={quoteattr(value)}" for key, value in attributes.items())
    return attributes, f"<iq{rendered}>{''.join(payloads)}</iq>", len(payloads)


def fresh() -> InMemoryComponent:
    return InMemoryComponent(HANDLERS, settings=make_settings(limits=LIMITS))


def valid_jid(value: str) -> bool:
    try:
        parse_jid(value)
    except InvalidFormat:
        return False
    return True


@FUZZ
@given(stanzas())
def test_generated_stanzas_get_exactly_the_replies_the_rules_call_for(generated):
    with LoggedFailures():
        get_exactly_the_replies_the_rules_call_for(generated)


def get_exactly_the_replies_the_rules_call_for(generated):
    attributes, xml, payload_count = generated
    harness = fresh()
    replies = harness.receive(xml)
    assert not harness.transport.disconnecting
    answerable = (
        attributes["type"] in ("get", "set") and "id" in attributes and valid_jid(attributes.get("from", "localhost"))
    )
    if answerable:
        assert [reply.getAttribute("id") for reply in replies] == [attributes["id"]]
        if payload_count != 1:
            assert replies[0]["type"] == "error"
    elif attributes["type"] in ("result", "error") or "id" not in attributes:
        assert replies == []
    else:
        assert len(replies) <= 1


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


def mutate(data: bytes, mutations) -> bytes:
    for kind, position, argument in mutations:
        position %= max(1, len(data))
        if kind == "flip":
            data = data[:position] + bytes([argument]) + data[position + 1 :]
        elif kind == "insert":
            data = data[:position] + argument + data[position:]
        elif kind == "delete":
            data = data[:position] + data[position + argument :]
        else:
            data = data[:position]
    return data


@FUZZ
@given(stanzas(), st.lists(mutation, min_size=1, max_size=6), st.integers(1, 64))
def test_mutated_bytes_never_crash_and_never_grow_the_parser(generated, mutations, chunk):
    _, xml, _ = generated
    data = mutate(xml.encode("utf-8") * 2, mutations)
    harness = fresh()
    with LoggedFailures():
        for start in range(0, len(data), chunk):  # arbitrary read boundaries
            harness.stream.dataReceived(data[start : start + chunk])
    written = harness.transport.value()
    if harness.transport.disconnecting:
        assert b"<stream:error>" in written and written.endswith(b"</stream:stream>")
    else:
        parser = harness.stream.stream
        if parser.fault is None:  # building: never more than the limit and one read past it
            assert parser.fed - parser.mark <= LIMITS.max_stanza_bytes + chunk
            assert parser.depth <= LIMITS.max_depth + 1
        else:  # discarding the rest of a faulty stanza: nothing of it is kept
            assert parser.stanza.children == [] and parser.current is None


def test_a_failure_logged_while_routing_fails_the_property_though_the_replies_are_right(monkeypatch):
    """A response (type result) gets no reply whether routing works or not: only the capture can tell."""

    def broken(self, iq, link):
        raise RuntimeError("routing is broken")

    monkeypatch.setattr(Router, "receive", broken)
    response = "<iq type='result' id='r1' from='juliet@localhost/balcony' to='iq.localhost'/>"
    with pytest.raises(AssertionError, match="routing is broken"), LoggedFailures():
        get_exactly_the_replies_the_rules_call_for(({"type": "result", "id": "r1"}, response, 0))
