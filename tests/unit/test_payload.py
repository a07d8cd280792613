"""Payload classes: parsed and checked before the responder runs, written back exactly, nothing lost."""

import enum
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.words.protocols.jabber.jid import JID

from component.parser import StanzaParser
from component.payload import Payload, PayloadError, attribute, child, child_text, children, text
from component.serializer import to_xml
from component.testing import HandlerHarness, canonical

NS = "urn:example:payload"


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Item(Payload, namespace=NS, element="item"):
    key: str = attribute()
    count: int = attribute(default=0)
    value: str = text(default="")


class Owner(Payload, namespace=NS, element="owner"):
    jid: JID = attribute()


class Query(Payload, namespace=NS, element="query"):
    node: str | None = attribute(default=None)
    ratio: float | None = attribute(default=None)
    enabled: bool = attribute(default=False)
    colour: Colour | None = attribute(default=None)
    when: datetime | None = child_text(default=None)
    owner: Owner | None = child(Owner, default=None)
    items: list[Item] = children(Item)


def element(xml: str):
    """The payload as the component's parser builds it."""
    stanzas = []
    parser = StanzaParser(1 << 20, 32)
    parser.ElementEvent = stanzas.append
    parser.parse(f"<stream xmlns='jabber:component:accept'><iq type='get'>{xml}</iq>".encode())
    return stanzas[0].firstChildElement()


def written(payload: Payload) -> str:
    return to_xml(payload.to_element())


def test_every_kind_of_field_is_read_with_its_conversion():
    query = Query.parse(
        element(
            f"<query xmlns='{NS}' node='n1' ratio='0.5' enabled='1' colour='blue'>"
            "<when>2026-11-30T12:30:00.250+01:00</when><owner jid='Juliet@Capulet.example/Balcony'/>"
            "<item key='a' count='3'>first</item><item key='b'/></query>"
        )
    )
    assert (query.node, query.ratio, query.enabled, query.colour) == ("n1", 0.5, True, Colour.BLUE)
    assert query.when == datetime(2026, 11, 30, 11, 30, 0, 250000, tzinfo=UTC)
    assert query.when.utcoffset() == timedelta(hours=1)
    assert query.owner.jid == JID("juliet@capulet.example/Balcony")
    assert query.items == [Item(key="a", count=3, value="first"), Item(key="b")]


def test_defaults_fill_what_is_absent():
    query = Query.parse(element(f"<query xmlns='{NS}'/>"))
    assert query == Query()
    assert (query.node, query.enabled, query.when, query.owner, query.items) == (None, False, None, None, [])


@pytest.mark.parametrize(
    "xml, message",
    [
        (f"<query xmlns='{NS}'><item/></query>", "items: <item xmlns='urn:example:payload'/>: key: attribute 'key'"),
        (f"<query xmlns='{NS}'><item key='a' count='many'/></query>", "count: 'many' is not an integer"),
        (f"<query xmlns='{NS}' ratio='half'/>", "ratio: 'half' is not a number"),
        (f"<query xmlns='{NS}' enabled='yes'/>", "enabled: 'yes' is not a boolean"),
        (f"<query xmlns='{NS}' colour='green'/>", "colour: 'green' is not one of blue, red"),
        (f"<query xmlns='{NS}'><when>yesterday</when></query>", "when: 'yesterday' is not an XEP-0082"),
        (f"<query xmlns='{NS}'><when>2026-11-30T12:00:00</when></query>", "with a time zone"),
        (f"<query xmlns='{NS}'><owner jid='a@b@c'/></query>", "owner: <owner xmlns='urn:example:payload'/>: jid:"),
        (f"<query xmlns='{NS}'><owner jid='a'/><owner jid='b'/></query>", "owner: only one <owner/> is allowed"),
    ],
)
def test_a_payload_that_does_not_fit_names_the_element_and_the_field(xml, message):
    with pytest.raises(PayloadError) as raised:
        Query.parse(element(xml))
    assert str(raised.value).startswith("<query xmlns='urn:example:payload'/>: ")
    assert message in str(raised.value)


def test_a_parsed_payload_is_written_back_exactly_with_what_the_class_does_not_declare():
    xml = (
        f"<query xmlns='{NS}' node='n' xmlns:x='urn:x' x:flag='on' unknown='kept'>"
        "<note xmlns='urn:other'>kept too</note>"
        "<item key='a'>one<sub xmlns='urn:other'/></item>"
        "<when>2026-11-30T12:00:00Z</when>"
        "loose text</query>"
    )
    assert canonical(written(Query.parse(element(xml)))) == canonical(xml)


def test_an_updated_payload_changes_only_what_was_changed():
    query = Query.parse(element(f"<query xmlns='{NS}' extra='1'><other xmlns='urn:o'/><item key='a'/></query>"))
    query.items.append(Item(key="b", count=2))
    query.node = "new"
    assert canonical(written(query)) == canonical(
        f"<query xmlns='{NS}' extra='1' node='new'><other xmlns='urn:o'/>"
        "<item key='a'/><item key='b' count='2'/></query>"
    )


def test_an_instance_built_in_code_writes_its_fields_in_declared_order():
    query = Query(enabled=True, when=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), items=[Item(key="k", value="v & <w>")])
    assert canonical(written(query)) == canonical(
        f"<query xmlns='{NS}' enabled='true'><when>2026-01-02T03:04:05Z</when>"
        "<item key='k'>v &amp; &lt;w&gt;</item></query>"
    )


def test_a_date_time_in_another_zone_is_written_with_its_offset():
    query = Query(when=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=-5))))
    assert "<when>2026-01-02T03:04:05.678-05:00</when>" in written(query)


def test_a_class_must_name_its_namespace_and_element_and_construction_checks_fields():
    with pytest.raises(TypeError, match="must name its namespace and element"):

        class Nameless(Payload):
            pass

    with pytest.raises(TypeError, match="needs key"):
        Item()
    with pytest.raises(TypeError, match="no field 'colour'"):
        Item(key="a", colour="red")


XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"), max_size=20)
XML_TEXT = XML_TEXT.filter(lambda value: all(ord(c) >= 0x20 or c in "\t\n\r" for c in value))


@given(
    st.lists(st.tuples(XML_TEXT.filter(bool), st.integers(-(10**12), 10**12), XML_TEXT), max_size=4),
    st.one_of(st.none(), XML_TEXT),
    st.booleans(),
)
def test_round_trips_hold_for_generated_payloads(items, node, enabled):
    built = Query(node=node, enabled=enabled, items=[Item(key=k, count=c, value=v) for k, c, v in items])
    first = written(built)
    parsed = Query.parse(element(first))
    assert parsed == built
    assert canonical(written(parsed)) == canonical(first)


RESPONDERS = """
from twisted.internet import defer

from component import responder
from tests.unit.test_payload import Item, Query

calls = []


@responder(Query, "get")
def look_up(request):
    calls.append((type(request.payload).__name__, request.element.name))
    return Query(node=request.payload.node, items=[Item(key=item.key, count=len(item.value)) for item in request.payload.items])


@responder(Item, "set")
def later(request):
    return defer.succeed(Item(key=request.payload.key, value="stored"))
"""


@pytest.fixture
def harness(tmp_path):
    (tmp_path / "typed.py").write_text(textwrap.dedent(RESPONDERS))
    return HandlerHarness(tmp_path / "typed.py")


def test_a_responder_declared_with_a_class_gets_an_instance_and_may_return_one(harness):
    reply = harness.ask(f"<iq type='get'><query xmlns='{NS}' node='n'><item key='a'>four</item></query></iq>")
    assert reply == (
        "<iq type='result' id='1' to='tester@localhost/test' from='iq.localhost'>"
        f"<query xmlns='{NS}' node='n'><item key='a' count='4'/></query></iq>"
    )
    module = harness.component.modules[0].module
    assert module.calls == [("Query", "query")]


def test_the_test_kit_sends_a_payload_instance_and_a_deferred_instance_is_answered(harness):
    reply = harness.ask(Item(key="x"), type="set")
    assert reply == (
        "<iq from='iq.localhost' to='tester@localhost/test' id='1' type='result'>"
        f'<item key="x" xmlns="{NS}">stored</item></iq>'
    )


def test_a_malformed_payload_is_bad_request_naming_element_and_field_and_the_responder_never_runs(harness):
    reply = harness.ask(f"<iq type='get'><query xmlns='{NS}'><item key='a' count='x'/></query></iq>")
    assert "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in reply and "type='modify'" in reply
    assert "count: &apos;x&apos; is not an integer" in reply or "count: 'x' is not an integer" in reply
    assert harness.component.modules[0].module.calls == []


@given(
    st.lists(st.tuples(XML_TEXT.filter(bool), st.integers(0, 5), XML_TEXT), max_size=3),
    st.sampled_from(["", "<note xmlns='urn:other'>n</note>", " spaced ", "<item key='k'/>"]),
    st.sampled_from(["", " extra='e'", " xmlns:p='urn:p' p:q='1'"]),
)
def test_the_direct_writer_and_the_element_writer_agree(items, inner, attributes):
    xml = (
        f"<query xmlns='{NS}'{attributes}>{inner}"
        + "".join(f"<item key={quoteattr(k)} count='{c}'>{escape(v)}</item>" for k, c, v in items)
        + "</query>"
    )
    parsed = Query.parse(element(xml))
    assert canonical(parsed.to_xml()) == canonical(to_xml(parsed.to_element())) == canonical(xml)
    built = Query(items=[Item(key=k, count=c, value=v) for k, c, v in items])
    assert canonical(built.to_xml()) == canonical(to_xml(built.to_element()))
