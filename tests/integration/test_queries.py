"""Outbound queries through each real server: a responder asks the requesting client, or an absent
account, and answers from what came back."""

import pytest

from tests.integration.xmpp_client import error_of

pytestmark = pytest.mark.integration

ASKING_HANDLERS = '''
from twisted.words.xish import domish

from component import IqError, responder

NS = "urn:example:ask"


@responder(NS, "get", element="ask-back")
async def ask_back(request):
    """Ping the requester's own full JID and say how it went."""
    reply = await request.component.query(request.sender.full(), domish.Element(("urn:xmpp:ping", "ping")), timeout=5)
    answer = domish.Element((NS, "asked"))
    answer["type"] = reply["type"]
    answer["from"] = reply["from"]
    return answer


@responder(NS, "get", element="ask-absent")
async def ask_absent(request):
    """Ask an account that does not exist, and report the server's error condition."""
    try:
        await request.component.query("nobody@localhost", "jabber:iq:version", timeout=5)
    except IqError as e:
        failed = domish.Element((NS, "failed"))
        failed["condition"] = e.condition
        failed["type"] = e.type
        return failed


@responder(NS, "get", element="ask-absent-uncaught")
async def ask_absent_uncaught(request):
    await request.component.query("nobody@localhost", "jabber:iq:version", timeout=5)
'''


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("asking-handlers")
    (directory / "asking.py").write_text(ASKING_HANDLERS)
    return directory


def test_responder_awaits_a_query_to_the_requesting_client_and_answers_with_its_result(client):
    reply = client.iq("<ask-back xmlns='urn:example:ask'/>")
    [asked] = list(reply)
    assert reply.get("type") == "result"
    assert (asked.get("type"), asked.get("from")) == ("result", "alice@localhost/tests")


def test_error_from_the_server_reaches_the_responder_as_iq_error(client):
    reply = client.iq("<ask-absent xmlns='urn:example:ask'/>")
    [failed] = list(reply)
    assert reply.get("type") == "result"
    assert (failed.get("condition"), failed.get("type")) == ("service-unavailable", "cancel")


def test_iq_error_escaping_the_responder_answers_undefined_condition(client):
    reply = client.iq("<ask-absent-uncaught xmlns='urn:example:ask'/>")
    assert error_of(reply) == ("cancel", "undefined-condition")
