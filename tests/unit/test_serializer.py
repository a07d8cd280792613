"""The fast payload serializer writes what domish would, or leaves the element to domish."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.words.xish import domish

from component.serializer import to_xml
from component.stream import LimitedElementStream

text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
namespaces = st.sampled_from(["urn:a", "urn:b", "custom-xep", "jabber:iq:version", "a&amp;b"])


@st.composite
def elements(draw, depth=0):
    attributes = " ".join(
        f"{key}='{v}'"
        for key, v in draw(
            st.dictionaries(
                st.sampled_from("abcd"),
                text.map(lambda value: value.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;")),
                max_size=2,
            )
        ).items()
    )
    children = draw(st.lists(elements(depth + 1), max_size=2)) if depth < 3 else []
    body = draw(text).replace("&", "&amp;").replace("<", "&lt;")
    namespace = f" xmlns='{draw(namespaces)}'" if draw(st.booleans()) or depth == 0 else ""
    return f"<e{depth}{namespace} {attributes}>{body}{''.join(children)}</e{depth}>"


def parsed(xml: str) -> domish.Element:
    """Parse as the component's stream does (namespaces with markup characters kept escaped)."""
    stanzas = []
    stream = LimitedElementStream(1 << 20, 64)
    stream.DocumentStartEvent = stream.DocumentEndEvent = lambda *args: None
    stream.ElementEvent = stanzas.append
    stream.parse(f"<stream:stream xmlns='jabber:component:accept' xmlns:stream='s'><iq>{xml}</iq>".encode())
    [payload] = list(stanzas[0].elements())
    return payload


def canonical(element: domish.Element) -> str:
    """Re-parse a serialization in a fresh stream, then serialize with domish for comparison."""
    return parsed(element if isinstance(element, str) else element.toXml()).toXml()


@settings(max_examples=300, deadline=None)
@given(elements())
def test_fast_serialization_means_what_domish_means(xml):
    payload = parsed(xml)
    assert canonical(to_xml(payload)) == canonical(payload.toXml())


def test_prefixed_elements_go_to_domish():
    payload = parsed("<q xmlns='urn:a' xmlns:x='urn:x'><x:item/></q>")
    assert to_xml(payload) == payload.toXml()


def test_text_and_attributes_are_escaped():
    payload = parsed("<q xmlns='urn:a' k='&lt;&amp;&apos;'>a &lt; b &amp; c</q>")
    assert to_xml(payload) == "<q xmlns='urn:a' k='&lt;&amp;&apos;'>a &lt; b &amp; c</q>"
