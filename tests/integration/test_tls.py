"""Direct TLS (XEP-0114 has no STARTTLS): a ``tls:`` endpoint with certificate verification, on each server.

Prosody listens for TLS from the first byte on a port of mod_net_multiplex (``ssl_ports``) and
hands the stream to the component listener once the TLS handshake is done; ejabberd has an
``ejabberd_service`` listener with ``tls: true`` and its own ``certfile``. Both serve a
certificate this module makes with its own throwaway CA. The component connects with Twisted's
``tls:host=...:port=...:trustRoots=...`` endpoint, which verifies the chain against the
trust roots and the name against ``host`` (service_identity).

A failed verification must end the connection attempt with a log line that says why, and
never send the XEP-0114 stream header (which names the component) anywhere in the clear.
That is checked on the wire: in the failure cases the component connects to Prosody's TLS
port through a relay that records every byte the component sends.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from private_servers.base import LOOPBACK, free_port
from private_servers.prosody import PrivateProsody
from tests.integration.certificates import ServerCertificate, make_authority, make_server_certificate
from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.relay import RecordingRelay
from tests.integration.servers import XmppServer, pki_for, wait_for_log
from tests.integration.xmpp_client import XmppClient

pytestmark = pytest.mark.integration

HOSTNAME = "localhost"
"""The name the component connects to and verifies (the ``host`` of its endpoint)."""
OTHER_HOSTNAME = "other.example"
"""The name in the certificate of the wrong-name case."""

# What the component logs when verification fails (component/connection.py, _tls_failure):
#   "TLS to {server} failed, nothing was sent: {problem}", where the problem comes from
# OpenSSL.SSL.Error for an untrusted chain and service_identity's VerificationError for a wrong name.
UNTRUSTED_REASON = "certificate verify failed"
WRONG_NAME_REASON = f"certificate is not valid for {HOSTNAME}"

TLS_HANDSHAKE_RECORD = b"\x16\x03"
"""How every TLS connection starts: a handshake record (the ClientHello), TLS 1.x."""
# Plaintext XEP-0114 that must never be on the wire: the stream header and its namespace.
CLEARTEXT_MARKERS = (b"jabber:component:accept", b"<stream", b"iq.localhost")

KINDS = ("prosody", "ejabberd")
# Prosody logs this (info level) as soon as its component listener gets a connection, whether
# plaintext on the component port or routed there from the TLS port by the stream header.
COMPONENT_CONNECTION = "Incoming Jabber component connection"
# What each server logs (info level) when a component authenticates.
COMPONENT_AUTHENTICATED = {
    "prosody": "External component successfully authenticated",
    "ejabberd": "Accepted external component handshake authentication for iq.localhost",
}
# ejabberd logs every accepted TCP connection, on any listener, as "... -> 127.0.0.1:PORT".
EJABBERD_CONNECTION = "Accepted connection 127.0.0.1:"
LOG_TIMEOUT = 10.0
LOG_POLL = 0.02


@dataclass(frozen=True)
class Pki:
    trusted_roots: Path
    """Our CA alone: the trustRoots of the component."""
    unrelated_roots: Path
    """Another CA, which signed nothing the servers serve."""
    server: ServerCertificate
    """For ``localhost``, signed by our CA."""
    other_name: ServerCertificate
    """For ``other.example``, signed by our CA."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    trusted = make_authority(directory / "trusted-ca", "iqresponder test CA")
    unrelated = make_authority(directory / "unrelated-ca", "unrelated test CA")
    server = make_server_certificate(trusted, directory / "server", HOSTNAME)
    other = make_server_certificate(trusted, directory / "server", OTHER_HOSTNAME)
    return Pki(trusted.trust_roots, unrelated.trust_roots, server, other)


@pytest.fixture(scope="module", params=KINDS)
def kind(request) -> str:
    return request.param


def start_server(kind: str, directory: Path, secret_file: Path, pki: Pki, certificate: ServerCertificate) -> XmppServer:
    server = XmppServer(f"{kind}-tls", directory, secret_file.read_text(), pki_for(pki.trusted_roots, certificate))
    server.start()
    return server


@pytest.fixture(scope="module")
def tls_server(kind, tmp_path_factory, secret_file, pki):
    """The server whose TLS port serves a certificate for ``localhost`` from our CA."""
    server = start_server(kind, tmp_path_factory.mktemp(f"{kind}-tls"), secret_file, pki, pki.server)
    server.register(USER, PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wrong_name_server(kind, tmp_path_factory, secret_file, pki):
    """The server whose TLS port serves a certificate for ``other.example``, also from our CA."""
    server = start_server(kind, tmp_path_factory.mktemp(f"{kind}-wrong-name"), secret_file, pki, pki.other_name)
    yield server
    server.stop()


def tls_endpoint(port: int, trust_roots: Path, host: str = HOSTNAME) -> str:
    # trustRoots is a directory: Twisted loads each *.pem file in it as one CA certificate.
    return f"tls:host={host}:port={port}:trustRoots={trust_roots}/"


@pytest.fixture(scope="module")
def tls_component(tmp_path_factory, tls_server, secret_file, pki):
    server = tls_endpoint(tls_server.tls_port, pki.trusted_roots)
    config = write_config(tmp_path_factory.mktemp("tls-config") / "iqresponder.toml", server, secret_file, [BUNDLED])
    process = ComponentProcess(config)
    process.wait_for_log("Authenticated as iq.localhost")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def tls_client(tls_server, tls_component):
    # Plaintext c2s on the normal port: only the component's link to the server is TLS here.
    session = XmppClient(f"{USER}@localhost/tls", PASSWORD, tls_server.c2s_port)
    yield session
    session.close()


def test_authenticates_over_tls_with_a_certificate_from_the_trusted_ca(kind, tls_server, tls_component):
    line = tls_component.wait_for_log("Authenticated as iq.localhost")
    assert f"to tls:host={HOSTNAME}:port={tls_server.tls_port}:" in line
    wait_for_log(tls_server.log_path, COMPONENT_AUTHENTICATED[kind])


def test_a_ping_is_answered_through_the_tls_link(tls_client):
    reply = tls_client.iq("<ping xmlns='urn:xmpp:ping'/>")
    assert reply.get("type") == "result" and list(reply) == [], ElementTree.tostring(reply)
    assert reply.get("from") == "iq.localhost" and reply.get("to") == f"{USER}@localhost/tls"


def read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def server_log_after(server: XmppServer, offset: int) -> str:
    """The server's log from ``offset`` on, once it has handled everything sent to it before this call.

    The barrier is one plaintext TCP connection to the component port, which the server logs at
    once (Prosody's COMPONENT_CONNECTION, ejabberd's EJABBERD_CONNECTION to that port), after any
    connection that reached it earlier. For Prosody it also shows that a plaintext connection to
    the component port would be in this log.
    """
    barrier = COMPONENT_CONNECTION if server.kind == "prosody" else f" -> {LOOPBACK}:{server.component_port}"
    with socket.create_connection((LOOPBACK, server.component_port), timeout=5):
        deadline = time.monotonic() + LOG_TIMEOUT
        # The servers have no way to notify us: poll the log file, bounded by LOG_TIMEOUT.
        while barrier not in (log := read_from(server.log_path, offset)):
            assert time.monotonic() < deadline, f"the server did not log the barrier connection:\n{log}"
            time.sleep(LOG_POLL)
    return log


@dataclass(frozen=True)
class FailedAttempt:
    kind: str
    name: str
    server: str
    """The component's only endpoint: the relay in front of the server's TLS port."""
    failure_line: str
    component_log: str
    sent: list[bytes]
    """Every byte the component sent, per TCP connection."""
    server_log: str
    """The server's log while the component ran, up to and including the barrier connection."""


CASES = {
    # The chain does not lead to the trust roots: the server's certificate is from our CA,
    # the component trusts only the unrelated one.
    "untrusted": ("tls_server", "unrelated_roots", UNTRUSTED_REASON),
    # The chain is trusted, but the certificate is for other.example, not localhost.
    "wrong-name": ("wrong_name_server", "trusted_roots", WRONG_NAME_REASON),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def failed_attempt(request, kind, tmp_path_factory, secret_file, pki) -> FailedAttempt:
    server_fixture, roots, reason = CASES[request.param]
    xmpp_server: XmppServer = request.getfixturevalue(server_fixture)
    # The server may log the connections start() made to check its ports after start()
    # returned: let a first barrier pass them before the component starts.
    server_log_after(xmpp_server, xmpp_server.log_path.stat().st_size)
    offset = xmpp_server.log_path.stat().st_size
    relay = RecordingRelay(xmpp_server.tls_port)
    try:
        server = tls_endpoint(relay.port, getattr(pki, roots))
        config = write_config(
            tmp_path_factory.mktemp(f"{kind}-{request.param}") / "iqresponder.toml", server, secret_file, [BUNDLED]
        )
        process = ComponentProcess(config)
        try:
            line = process.wait_for_log(reason)
        finally:
            process.stop()
        return FailedAttempt(
            kind,
            request.param,
            server,
            line,
            process.log(),
            relay.connections(),
            server_log_after(xmpp_server, offset),
        )
    finally:
        relay.stop()


def test_a_failed_verification_is_one_clear_log_line_naming_the_server_and_the_reason(failed_attempt):
    line = failed_attempt.failure_line
    assert failed_attempt.server in line
    assert (UNTRUSTED_REASON if failed_attempt.name == "untrusted" else WRONG_NAME_REASON) in line
    assert "Traceback" not in failed_attempt.component_log, failed_attempt.component_log


def test_a_failed_verification_never_authenticates(failed_attempt):
    assert "Authenticated as" not in failed_attempt.component_log, failed_attempt.component_log
    assert COMPONENT_AUTHENTICATED[failed_attempt.kind] not in failed_attempt.server_log, failed_attempt.server_log


def test_a_failed_verification_sends_nothing_in_the_clear(failed_attempt):
    """Every connection the component made began with a TLS ClientHello, and no XEP-0114 is readable on the wire."""
    assert failed_attempt.sent, "the component never connected to the relay"
    for sent in failed_attempt.sent:
        assert sent.startswith(TLS_HANDSHAKE_RECORD), sent[:64]
        for marker in CLEARTEXT_MARKERS:
            assert marker not in sent, f"{marker!r} went over the wire in the clear: {sent!r}"


@pytest.mark.parametrize("kind", ["prosody"], indirect=True)
def test_a_failed_verification_sends_no_stream_header_at_all(failed_attempt):
    """Not even encrypted: Prosody's component listener saw no stream, only the test's own barrier connection.

    A header sent over TLS after a failed check would be routed to the component listener by
    mod_net_multiplex; a fallback to the plaintext component port would connect to it directly.
    Either way Prosody would log one more COMPONENT_CONNECTION. (ejabberd logs nothing for a
    stream header, so there is nothing to observe there; the wire test above covers both.)
    """
    assert failed_attempt.server_log.count(COMPONENT_CONNECTION) == 1, failed_attempt.server_log


def test_without_the_tls_variables_prosody_has_no_tls_port(tmp_path, secret_file, monkeypatch):
    # Variables left in the caller's environment do not switch TLS on either.
    monkeypatch.setenv("IQR_TLS_PORT", str(free_port()))
    server = PrivateProsody(tmp_path, free_port(), free_port(), secret_file.read_text())
    assert not any(name.startswith("IQR_TLS_") for name in server.environment())
    with server:
        log = server.log_path.read_text()
    assert "Activated service 'multiplex_ssl'" not in log
    assert "Activated service 'component'" in log
