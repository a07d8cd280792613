"""An echoed payload comes back exactly, through each real server.

A real client (slixmpp) sends each payload as the exact bytes written here, so
that character references, prefixes and namespace declarations reach the server
as written. An echo responder returns the request's payload, and logs what it
received (as a tree, independent of any writer) and what the component writes for
it. Three legs, three checks:

- what the component writes parses back to exactly what it received (always);
- what the client gets back is canonically equal (C14N 2.0, prefixes rewritten)
  to what it sent, for everything the servers carry unchanged;
- where a server changes a payload on its own, the test names the server and
  the change, and checks that the change happened before the component (in
  what it received), not in what it wrote.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from xml.etree import ElementTree

import pytest
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatcherId

from component.testing import canonical, canonical_tree
from tests.integration.servers import EACH_SERVER

pytestmark = [pytest.mark.integration, pytest.mark.servers(*EACH_SERVER)]

NS_ECHO = "urn:iqresponder:test:echo"

ECHO_HANDLER = r'''
import json

from twisted.logger import Logger
from twisted.words.xish import domish

from component import responder
from component.serializer import to_xml

NS_ECHO = "urn:iqresponder:test:echo"
log = Logger()


def tree(element):
    """The element as JSON-able lists: namespace, name, attributes, children (text or trees)."""
    attributes = {key if isinstance(key, str) else "{%s}%s" % key: value for key, value in element.attributes.items()}
    children = []
    for child in element.children:
        if isinstance(child, str):
            if children and isinstance(children[-1], str):
                children[-1] += child
            else:
                children.append(child)
        else:
            children.append(tree(child))
    return [element.uri, element.name, attributes, children]


@responder(NS_ECHO, element="built")
def built(request):
    """A payload a responder builds, with every white space character in text and an attribute value."""
    payload = domish.Element((NS_ECHO, "built"))
    payload["ws"] = "tab\tlf\ncr\rend"
    payload.addContent("tab\tlf\ncr\rend")
    log.info("built {id} wrote {written}", id=request.id, written=json.dumps(to_xml(payload)))
    return payload


@responder(NS_ECHO, element="echo")
def echo(request):
    log.info(
        "echo {id} received {received} wrote {written}",
        id=request.id,
        received=json.dumps(tree(request.payload)),
        written=json.dumps(to_xml(request.payload)),
    )
    return request.payload
'''

ids = itertools.count()


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("echo-handlers")
    (directory / "echo.py").write_text(ECHO_HANDLER)
    return directory


def tree(element: ElementTree.Element) -> list:
    """An ElementTree element in the echo handler's form, to compare with what the component received."""
    namespace, _, name = element.tag[1:].rpartition("}") if element.tag.startswith("{") else ("", "", element.tag)
    children: list = [element.text] if element.text else []
    for child in element:
        children.append(tree(child))
        if child.tail:
            children.append(child.tail)
    return [namespace, name, dict(element.attrib), children]


def exchange(client, payload: str) -> tuple[str, ElementTree.Element]:
    """Send an Iq get carrying ``payload`` as these exact bytes; its id and the reply.

    slixmpp's own writer would not keep character references or prefixes, so the
    stanza goes out raw, and the reply is caught by its id.
    """
    id = f"round-trip-{next(ids)}"

    async def send() -> ElementTree.Element:
        replied = asyncio.get_running_loop().create_future()

        def on_reply(stanza) -> None:
            if not replied.done():
                replied.set_result(stanza.xml)

        client.xmpp.register_handler(Callback(f"reply {id}", MatcherId(id), on_reply, once=True))
        client.xmpp.send_raw(f"<iq type='get' id='{id}' to='iq.localhost'>{payload}</iq>")
        return await replied

    return id, client.call(send)


class Echo:
    """One echo exchange: the reply's payload, and what the component received and wrote."""

    def __init__(self, client, component, payload: str) -> None:
        id, reply = exchange(client, payload)
        assert reply.get("type") == "result", ElementTree.tostring(reply)
        [self.reply] = list(reply)
        line = component.wait_for_log(f"echo {id} received ")
        received, written = re.search(r" received (.*) wrote (.*)$", line).groups()
        self.received, self.written = json.loads(received), json.loads(written)
        # The component's part: what it writes parses back to exactly what it received.
        assert tree(ElementTree.fromstring(self.written)) == self.received


PRESERVED = {
    "text": f"<echo xmlns='{NS_ECHO}'>tab\t lf\n quotes '\" lt &lt; amp &amp; end ]]&gt; astral \U0001f600\U0010fffd</echo>",
    "attributes": f"<echo xmlns='{NS_ECHO}' quotes=\"'&quot;\" markup='&lt;&amp;&gt; ]]&gt;' astral='\U0001f600'/>",
    "prefixes": (
        f"<e:echo xmlns:e='{NS_ECHO}' xmlns:p='urn:example:p'><p:item p:key='v' e:key='w' xml:lang='en'>"
        "<p:deep xmlns:p='urn:example:rebound' p:key='x'>text</p:deep></p:item></e:echo>"
    ),
    "default namespaces": (
        f"<echo xmlns='{NS_ECHO}'><a xmlns='urn:example:a'><b xmlns=''><c/></b><d/></a>"
        "<e xmlns:p='urn:example:p'><p:f xmlns='urn:example:g'><h/></p:f></e></echo>"
    ),
}


@pytest.mark.parametrize("payload", PRESERVED.values(), ids=PRESERVED.keys())
def test_an_echoed_payload_comes_back_exactly(client, component, payload):
    echo = Echo(client, component, payload)
    assert canonical_tree(echo.reply) == canonical(payload)


# Measured here: ejabberd writes tab, LF and CR in attribute values as character references, so
# they survive it; Prosody writes them literally, so the next parser (the component's on the way
# in, the client's on the way back) turns each into a space. Both write CR in text literally, so
# it arrives as LF.
KEEPS_ATTRIBUTE_WHITE_SPACE = {"prosody": False, "ejabberd": True}
WHITE_SPACE = "tab\tlf\ncr\rend"
AS_SPACES = "tab lf cr end"


def keeps_attribute_white_space(server) -> bool:
    return KEEPS_ATTRIBUTE_WHITE_SPACE[server.variant.split("-")[0]]


def test_white_space_in_an_attribute_value_survives_ejabberd_and_the_component(client, component, server):
    sent = f"<echo xmlns='{NS_ECHO}' ws='tab&#9;lf&#10;cr&#13;end'/>"
    echo = Echo(client, component, sent)
    if keeps_attribute_white_space(server):
        assert echo.received[2] == {"ws": WHITE_SPACE}
        assert canonical_tree(echo.reply) == canonical(sent)
    else:  # Prosody: changed before the component, which echoes the spaces exactly
        assert echo.received[2] == {"ws": AS_SPACES}
        assert canonical_tree(echo.reply) == canonical(f"<echo xmlns='{NS_ECHO}' ws='{AS_SPACES}'/>")


def test_a_carriage_return_in_text_reaches_the_component_as_a_line_feed_through_both_servers(client, component, server):
    echo = Echo(client, component, f"<echo xmlns='{NS_ECHO}'>cr&#13;lf&#10;tab&#9;end</echo>")
    assert echo.received[3] == ["cr\nlf\ntab\tend"]
    assert canonical_tree(echo.reply) == canonical(f"<echo xmlns='{NS_ECHO}'>cr\nlf\ntab\tend</echo>")


def test_white_space_a_responder_writes_leaves_the_component_exactly(client, component, server):
    id, reply = exchange(client, f"<built xmlns='{NS_ECHO}'/>")
    written = json.loads(re.search(r" wrote (.*)$", component.wait_for_log(f"built {id} wrote ")).group(1))
    assert tree(ElementTree.fromstring(written)) == [NS_ECHO, "built", {"ws": WHITE_SPACE}, [WHITE_SPACE]]
    [built] = list(reply)
    assert built.get("ws") == (WHITE_SPACE if keeps_attribute_white_space(server) else AS_SPACES)
    assert built.text == WHITE_SPACE.replace("\r", "\n")  # both servers write CR in text literally
