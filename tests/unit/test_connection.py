"""The XEP-0114 connection: handshake, refusals, reconnection and its backoff, in memory."""

import pytest
from twisted.internet import task
from twisted.internet.defer import fail, succeed
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from component.process import EX_CONFIG, ProcessPolicy
from component.registry import Registry
from component.service import Component
from component.testing import SERVER_HEADER, make_settings

NOT_AUTHORIZED = (
    b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Given token does not match calculated token</text>"
    b"</stream:error>"
)
HOST_UNKNOWN = b"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"


@implementer(IStreamClientEndpoint)
class ScriptedServer:
    """An endpoint whose server side the test plays: refuse, or accept and then answer by script."""

    def __init__(self, clock):
        self.clock = clock
        self.accepting = False
        self.attempt_times = []
        self.streams = []

    def connect(self, factory):
        self.attempt_times.append(self.clock.seconds())
        if not self.accepting:
            return fail(ConnectionRefusedError("refused in test"))
        stream = factory.buildProtocol(None)
        stream.makeConnection(StringTransport())
        self.streams.append(stream)
        return succeed(stream)

    def start_stream(self):
        self.streams[-1].dataReceived(SERVER_HEADER % b"iq.localhost")

    def accept(self):
        self.start_stream()
        self.streams[-1].dataReceived(b"<handshake/>")

    def refuse(self, error=NOT_AUTHORIZED):
        self.start_stream()
        self.streams[-1].dataReceived(error)
        self.drop()  # StringTransport.loseConnection does not call connectionLost itself

    def drop(self):
        self.streams[-1].connectionLost(Failure(ConnectionLost("dropped in test")))


class Harness:
    def __init__(self, reconnect_max=60.0):
        self.clock = task.Clock()
        self.server = ScriptedServer(self.clock)
        self.gave_up = []
        policy = ProcessPolicy(self.clock, give_up=lambda reactor, status: self.gave_up.append(status))
        self.component = Component(
            make_settings(reconnect_max=reconnect_max),
            Registry(),
            reactor=self.clock,
            endpoint=self.server,
            jitter=lambda: 0.0,
            on_refused=policy.refused,
            on_replaced=policy.replaced,
        )
        policy.serve(self.component)

    def run_until_attempts(self, count, limit=1000.0):
        while len(self.server.attempt_times) < count and self.clock.seconds() < limit:
            self.clock.advance(0.25)
        return [round(b - a, 2) for a, b in zip(self.server.attempt_times, self.server.attempt_times[1:])]


@pytest.fixture
def harness():
    """A component whose first connection attempt reaches the scripted server."""
    h = Harness()
    h.server.accepting = True
    h.component.startService()
    yield h
    h.component.stopService()


def test_refused_connections_are_retried_with_exponential_backoff_capped_by_reconnect_max():
    h = Harness(reconnect_max=5.0)
    h.component.startService()
    delays = h.run_until_attempts(6)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_one_log_line_once_authenticated(harness, caplog_twisted):
    harness.server.accept()
    assert harness.component.connected
    lines = [caplog_twisted.format(e) for e in caplog_twisted if "Authenticated" in caplog_twisted.format(e)]
    assert lines == ["Authenticated as iq.localhost to tcp:host=127.0.0.1:port=5347"]


def test_wrong_secret_is_logged_in_one_line_with_condition_and_server_text(harness, caplog_twisted):
    harness.component.link.connection.ever_authenticated = True  # keep retrying, as after a past success
    harness.server.refuse()
    line = next(caplog_twisted.format(e) for e in caplog_twisted if "refused" in caplog_twisted.format(e))
    assert "not-authorized" in line and "Given token does not match calculated token" in line
    assert "\n" not in line and "in-memory" not in line  # the secret is never logged


def test_backoff_keeps_growing_while_the_handshake_fails_even_though_tcp_connects():
    h = Harness(reconnect_max=60.0)
    h.component.link.connection.ever_authenticated = True
    h.server.accepting = True
    h.component.startService()
    for _ in range(5):
        h.server.refuse()
        h.run_until_attempts(len(h.server.attempt_times) + 1)
    delays = [round(b - a, 2) for a, b in zip(h.server.attempt_times, h.server.attempt_times[1:])]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_backoff_resets_after_a_successful_handshake():
    h = Harness()
    h.component.startService()
    h.run_until_attempts(4)  # refused three times: the next wait would be 8 s
    h.server.accepting = True
    h.run_until_attempts(5)
    h.server.accept()
    h.server.drop()
    delays = h.run_until_attempts(6)
    assert delays[-1] == 1.0


def test_a_lost_stream_is_reconnected_and_serves_again(harness):
    harness.server.accept()
    harness.server.drop()
    assert not harness.component.connected
    harness.run_until_attempts(2)
    harness.server.accept()
    assert harness.component.connected


def test_a_stream_the_server_drops_is_a_warning_and_one_closed_by_stopping_is_info(harness, caplog_twisted):
    harness.server.accept()
    harness.server.drop()
    harness.run_until_attempts(2)
    harness.server.accept()
    harness.component.stopService()
    harness.server.drop()  # the close that stopping asked for (StringTransport does not deliver it itself)
    logged = [
        (e["log_level"].name, e["log_format"].split(" {")[0])
        for e in caplog_twisted
        if "connection to" in e["log_format"]
    ]
    assert logged == [("warn", "Lost the connection to"), ("info", "Closed the connection to")]


@pytest.mark.parametrize("error, condition", [(NOT_AUTHORIZED, "not-authorized"), (HOST_UNKNOWN, "host-unknown")])
def test_refusal_before_ever_authenticating_gives_up_with_ex_config(error, condition, caplog_twisted):
    h = Harness()
    h.server.accepting = True
    h.component.startService()
    h.server.refuse(error)
    assert h.gave_up == [EX_CONFIG]
    assert any(condition in caplog_twisted.format(e) and "Stopping" in caplog_twisted.format(e) for e in caplog_twisted)


def test_refusal_after_having_been_authenticated_is_retried_not_fatal():
    h = Harness()
    h.server.accepting = True
    h.component.startService()
    h.server.accept()
    h.server.drop()
    h.run_until_attempts(2)
    h.server.refuse()
    assert h.gave_up == []
    assert len(h.run_until_attempts(3)) == 2


REPLACED = (
    b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new connection</text></stream:error>"
)


def test_being_replaced_by_another_connection_stops_the_process_cleanly_without_reconnecting(caplog_twisted):
    h = Harness()
    h.server.accepting = True
    h.component.startService()
    h.server.accept()
    h.server.streams[-1].dataReceived(REPLACED)
    h.server.drop()
    assert h.gave_up == [0]
    [line] = [caplog_twisted.format(e) for e in caplog_twisted if "Stopping" in caplog_twisted.format(e)]
    assert "iq.localhost" in line and "Replaced by new connection" in line


def test_other_stream_errors_before_authentication_are_retried(harness):
    harness.server.refuse(b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")
    assert harness.gave_up == []
    assert len(harness.run_until_attempts(2)) == 1


def sent_by_component(server):
    return server.streams[-1].transport.value().decode()


def test_server_that_never_completes_the_handshake_is_dropped_and_retried():
    h = Harness()
    h.server.accepting = True
    h.component.startService()
    h.server.start_stream()  # header, but no <handshake/>
    h.clock.advance(h.component.settings.keepalive_timeout + 0.1)
    assert h.server.streams[-1].transport.disconnecting or h.server.streams[-1].transport.disconnected
    h.server.drop()
    assert len(h.run_until_attempts(2)) == 1


def test_keepalive_pings_the_server_and_drops_a_silent_connection(caplog_twisted):
    h = Harness()
    h.server.accepting = True
    h.component.startService()
    h.server.accept()
    stream = h.server.streams[-1]
    stream.transport.clear()
    h.clock.advance(h.component.settings.keepalive_interval)
    ping = sent_by_component(h.server)
    assert "urn:xmpp:ping" in ping and "to='localhost'" in ping
    h.clock.advance(h.component.settings.keepalive_timeout + 0.1)
    assert stream.transport.disconnecting or stream.transport.disconnected
    assert "did not answer a keepalive ping" in caplog_twisted.text()


@pytest.mark.parametrize("answer", ["result", "error"])
def test_keepalive_keeps_a_connection_whose_server_answers(answer):
    h = Harness()
    h.server.accepting = True
    h.component.startService()
    h.server.accept()
    stream = h.server.streams[-1]
    for _ in range(3):
        stream.transport.clear()
        h.clock.advance(h.component.settings.keepalive_interval)
        ping_id = sent_by_component(h.server).split("id='")[1].split("'")[0]
        stream.dataReceived(f"<iq type='{answer}' id='{ping_id}' from='localhost' to='iq.localhost'/>".encode())
        h.clock.advance(h.component.settings.keepalive_timeout + 0.1)
        assert not stream.transport.disconnecting
