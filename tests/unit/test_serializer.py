"""What the component writes parses back to exactly what it read or what a responder built.

Parsed payloads are read by twisted.words' expat stream and by the component's own parser. Each
check compares canonical forms (C14N 2.0 with prefixes rewritten, from the
standard library's ElementTree: a parser and a writer independent of domish and
of component.serializer), so prefixes may be chosen differently but every name,
namespace, attribute value and character of text must be the same.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.words.xish import domish

from component.parser import StanzaParser
from component.serializer import XML_NAMESPACE, escape_attribute, escape_text, to_xml
from component.testing import canonical, canonical_tree

NS_STREAM = "jabber:component:accept"
STREAM_HEADER = f"<stream:stream xmlns='{NS_STREAM}' xmlns:stream='http://etherx.jabber.org/streams'>"

# Every character XML 1.0 can carry, with the ones that need care drawn often.
XML_CHARACTERS = st.characters(min_codepoint=0x20, blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff")
AWKWARD = ["\t", "\n", "\r", "\r\n", " ", "'", '"', "<", ">", "&", "]]>", "&amp;", "\U0001f600", "\U0010fffd", "\x85"]
values = st.lists(st.sampled_from(AWKWARD) | st.text(XML_CHARACTERS, max_size=4), max_size=5).map("".join)
NOT_XML = "\x00\x01\x08\x0b\x0c\x0e\x1f\ud800\udfff\ufffe\uffff"

NAMES = st.sampled_from(["a", "b", "item", "x-y.z", "_u", "é", "名前", "ns0", "query"])
PREFIXES = st.sampled_from(["p", "q", "ns0", "ns1", "xn0", "é"])
NAMESPACES = st.sampled_from(
    ["urn:a", "urn:b", NS_STREAM, "http://jabber.org/protocol/disco#info", "urn:&<>'\"", "urn:\t\n\r", "urn:\U0001f600"]
)
DEFAULT_NAMESPACES = NAMESPACES | st.just("")


def parse_with_domish(xml: str) -> domish.Element:
    """One stanza, parsed by twisted.words' own expat stream inside a component stream."""
    stanzas: list[domish.Element] = []
    stream = domish.elementStream()
    stream.DocumentStartEvent = lambda root: None
    stream.ElementEvent = stanzas.append
    stream.DocumentEndEvent = lambda: None
    stream.parse((STREAM_HEADER + xml).encode("utf-8"))
    [stanza] = stanzas
    return stanza


def parse_with_component(xml: str) -> domish.Element:
    """One stanza, parsed by the component's own parser inside a component stream."""
    stanzas: list[domish.Element] = []
    parser = StanzaParser(1 << 20, 64)
    parser.ElementEvent = stanzas.append
    parser.parse((STREAM_HEADER + xml).encode("utf-8"))
    [stanza] = stanzas
    return stanza


PARSERS = st.sampled_from([parse_with_domish, parse_with_component])


def parse_payload(xml: str, parse_stanza=parse_with_domish) -> domish.Element:
    return parse_stanza(f"<iq type='get'>{xml}</iq>").firstChildElement()


# Documents as text: what the component reads.


@st.composite
def payloads(draw, in_scope: dict[str, str] | None = None, depth: int = 0) -> str:
    """An element as XML text: namespace declarations (default and prefixed, redeclared below), prefixed
    names, qualified attributes, text and CDATA with every kind of character. The top element
    declares its default namespace, so that it means the same inside a stanza and standalone."""
    in_scope = in_scope or {}
    declarations = []
    default = draw(DEFAULT_NAMESPACES if depth == 0 else st.none() | DEFAULT_NAMESPACES)
    if default is not None:
        declarations.append(f" xmlns={quoteattr(default)}")
    bound = draw(st.dictionaries(PREFIXES, NAMESPACES, max_size=2))
    declarations += [f" xmlns:{prefix}={quoteattr(uri)}" for prefix, uri in bound.items()]
    scope = {**in_scope, **bound}

    local = draw(NAMES)
    name = f"{draw(st.sampled_from(sorted(scope)))}:{local}" if scope and draw(st.booleans()) else local
    attributes, seen = [], set()
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["plain", "prefixed", "xml"]))
        if kind == "prefixed" and scope:
            prefix = draw(st.sampled_from(sorted(scope)))
            local_attribute = draw(NAMES)
            attribute, expanded = f"{prefix}:{local_attribute}", (scope[prefix], local_attribute)
        elif kind == "xml":
            attribute = f"xml:{draw(st.sampled_from(['lang', 'space', 'id']))}"
            expanded = (XML_NAMESPACE, attribute[4:])
        else:
            attribute = draw(NAMES)
            expanded = ("", attribute)
        if expanded not in seen:
            seen.add(expanded)
            attributes.append(f" {attribute}={quoteattr(draw(values))}")

    content = []
    for _ in range(draw(st.integers(0, 3))):
        if depth < 3 and draw(st.booleans()):
            content.append(draw(payloads(scope, depth + 1)))
        else:
            text = draw(values)
            if "]]>" not in text and "\r" not in text and draw(st.booleans()):
                content.append(f"<![CDATA[{text}]]>")  # CR is normalized inside CDATA too
            else:
                content.append(escape(text, {"\r": "&#13;"}))
    return f"<{name}{''.join(declarations)}{''.join(attributes)}>{''.join(content)}</{name}>"


@settings(max_examples=600, deadline=None)
@given(PARSERS, payloads())
def test_a_parsed_payload_is_written_back_exactly(parse_stanza, xml):
    assert canonical(to_xml(parse_payload(xml, parse_stanza))) == canonical(xml)


@settings(max_examples=300, deadline=None)
@given(PARSERS, payloads())
def test_a_parsed_stanza_is_written_back_exactly_whole_or_as_a_reply_payload(parse_stanza, xml):
    stanza = parse_stanza(f"<iq type='get'>{xml}</iq>")
    expected = canonical(f"<iq xmlns='{NS_STREAM}' type='get'>{xml}</iq>")
    assert canonical(to_xml(stanza)) == expected
    written = to_xml(stanza.firstChildElement(), within=NS_STREAM)
    assert canonical(f"<iq xmlns='{NS_STREAM}' type='get'>{written}</iq>") == expected


def test_a_payload_that_inherits_the_stream_namespace_keeps_it():
    stanza = parse_with_domish("<iq type='get'><query><item/></query></iq>")
    assert to_xml(stanza.firstChildElement()) == f"<query xmlns='{NS_STREAM}'><item/></query>"
    assert to_xml(stanza.firstChildElement(), within=NS_STREAM) == "<query><item/></query>"


@pytest.mark.parametrize(
    "xml",
    [
        "<q xmlns='urn:a' a='tab&#9;lf&#10;cr&#13;end'/>",
        "<q xmlns='urn:a'>cr&#13;lf</q>",
        "<q xmlns='urn:a' xmlns:p='urn:p'><p:item/></q>",
        "<q xmlns='urn:a' xmlns:p='urn:p' p:a='1'/>",
        "<q xmlns='urn:a'><r xmlns='urn:b'><s xmlns=''/></r></q>",
    ],
)
def test_what_domish_alone_changes_or_leaves_to_the_fallback_is_exact(xml):
    # The old writer escaped with domish.escapeToXml, and left prefixes to domish's serializer.
    assert canonical(to_xml(parse_payload(xml))) == canonical(xml)


def test_the_comparison_sees_what_domish_escaping_loses():
    xml = "<q xmlns='urn:a' a='tab&#9;'>cr&#13;</q>"
    assert canonical(parse_payload(xml).toXml()) != canonical(xml)


# Trees a responder builds: domish and ElementTree side by side.


def namespace_in_force(element: domish.Element) -> str:
    """The namespace domish means by ``uri=None``: the nearest default namespace set, else none."""
    while element is not None:
        if element.defaultUri is not None:
            return element.defaultUri
        element = element.parent
    return ""


def clark(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}" if namespace else name


@st.composite
def built_trees(draw) -> tuple[domish.Element, ElementTree.Element]:
    """The same tree built twice, with domish's building calls and with ElementTree."""
    uri, name = draw(DEFAULT_NAMESPACES), draw(NAMES)
    root = domish.Element((uri, name), draw(st.none() | DEFAULT_NAMESPACES))
    tree = ElementTree.Element(clark(uri, name))
    _fill(draw, root, tree, 0)
    return root, tree


def _fill(draw, element: domish.Element, tree: ElementTree.Element, depth: int) -> None:
    if draw(st.booleans()):
        element.localPrefixes = draw(st.dictionaries(PREFIXES, NAMESPACES, max_size=2))
    names = draw(st.lists(NAMES, max_size=2, unique=True))
    for name in names:
        element[name] = tree.attrib[name] = draw(values)
    for _ in range(draw(st.integers(0, 2))):
        namespace = draw(NAMESPACES | st.just(XML_NAMESPACE) | st.just(""))
        attribute = draw(NAMES)
        if not namespace and attribute in names:
            continue
        element.attributes[(namespace, attribute)] = tree.attrib[clark(namespace, attribute)] = draw(values)

    last = None
    for _ in range(draw(st.integers(0, 3))):
        if depth >= 3 or draw(st.booleans()):
            text = draw(values)
            element.addContent(text)
            if last is None:
                tree.text = (tree.text or "") + text
            else:
                last.tail = (last.tail or "") + text
            continue
        name = draw(NAMES)
        how = draw(st.sampled_from(["inherited", "qualified", "qualified, other default", "other default", "none"]))
        if how == "inherited":
            child = element.addElement(name)
        elif how == "qualified":
            child = element.addElement((draw(DEFAULT_NAMESPACES), name))
        elif how == "qualified, other default":
            child = element.addElement((draw(DEFAULT_NAMESPACES), name), defaultUri=draw(DEFAULT_NAMESPACES))
        elif how == "other default":
            child = element.addElement(name, defaultUri=draw(DEFAULT_NAMESPACES))
        else:
            child = element.addChild(domish.Element((None, name)))
        uri = child.uri if child.uri is not None else namespace_in_force(child)
        last = ElementTree.SubElement(tree, clark(uri, name))
        _fill(draw, child, last, depth + 1)


@settings(max_examples=400, deadline=None)
@given(built_trees())
def test_a_built_tree_is_written_exactly(trees):
    element, tree = trees
    assert canonical(to_xml(element)) == canonical_tree(tree)


def test_a_version_answer_is_written_as_before():
    query = domish.Element(("jabber:iq:version", "query"))
    query.addElement("name", content="iqresponder")
    query.addElement("version", content="1.0")
    assert to_xml(query) == "<query xmlns='jabber:iq:version'><name>iqresponder</name><version>1.0</version></query>"


def test_prefixes_are_written_where_they_were_declared():
    xml = "<q xmlns='urn:a' xmlns:p='urn:p'><p:item p:k='v' xml:lang='en'/></q>"
    assert to_xml(parse_payload(xml)) == xml


def test_a_namespace_no_prefix_names_gets_a_new_prefix_that_shadows_nothing():
    query = domish.Element(("urn:a", "q"))
    query.localPrefixes = {"ns0": "urn:zero"}
    query.attributes[("urn:b", "k")] = "v"
    query.addElement(("urn:c", "item"), defaultUri="urn:d")
    assert to_xml(query) == (
        "<q xmlns='urn:a' xmlns:ns0='urn:zero' xmlns:ns1='urn:b' ns1:k='v'>"
        "<ns2:item xmlns='urn:d' xmlns:ns2='urn:c'/></q>"
    )


def test_an_element_in_no_namespace_below_a_default_one_undeclares_it():
    query = domish.Element(("urn:a", "q"))
    query.addElement(("", "plain")).addElement(("urn:a", "back"))
    assert to_xml(query) == "<q xmlns='urn:a'><plain xmlns=''><back xmlns='urn:a'/></plain></q>"


def test_pre_serialized_children_are_written_as_they_are():
    query = domish.Element(("urn:a", "q"))
    query.addContent("&")  # (text added after raw XML would join it, and domish would take both as text)
    query.addRawXml("<raw xmlns='urn:r'>&amp;</raw>")
    assert to_xml(query) == "<q xmlns='urn:a'>&amp;<raw xmlns='urn:r'>&amp;</raw></q>"


def test_text_of_a_str_subclass_is_escaped_as_text():
    class Label(str):
        pass

    query = domish.Element(("urn:a", "q"))
    query.children.append(Label("a<b"))
    assert to_xml(query) == "<q xmlns='urn:a'>a&lt;b</q>"


# The escaping helpers, also for the router's reply tags.


def test_text_escapes_markup_and_carriage_return():
    assert escape_text("a&b<c>d]]>e\rf\tg\nh'\"") == "a&amp;b&lt;c&gt;d]]&gt;e&#13;f\tg\nh'\""


def test_attributes_escape_markup_quotes_and_white_space():
    assert escape_attribute("a&b<c>d'e\"f\tg\nh\ri") == "a&amp;b&lt;c&gt;d&apos;e&quot;f&#9;g&#10;h&#13;i"


def test_strings_with_nothing_to_escape_are_returned_as_they_are():
    value = "plain text \U0001f600"
    assert escape_text(value) is value and escape_attribute(value) is value


@settings(max_examples=300, deadline=None)
@given(values)
def test_escaped_values_parse_back_exactly_in_either_quote(value):
    parsed = ElementTree.fromstring(
        f"<a single='{escape_attribute(value)}' double=\"{escape_attribute(value)}\">{escape_text(value)}</a>"
    )
    assert parsed.get("single") == parsed.get("double") == value
    assert (parsed.text or "") == value


@pytest.mark.parametrize("character", NOT_XML)
def test_a_character_xml_cannot_carry_is_refused_by_name(character):
    code = re.escape(f"U+{ord(character):04X}")
    for escaper in (escape_text, escape_attribute):
        with pytest.raises(ValueError, match=code):
            escaper(f"before{character}after")
    query = domish.Element(("urn:a", "q"))
    query.addContent(f"text {character}")
    with pytest.raises(ValueError, match=code):
        to_xml(query)
    query = domish.Element(("urn:a", "q"))
    query["k"] = character
    with pytest.raises(ValueError, match=code):
        to_xml(query)
    with pytest.raises(ValueError, match=code):
        to_xml(domish.Element((f"urn:{character}", "q")))


def test_an_attribute_given_twice_is_refused():
    query = domish.Element(("urn:a", "q"))
    query.attributes["k"] = "1"
    query.attributes[("", "k")] = "2"
    with pytest.raises(ValueError, match="given twice"):
        to_xml(query)


def test_a_prefix_bound_to_no_namespace_is_refused():
    query = domish.Element(("urn:a", "q"), localPrefixes={"p": ""})
    with pytest.raises(ValueError, match="bound to no namespace"):
        to_xml(query)
