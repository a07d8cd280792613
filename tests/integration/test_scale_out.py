"""Scaling out on ejabberd: three component processes under one name, as an operator runs them.

ejabberd accepts several connections for the same component name and gives each stanza to
one of them at random. The tests show that three instances share the requests, that the
survivors answer everything once one is killed, what a client sees for a request the killed
instance was holding, and that outbound queries get their own responses back because each
instance sends them under its own name (``--instance-jid iq-N.localhost``); without that,
responses go astray.

Each instance is the same configuration file started with its own ``--instance-jid``.
ejabberd logs nothing at info when a component connection goes away, so this module runs it
at debug and waits for its "Route unregistered" line, never for a fixed time. A held request
is held until the test releases it (SIGUSR1 to the instance), not for a time, so an instance
is stopped or killed while it certainly holds what its log says it holds.
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.servers import XmppServer, wait_for_log
from tests.integration.xmpp_client import XmppClient, error_of

pytestmark = [pytest.mark.integration, pytest.mark.servers("ejabberd-tcp", "ejabberd-tls")]

CLIENT_TIMEOUT = 4.0
"""How long the client waits for a reply to a held request (a killed instance's never comes)."""
SHARED = "iq.localhost"
INSTANCES = ("iq-1.localhost", "iq-2.localhost", "iq-3.localhost")
NS, ECHO = "urn:example:scale", "urn:example:echo"

HANDLERS = f'''
import os
import signal

from twisted.internet import defer, reactor
from twisted.logger import Logger
from twisted.words.xish import domish

from component import responder

NS, ECHO = "{NS}", "{ECHO}"
log = Logger()
held = []


def release_all():
    log.info("releasing {{count}} held request(s)", count=len(held))
    while held:
        held.pop(0).callback(None)


# The test releases what an instance holds with SIGUSR1, at the moment it chooses.
signal.signal(signal.SIGUSR1, lambda signum, frame: reactor.callFromThread(release_all))


def me(request):
    return request.component.settings.instance_jid or request.component.jid


@responder(NS, "get", element="whoami")
def whoami(request):
    answer = domish.Element((NS, "instance"))
    answer["name"] = me(request)
    answer["pid"] = str(os.getpid())
    return answer


@responder(NS, "get", element="hold")
async def hold(request):
    released = defer.Deferred()
    held.append(released)
    log.info("request {{token}} held by {{me}}", token=request.payload["token"], me=me(request))
    await released
    answer = domish.Element((NS, "done"))
    answer["by"] = me(request)
    return answer


@responder(NS, "get", element="relay")
async def relay(request):
    """Ask the requester to echo the request's token back, and answer with what came back."""
    echo = domish.Element((ECHO, "echo"))
    echo["token"] = request.payload["token"]
    response = await request.component.query(request.sender.full(), echo, timeout=3)
    answer = domish.Element((NS, "relayed"))
    answer["token"] = response.firstChildElement()["token"]
    answer["by"] = me(request)
    return answer
'''


@pytest.fixture(scope="module")
def component_names() -> tuple[str, ...]:
    return (SHARED, *INSTANCES)


@pytest.fixture(scope="module")
def ejabberd_loglevel() -> str:
    return "debug"


@pytest.fixture(scope="module")
def config(tmp_path_factory, server: XmppServer, secret_file) -> Path:
    directory = tmp_path_factory.mktemp("scale-handlers")
    (directory / "scale.py").write_text(HANDLERS)
    return write_config(directory / "iqresponder.toml", server.endpoint, secret_file, [BUNDLED, directory])


@pytest.fixture
def start_instances(config) -> Iterator[Callable[..., list[ComponentProcess]]]:
    """Start instances of the same configuration, each with its own --instance-jid (or none).

    The test fails if an instance logged a failure.
    """
    started: list[ComponentProcess] = []

    def start(names: tuple[str | None, ...] = INSTANCES) -> list[ComponentProcess]:
        changed = threading.Condition()  # shared, so that a wait can watch every instance's log at once
        processes = [
            ComponentProcess(config, *(["--instance-jid", name] if name else []), changed=changed) for name in names
        ]
        started.extend(processes)
        for process, name in zip(processes, names, strict=True):
            process.wait_for_log(f"Authenticated as {SHARED} ")
            if name:
                process.wait_for_log(f"Authenticated as {name} ")
        return processes

    yield start
    for process in started:
        process.stop()
    assert [text for process in started for text in process.failures()] == []


@pytest.fixture
def client(server) -> Iterator[XmppClient]:
    session = XmppClient(f"{USER}@localhost/scale", PASSWORD, server.c2s_port)
    session.echo(ECHO, "echo")
    yield session
    session.close()


def answered_by(replies) -> Counter:
    assert all(reply is not None and reply.get("type") == "result" for reply in replies), replies
    return Counter(reply.find(f"{{{NS}}}instance").get("name") for reply in replies)


def whoami(client: XmppClient, count: int) -> Counter:
    return answered_by(client.iqs([f"<whoami xmlns='{NS}'/>"] * count))


def test_three_instances_under_one_name_each_answer_a_share(start_instances, client, record_property):
    start_instances()
    split = whoami(client, 60)
    record_property("split of 60 requests", dict(split))
    print(f"60 requests split across the instances: {dict(sorted(split.items()))}")
    assert set(split) == set(INSTANCES)
    assert sum(split.values()) == 60


def test_when_one_instance_is_killed_the_others_answer_every_later_request(server, start_instances, client):
    processes = start_instances()
    assert set(whoami(client, 30)) == set(INSTANCES)

    offset = len(server.log_path.read_text(errors="replace"))
    processes[2].process.send_signal(signal.SIGKILL)
    processes[2].wait()
    wait_for_log(server.log_path, f"Route unregistered: {INSTANCES[2]}", offset)
    wait_for_log(server.log_path, f"Route unregistered: {SHARED}", offset)

    split = whoami(client, 60)
    assert set(split) == set(INSTANCES[:2])
    assert sum(split.values()) == 60


def held_requests(processes: list[ComponentProcess]) -> dict[str, str]:
    """token -> the instance whose log says it holds that request."""
    held = {}
    for process, name in zip(processes, INSTANCES, strict=True):
        for line in process.lines:
            if "request " in line and " held by " in line:
                held[line.split("request ")[1].split(" ")[0]] = name
    return held


def send_held_requests(client: XmppClient, processes: list[ComponentProcess], count: int = 12):
    """Send ``count`` requests to hold at once from a thread, and wait until every one is held by an instance.

    Returns the tokens, the list the replies will be in (in token order, ``None`` for no reply
    within CLIENT_TIMEOUT), the sending thread to join, and which instance holds which token.
    """
    tokens = [f"t{n}" for n in range(count)]
    replies: list = []
    sender = threading.Thread(
        target=lambda: replies.extend(
            client.iqs([f"<hold xmlns='{NS}' token='{token}'/>" for token in tokens], timeout=CLIENT_TIMEOUT)
        )
    )
    sender.start()

    def all_held() -> dict[str, str] | None:
        held = held_requests(processes)
        return held if len(held) == count else None

    return tokens, replies, sender, processes[0].wait_until(all_held, f"{count} held requests", timeout=10)


def release(process: ComponentProcess) -> None:
    """Let an instance answer every request it holds."""
    process.process.send_signal(signal.SIGUSR1)


def test_a_request_held_by_an_instance_that_dies_gets_no_reply_at_all(start_instances, client):
    """ejabberd sends nothing for a request it delivered to a connection that then died: the
    client has only its own timeout to go by. The survivors' requests are answered."""
    processes = start_instances()
    tokens, replies, sender, held = send_held_requests(client, processes)
    victim, _count = Counter(held.values()).most_common(1)[0]
    killed = processes[INSTANCES.index(victim)]
    killed.process.send_signal(signal.SIGKILL)
    killed.wait()
    for survivor in processes:
        if survivor is not killed:
            release(survivor)
    sender.join(CLIENT_TIMEOUT + 10)
    assert not sender.is_alive()

    outcome = dict(zip(tokens, replies, strict=True))
    lost = {token for token, reply in outcome.items() if reply is None}
    assert lost == {token for token, name in held.items() if name == victim}
    assert all(reply.get("type") == "result" for reply in outcome.values() if reply is not None)
    print(f"killed {victim} holding {len(lost)} of {len(tokens)} requests: no reply to those within {CLIENT_TIMEOUT} s")


def test_an_instance_stopped_with_sigterm_answers_what_it_holds_and_the_others_take_the_rest(
    server, start_instances, client
):
    """A rolling restart: the stopped instance finishes its requests, nothing is lost."""
    processes = start_instances()
    tokens, replies, sender, held = send_held_requests(client, processes)
    stopped_name, count = Counter(held.values()).most_common(1)[0]
    stopped = processes[INSTANCES.index(stopped_name)]
    offset = len(server.log_path.read_text(errors="replace"))
    stopped.process.send_signal(signal.SIGTERM)
    assert f"for {count} request(s) in progress" in stopped.wait_for_log("Shutting down: waiting")
    for process in processes:
        release(process)
    assert stopped.wait() == 0
    sender.join(CLIENT_TIMEOUT + 10)
    assert not sender.is_alive()

    assert [reply is not None and reply.get("type") for reply in replies] == ["result"] * len(tokens)
    finished_by = {token: reply.find(f"{{{NS}}}done").get("by") for token, reply in zip(tokens, replies, strict=True)}
    assert finished_by == held
    wait_for_log(server.log_path, f"Route unregistered: {stopped_name}", offset)
    wait_for_log(server.log_path, f"Route unregistered: {SHARED}", offset)
    split = whoami(client, 30)
    assert set(split) == set(INSTANCES) - {stopped_name} and sum(split.values()) == 30


def test_outbound_queries_from_three_instances_each_get_their_own_response(start_instances, client):
    start_instances()
    tokens = [f"token-{n}" for n in range(30)]
    replies = client.iqs([f"<relay xmlns='{NS}' token='{token}'/>" for token in tokens])
    assert all(reply is not None for reply in replies)
    relayed = [reply.find(f"{{{NS}}}relayed") for reply in replies]
    assert [reply.get("type") for reply in replies] == ["result"] * len(tokens), [
        ElementTree.tostring(reply) for reply in replies if reply.get("type") != "result"
    ]
    assert [answer.get("token") for answer in relayed] == tokens
    assert {answer.get("by") for answer in relayed} == set(INSTANCES)


def test_without_instance_names_responses_reach_the_wrong_instance(start_instances, client):
    """The failure the instance names prevent: the response goes to any of the three, and
    the two that did not ask drop it, so the query times out."""
    start_instances((None, None, None))
    replies = client.iqs([f"<relay xmlns='{NS}' token='t{n}'/>" for n in range(12)])
    failed = [reply for reply in replies if reply is not None and reply.get("type") == "error"]
    assert failed, "all 12 responses found their way by chance (odds 1 in 3^12)"
    assert {error_of(reply) for reply in failed} == {("wait", "remote-server-timeout")}
    print(f"without instance names, {len(failed)} of 12 outbound queries timed out")
