"""One client's hostile stanzas, through the real servers, never cut off the others.

A client of the server sends what a stock client would not (raw quote characters, which
the server forwards as six-byte entities; a payload a thousand levels deep; tens of
thousands of children) several times in a row, while another user's slow request is in
flight. Each hostile request gets its own error reply, the other user gets the answer,
and the component's stream to the server stays the one it was. With the default limits,
the largest stanza a client can get past the server is answered, not refused.
"""

from __future__ import annotations

import threading
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.relay import RecordingRelay
from tests.integration.servers import EACH_SERVER, wait_for_log
from tests.integration.xmpp_client import XmppClient, error_of

pytestmark = [pytest.mark.integration, pytest.mark.servers(*EACH_SERVER)]

NS = "urn:example:hostile"
HANDLERS = f'''
from twisted.internet import defer
from twisted.logger import Logger
from twisted.words.xish import domish

from component import responder

log = Logger()
held = []


@responder("{NS}", "get", element="slow")
def slow(request):
    """Held until a release: in flight for as long as the test needs."""
    log.info("slow request {{id}} held", id=request.id)
    held.append(defer.Deferred())
    return held[-1].addCallback(lambda _: domish.Element(("{NS}", "done")))


@responder("{NS}", "set", element="release")
def release(request):
    while held:
        held.pop().callback(None)


@responder("{NS}", "set", element="count")
def count(request):
    """How many characters of text and attribute values the payload carried, as the component parsed them."""
    answer = domish.Element(("{NS}", "counted"))
    answer["text"] = str(len(str(request.payload)))
    answer["attributes"] = str(sum(len(value) for value in request.payload.attributes.values()))
    return answer
'''
C2S_LIMIT = 262_144  # both servers, at their (Debian) defaults: bytes of one client stanza
QUOTES = 60_000  # raw quote characters: 60 KB from the client, 360 KB at the component
LIMITED = "[limits]\nmax_stanza_bytes = 65536\nmax_depth = 32\n"


def nested(levels: int) -> str:
    return "<a>" * levels + "</a>" * levels


HOSTILE = {
    "quotes in text": f"<count xmlns='{NS}'>{chr(34) * QUOTES}</count>",
    "quotes in an attribute": f"<count xmlns='{NS}' value='{chr(34) * QUOTES}'/>",
    "1,000 levels deep": f"<count xmlns='{NS}'>{nested(1000)}</count>",
    "30,000 children": f"<count xmlns='{NS}'>{'<a/>' * 30_000}</count>",
}
ROUNDS = 3
AUTHENTICATED_LINE = {
    "prosody": "External component successfully authenticated",
    "ejabberd": "Accepted external component handshake authentication for iq.localhost",
}


@pytest.fixture(scope="module")
def handlers(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("hostile-handlers")
    (directory / "hostile.py").write_text(HANDLERS)
    return directory


def start_component(tmp_path: Path, server, secret_file, handlers: Path, endpoint: str, extra: str = ""):
    config = write_config(tmp_path / "iqresponder.toml", endpoint, secret_file, [BUNDLED, handlers], extra)
    process = ComponentProcess(config)
    process.wait_for_log("Authenticated as iq.localhost")
    return process


@pytest.fixture
def clients(server):
    sessions = [XmppClient(f"{USER}@localhost/{name}", PASSWORD, server.c2s_port) for name in ("mallory", "bystander")]
    yield sessions
    for session in sessions:
        session.close()


def server_log_offset(server) -> int:
    return Path(server.log_path).stat().st_size


def component_authentications(server, offset: int) -> int:
    """How many component streams the server has authenticated since ``offset`` in its log (waits for the first)."""
    line = AUTHENTICATED_LINE[server.variant.split("-")[0]]
    wait_for_log(server.log_path, line, offset)
    return read_log(server, offset).count(line)


def read_log(server, offset: int) -> str:
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def test_hostile_stanzas_get_an_error_each_while_another_users_request_is_answered(
    server, secret_file, handlers, clients, tmp_path
):
    offset = server_log_offset(server)
    component = start_component(tmp_path, server, secret_file, handlers, server.endpoint, LIMITED)
    mallory, bystander = clients
    assert component_authentications(server, offset) == 1
    try:
        answered = []
        waiting = threading.Thread(
            target=lambda: answered.append(bystander.iq(f"<slow xmlns='{NS}'/>", timeout=20)), daemon=True
        )
        waiting.start()
        component.wait_for_log("slow request")

        seen = {}
        for round in range(ROUNDS):
            for name, payload in HOSTILE.items():
                id = f"{name.replace(' ', '-').replace(',', '')}-{round}"
                reply = mallory.raw_iq(f"<iq type='set' id='{id}' to='iq.localhost'>{payload}</iq>", id, timeout=10)
                assert reply is not None, f"no reply to {name}, round {round}:\n{component.log()[-3000:]}"
                seen.setdefault(name, []).append(error_of(reply))
        assert answered == []  # still in flight through all of that
        mallory.iq(f"<release xmlns='{NS}'/>", type="set")
        waiting.join(20)

        assert seen == {name: [("modify", "policy-violation")] * ROUNDS for name in HOSTILE}
        [reply] = answered
        assert reply.get("type") == "result" and reply.find(f"{{{NS}}}done") is not None
        log = component.log()
        assert log.count("Authenticated as iq.localhost") == 1
        assert "Lost the connection" not in log and "Closing the stream" not in log
        assert component_authentications(server, offset) == 1  # the server saw no new component stream
        assert mallory.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"  # and the sender is served again
    finally:
        component.stop()


def test_a_hostile_message_that_cannot_be_answered_is_dropped_with_one_line(
    server, secret_file, handlers, clients, tmp_path
):
    component = start_component(tmp_path, server, secret_file, handlers, server.endpoint, LIMITED)
    mallory, _ = clients
    try:
        mallory.xmpp.send_raw(f"<message to='iq.localhost'><body>{chr(34) * QUOTES}</body></message>")
        component.wait_for_log("Dropped a <message/>")
        assert mallory.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"
        assert component.log().count("Authenticated as iq.localhost") == 1
    finally:
        component.stop()


@pytest.mark.parametrize("where", ["text", "attribute"])
def test_at_the_default_limits_the_largest_stanza_a_client_gets_past_the_server_is_answered(
    server, secret_file, handlers, clients, tmp_path, where, record_property
):
    relay = RecordingRelay(server.component_port)
    component = start_component(tmp_path, server, secret_file, handlers, f"tcp:host=127.0.0.1:port={relay.port}")
    mallory, _ = clients
    try:
        head = f"<iq type='set' id='largest' to='iq.localhost'><count xmlns='{NS}'"
        quotes = C2S_LIMIT - len(head) - 200  # room for what the server adds to the stanza it parses
        stanza = (
            f"{head}>{chr(34) * quotes}</count></iq>" if where == "text" else f"{head} v='{chr(34) * quotes}'/></iq>"
        )
        reply = mallory.raw_iq(stanza, "largest", timeout=20)
        assert reply is not None and reply.get("type") == "result", reply and ElementTree.tostring(reply)
        counted = reply.find(f"{{{NS}}}counted")
        assert int(counted.get(where if where == "text" else "attributes")) == quotes

        [wire] = relay.received()
        start = wire.index(b"id='largest'") if b"id='largest'" in wire else wire.index(b'id="largest"')
        start = wire.rindex(b"<iq", 0, start)
        end = wire.index(b"</iq>", start) + len(b"</iq>")
        arrived = end - start
        record_property("expansion", f"{server.variant} {where}: {len(stanza)} bytes sent, {arrived} arrived")
        print(
            f"\n{server.variant}, quotes in {where}: {len(stanza)} bytes from the client, {arrived} at the component "
            f"({arrived / len(stanza):.2f} times)"
        )
        assert arrived > 5 * len(stanza)  # each quote became a six-byte entity on the way
    finally:
        component.stop()
        relay.stop()
