"""SIGHUP reloads the handler modules and disco configuration while a client keeps querying."""

import os
import signal
from pathlib import Path

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


HELPED = """
from twisted.logger import Logger
from twisted.words.xish import domish

from _answer import ANSWER
from component import responder

VERSION = "v1"


@responder("urn:example:hot", "get")
def hot(request):
    element = domish.Element(("urn:example:hot", "answer"))
    element.addContent(f"{ANSWER} {VERSION}")
    return element


def teardown(component):
    Logger().info("Tearing down hot {version}", version=VERSION)
"""


def rewrite_keeping_size_and_mtime(path: Path, text: str) -> None:
    """Change ``path`` as ``rsync -a`` can: new bytes, same size, same modification time."""
    before = path.stat()
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_sighup_serves_a_helper_changed_with_the_same_size_and_mtime_and_tears_the_old_module_down(
    server, secret_file, tmp_path
):
    directory = tmp_path / "helped"
    directory.mkdir()
    (directory / "_answer.py").write_text('ANSWER = "first"\n')
    (directory / "hot.py").write_text(HELPED)
    config = write_config(tmp_path / "helped.toml", server.endpoint, secret_file, [directory])
    process = client = None
    try:
        # Bytecode caching on, as in a deployment: stale bytecode would answer "first v1" below.
        process = ComponentProcess(config, env={"PYTHONDONTWRITEBYTECODE": ""})
        process.wait_for_log("Authenticated as iq.localhost")
        client = XmppClient(f"{USER}@localhost/helped", PASSWORD, server.c2s_port)
        assert answer(client) == "first v1"

        rewrite_keeping_size_and_mtime(directory / "_answer.py", 'ANSWER = "other"\n')
        rewrite_keeping_size_and_mtime(directory / "hot.py", HELPED.replace('"v1"', '"v2"'))
        process.process.send_signal(signal.SIGHUP)
        process.wait_for_log("Reloaded", count=1)
        assert answer(client) == "other v2"
        assert "Tearing down hot v1" in process.log()
        assert not (directory / "__pycache__").exists()
    finally:
        if client is not None:
            client.close()
        if process is not None:
            process.stop()
    assert process.process.returncode == 0
    assert "Tearing down hot v2" in process.log()  # at shutdown
