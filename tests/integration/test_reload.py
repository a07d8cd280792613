"""SIGHUP reloads the handler modules and disco configuration while a client keeps querying."""

import signal

import pytest

from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.xmpp_client import XmppClient, error_of

pytestmark = pytest.mark.integration

INFO = "http://jabber.org/protocol/disco#info"


def module(answer: str) -> str:
    return f"""
from twisted.words.xish import domish

from component import responder


@responder("urn:example:hot", "get")
def hot(request):
    element = domish.Element(("urn:example:hot", "answer"))
    element.addContent("{answer}")
    return element
"""


def features(client) -> set[str]:
    query = client.iq(f"<query xmlns='{INFO}'/>").find(f"{{{INFO}}}query")
    return {feature.get("var") for feature in query.iter(f"{{{INFO}}}feature")}


def answer(client) -> str:
    reply = client.iq("<query xmlns='urn:example:hot'/>")
    assert reply.get("type") == "result", reply
    return reply.find("{urn:example:hot}answer").text


def test_adding_changing_and_breaking_a_module_under_sighup(server, secret_file, tmp_path):
    directory = tmp_path / "hot"
    directory.mkdir()
    config = write_config(tmp_path / "hot.toml", server.endpoint, secret_file, [BUNDLED, directory])
    process = client = None
    try:
        process = ComponentProcess(config)
        process.wait_for_log("Authenticated as iq.localhost")
        client = XmppClient(f"{USER}@localhost/reload", PASSWORD, server.c2s_port)
        assert error_of(client.iq("<query xmlns='urn:example:hot'/>")) == ("cancel", "service-unavailable")
        assert "urn:example:hot" not in features(client)

        (directory / "hot.py").write_text(module("first"))  # add
        process.process.send_signal(signal.SIGHUP)
        process.wait_for_log("Reloaded", count=1)
        assert answer(client) == "first"
        assert "urn:example:hot" in features(client)

        (directory / "hot.py").write_text(module("second"))  # change, and rename the component in disco
        write_config(
            config,
            server.endpoint,
            secret_file,
            [BUNDLED, directory],
            '[disco]\nidentities = [{ category = "component", type = "generic", name = "renamed" }]\n',
        )
        process.process.send_signal(signal.SIGHUP)
        process.wait_for_log("Reloaded", count=2)
        assert answer(client) == "second"
        identity = client.iq(f"<query xmlns='{INFO}'/>").find(f"{{{INFO}}}query/{{{INFO}}}identity")
        assert identity.get("name") == "renamed"

        (directory / "hot.py").write_text("import no_such_dependency\n")  # break
        process.process.send_signal(signal.SIGHUP)
        line = process.wait_for_log("Reload failed")
        assert "hot.py" in line and "no_such_dependency" in line
        assert answer(client) == "second"  # the previous set keeps serving

        assert "Lost the connection" not in process.log()
        assert process.log().count("Authenticated as") == 1
    finally:
        if client is not None:
            client.close()
        if process is not None:
            process.stop()
