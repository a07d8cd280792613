"""Faults injected against each real server: restarts, SIGKILL, a hung server, a flooding sender, SIGTERM."""

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from private_servers.base import free_port
from private_servers.prosody import PrivateProsody
from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.xmpp_client import XmppClient, error_of

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
import c2s
import loadgen

pytestmark = pytest.mark.integration

HANDLERS = '''
import signal

from twisted.internet import defer, reactor
from twisted.logger import Logger
from twisted.words.xish import domish

from component import NO_TIMEOUT, NotConnected, responder

log = Logger()
held = []


def release_all():
    while held:
        held.pop(0).callback(None)


# The test releases a held request with SIGUSR1, at the moment it chooses (not after a time).
signal.signal(signal.SIGUSR1, lambda signum, frame: reactor.callFromThread(release_all))


@responder("urn:example:faults", "get", element="hang")
def hang(request):
    return defer.Deferred()  # never answers: only the handler timeout or a shutdown ends it


@responder("urn:example:faults", "get", element="ask-silent")
async def ask_silent(request):
    """Ask an address of our own whose responder never answers, through the server; report how it ended."""
    log.info("outbound query waiting")
    try:
        await request.component.query(
            "sink@iq.localhost", domish.Element(("urn:example:faults", "hang")), timeout=NO_TIMEOUT
        )
    except NotConnected as e:
        log.info("outbound query failed with NotConnected: {e}", e=str(e))
        raise
    except Exception as e:
        log.info("outbound query ended otherwise: {e!r}", e=e)
        raise
    log.info("outbound query answered")


@responder("urn:example:faults", "get", element="hold")
async def hold(request):
    released = defer.Deferred()
    held.append(released)
    log.info("request {id} held until released", id=request.id)
    await released
    return domish.Element(("urn:example:faults", "done"))
'''


@pytest.fixture(scope="module")
def fault_handlers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fault-handlers")
    (directory / "faults.py").write_text(HANDLERS)
    return directory


@pytest.fixture
def start_component(tmp_path, server, secret_file, fault_handlers):
    """Start a component under twistd with extra configuration; stopped by pid after the test.

    The test fails if a component logged a failure other than its ``expected_failures``.
    """
    started: list[tuple[ComponentProcess, tuple[str, ...]]] = []

    def start(
        extra: str = "", name: str = "iqresponder.toml", component: str = "", expected_failures: tuple[str, ...] = ()
    ) -> ComponentProcess:
        config = write_config(
            tmp_path / name, server.endpoint, secret_file, [BUNDLED, fault_handlers], extra, component
        )
        process = ComponentProcess(config)
        started.append((process, expected_failures))
        process.wait_for_log("Authenticated as iq.localhost")
        return process

    yield start
    for process, _ in started:
        process.stop()
    unexpected = [
        text
        for process, expected in started
        for text in process.failures()
        if not any(failure in text for failure in expected)
    ]
    assert unexpected == [], "a component logged failures:\n" + "\n".join(unexpected)


def login(server, resource: str) -> XmppClient:
    return XmppClient(f"{USER}@localhost/{resource}", PASSWORD, server.c2s_port)


def ping_ok(client: XmppClient) -> bool:
    return client.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"


def test_server_restart_under_load_fails_pending_queries_and_the_component_answers_afterwards(server, start_component):
    # The silent query's own request to the component may survive the restart and hang until the
    # handler timeout; a short grace keeps the SIGTERM at the end from waiting for it.
    component = start_component(
        "[limits]\nhandler_timeout = 60.0\n",
        component="shutdown_grace = 0.5\n",
        expected_failures=("Responder ask_silent failed",),
    )
    client = login(server, "steady")
    answered = sum(ping_ok(client) for _ in range(20))  # a steady stream of queries before the restart
    assert answered == 20

    # An outbound query left pending: the responder asks the client, which never answers.
    asyncio.run_coroutine_threadsafe(_send_raw(client), client.loop).result(5)
    component.wait_for_log("outbound query waiting")

    server.restart()
    component.wait_for_log("outbound query failed with NotConnected")
    # The responder lets NotConnected escape: the component logs it with its traceback, which is
    # how a test that reads only replies would still see it (the fixture fails on any other).
    [failure] = component.wait_until(
        lambda: [text for text in component.failures() if "NotConnected" in text] or None, "the responder's failure"
    )
    assert "Responder ask_silent failed" in failure
    component.wait_for_log("Authenticated as iq.localhost", count=2, timeout=20)
    client.close()

    after = login(server, "after-restart")
    try:
        assert all(ping_ok(after) for _ in range(50))
    finally:
        after.close()
    assert component.process.poll() is None


async def _send_raw(client: XmppClient) -> None:
    """Send the ask-silent request without waiting for its answer (it only comes after the fault)."""
    from xml.etree import ElementTree

    stanza = ElementTree.fromstring(
        "<iq xmlns='jabber:client' type='get' to='iq.localhost' id='ask-silent-1'>"
        "<ask-silent xmlns='urn:example:faults'/></iq>"
    )
    client.xmpp.Iq(xml=stanza).send()


def test_component_killed_with_sigkill_and_started_again_answers(server, start_component):
    first = start_component(name="first.toml")
    first.process.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    start_component(name="second.toml")
    client = login(server, "after-kill")
    try:
        assert all(ping_ok(client) for _ in range(20))
    finally:
        client.close()


@pytest.mark.servers("prosody-tcp")
def test_on_prosody_a_second_instance_waits_as_a_standby_and_takes_over_when_the_first_dies(
    server, start_component, tmp_path, secret_file, fault_handlers
):
    """Prosody allows one connection per name: the second is refused with conflict and, since a
    conflict is not a wrong secret, keeps retrying with backoff until the name is free."""
    first = start_component(name="first.toml")
    standby = ComponentProcess(
        write_config(tmp_path / "standby.toml", server.endpoint, secret_file, [BUNDLED, fault_handlers])
    )
    try:
        line = standby.wait_for_log("refused iq.localhost: conflict")
        assert "Component already connected" in line
        standby.wait_for_log("Reconnecting to")
        assert standby.process.poll() is None

        first.process.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        standby.wait_for_log("Authenticated as iq.localhost", timeout=30)
        took = time.monotonic() - killed_at
        client = login(server, "after-takeover")
        try:
            assert all(ping_ok(client) for _ in range(10))
        finally:
            client.close()
        print(f"the standby took over {took:.1f} s after the first instance was killed (reconnect_max 2 s)")
    finally:
        standby.stop()


def test_with_kick_old_a_newer_instance_replaces_the_older_which_stops_instead_of_taking_the_name_back(
    tmp_path, secret_file, fault_handlers
):
    """Prosody's component_conflict_resolve = "kick_old": the newcomer wins, and the replaced process
    exits 0 rather than reconnecting (which would kick the newcomer in turn, over and over)."""
    prosody = PrivateProsody(
        tmp_path / "kick-old", free_port(), free_port(), secret_file.read_text(), conflict_resolve="kick_old"
    )
    with prosody:
        prosody.register(USER, "localhost", PASSWORD)
        config = write_config(
            tmp_path / "kick.toml",
            f"tcp:host=127.0.0.1:port={prosody.component_port}",
            secret_file,
            [BUNDLED, fault_handlers],
        )
        older = ComponentProcess(config)
        newer = None
        try:
            older.wait_for_log("Authenticated as iq.localhost")
            newer = ComponentProcess(config)
            newer.wait_for_log("Authenticated as iq.localhost")
            assert older.wait() == 0
            assert "Stopping: another connection took over iq.localhost" in older.log()
            assert older.log().count("Authenticated as iq.localhost") == 1
            client = XmppClient(f"{USER}@localhost/kick-old", PASSWORD, prosody.c2s_port)
            try:
                assert all(ping_ok(client) for _ in range(10))
            finally:
                client.close()
            assert newer.log().count("Authenticated as iq.localhost") == 1  # never kicked back
        finally:
            older.stop()
            if newer is not None:
                newer.stop()


def test_hung_server_is_noticed_by_the_keepalive_and_the_component_reconnects_when_it_is_back(server, start_component):
    component = start_component(component="keepalive_interval = 1.0\nkeepalive_timeout = 1.0\n")
    os.kill(server.pid, signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        component.wait_for_log("did not answer a keepalive ping", timeout=15)
        noticed_after = time.monotonic() - stopped_at
        component.wait_for_log("Lost the connection")
    finally:
        os.kill(server.pid, signal.SIGCONT)
    component.wait_for_log("Authenticated as iq.localhost", count=2, timeout=30)
    client = login(server, "after-hang")
    try:
        assert ping_ok(client)
    finally:
        client.close()
    print(f"keepalive noticed the hung server after {noticed_after:.1f} s (interval 1 s, timeout 1 s)")
    assert noticed_after < 10


FLOOD_ROUND, FLOOD_ROUNDS_AT_MOST, QUIET = 1000, 100, 20
RATE, BURST = 20.0, 20


def test_one_sender_flooding_does_not_starve_another(server, start_component, record_property):
    """The flood goes in rounds of FLOOD_ROUND pings sent at once, from before the quiet sender's first
    ping until its last reply (at most FLOOD_ROUNDS_AT_MOST rounds): every quiet ping meets the flood."""
    start_component(f"[limits]\nsender_rate = {RATE}\nsender_burst = {BURST}\n")
    server.register("flooder", "flooder")
    quiet = login(server, "quiet")
    under_way, quiet_done = threading.Event(), threading.Event()
    rounds: list[loadgen.Report] = []
    flood_seconds = []

    def flood():
        async def run():
            link = await c2s.connect(server.c2s_port, "flooder", "flooder")
            started = time.perf_counter()
            while not quiet_done.is_set() and len(rounds) < FLOOD_ROUNDS_AT_MOST:
                # stall_seconds bounds a round that stops being answered; it never ends a working one.
                rounds.append(await loadgen.run(link, "ping", FLOOD_ROUND, window=FLOOD_ROUND, stall_seconds=20))
                under_way.set()
            flood_seconds.append(time.perf_counter() - started)
            link.close_stream()

        try:
            asyncio.run(run())
        finally:
            under_way.set()  # a flood that failed must not leave the test waiting

    flooder = threading.Thread(target=flood)
    flooder.start()
    latencies = []
    try:
        assert under_way.wait(30), "the flood's first round was not answered within 30 s"
        for _ in range(QUIET):
            started = time.perf_counter()
            assert ping_ok(quiet)
            latencies.append(time.perf_counter() - started)
    finally:
        quiet_done.set()
        flooder.join(60)
        quiet.close()
    assert not flooder.is_alive(), "the flood's last round was not over within 60 s"
    assert flood_seconds, "the flood failed"
    assert len(rounds) < FLOOD_ROUNDS_AT_MOST, "the flood ended before the quiet sender was done"
    assert [report.failures for report in rounds] == [[]] * len(rounds)
    flooded = FLOOD_ROUND * len(rounds)
    assert sum(report.replies for report in rounds) == flooded  # every flood request got its one reply...
    accepted = flooded - sum(report.errors for report in rounds)  # ...and the rest resource-constraint:
    assert BURST <= accepted <= BURST + RATE * flood_seconds[0] + 1, (accepted, flood_seconds)  # the token bucket
    worst = max(latencies) * 1000
    record_property("quiet_sender_p50_ms", sorted(latencies)[len(latencies) // 2] * 1000)
    record_property("quiet_sender_max_ms", worst)
    print(
        f"while another sender flooded {flooded:,} pings in {flood_seconds[0]:.2f} s ({accepted} accepted): "
        f"quiet sender max {worst:.1f} ms over {QUIET} pings"
    )


def test_sigterm_lets_a_request_in_flight_finish_then_closes_the_stream_and_exits_zero(server, start_component):
    component = start_component()
    client = login(server, "shutdown")
    try:
        replies = []
        waiting = threading.Thread(
            target=lambda: replies.append(client.iq("<hold xmlns='urn:example:faults'/>", timeout=15))
        )
        waiting.start()
        component.wait_for_log("held until released")
        component.process.send_signal(signal.SIGTERM)
        assert "for 1 request(s) in progress" in component.wait_for_log("Shutting down: waiting")
        component.process.send_signal(signal.SIGUSR1)  # now the request may finish
        waiting.join(20)
        [reply] = replies
        assert reply.get("type") == "result" and reply.find("{urn:example:faults}done") is not None
        assert component.wait(timeout=15) == 0
    finally:
        client.close()


def test_secret_is_in_neither_the_process_arguments_nor_the_log(server, start_component, secret_file):
    component = start_component()
    arguments = Path(f"/proc/{component.pid}/cmdline").read_bytes()
    secret = secret_file.read_text().strip()
    assert secret.encode() not in arguments
    assert secret not in component.log()


def test_a_request_from_an_access_controlled_namespace_is_forbidden_through_the_server(server, start_component):
    start_component("[[access.rules]]\nnamespace = 'urn:xmpp:ping'\nallow = ['admin@localhost']\n")
    client = login(server, "not-admin")
    try:
        assert error_of(client.iq("<ping xmlns='urn:xmpp:ping'/>")) == ("auth", "forbidden")
        assert client.iq("<query xmlns='jabber:iq:version'/>").get("type") == "result"
    finally:
        client.close()
