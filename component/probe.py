"""``iqresponder-probe``: one Iq to one JID, sent as a client account, for operators.

Whether a deployed component works is a question about the whole path a user's request takes,
so this command asks it from the outside, as a user's client would: it logs in to the server as
an ordinary account with Twisted's own XMPP client (STARTTLS, SASL, resource binding), sends one
query, prints the reply stanza on stdout and exits with a status a script or a monitoring check
can test:

    0  a result came
    1  an error reply came (its type, condition and text also go to stderr)
    2  bad usage, or no login: cannot connect, TLS or authentication refused
    3  no reply: nothing within --timeout (to log in, or after the query), the connection
       closed first, or the probe was interrupted

Every failure is one line on stderr. The password comes from a file or the environment, never
from the command line, where every local user could read it in the process list.

It is a client of the component, not a part of it: it imports only Twisted and pyOpenSSL, and
no module of the framework imports it (tests/unit/test_probe.py), so a running component never
loads it. The console script ``iqresponder-probe`` runs ``main()``; ``python -m component.probe``
does too.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import secrets
import sys
from typing import TYPE_CHECKING, Any, NoReturn, cast
from xml.dom import minidom

from OpenSSL import SSL
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import ITCPTransport
from twisted.internet.task import react
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import client, error, sasl, xmlstream
from twisted.words.protocols.jabber.jid import JID, InvalidFormat
from twisted.words.xish import domish

QUERIES = {
    "disco-info": ("http://jabber.org/protocol/disco#info", "query"),
    "disco-items": ("http://jabber.org/protocol/disco#items", "query"),
    "version": ("jabber:iq:version", "query"),
    "ping": ("urn:xmpp:ping", "ping"),
}
PASSWORD_VARIABLE = "IQRESPONDER_PROBE_PASSWORD"
EXIT_RESULT, EXIT_ERROR_REPLY, EXIT_FAILED, EXIT_NO_REPLY = 0, 1, 2, 3
TLS_REQUIRED, TLS_OPTIONAL, TLS_OFF = "required", "optional", "off"
CLOSE_TIMEOUT = 2.0  # seconds for the closing </stream:stream> to reach the server


class ProbeFailure(Exception):
    """What ends the probe early: ``str()`` is the line for stderr, ``status`` the exit status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ProbeFailure(EXIT_FAILED, f"{self.prog}: {message} (see --help)")


def _jid(text: str) -> JID:
    try:
        return JID(text)
    except InvalidFormat as reason:
        raise argparse.ArgumentTypeError(f"{text!r} is not a JID ({reason})") from None


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The command line, checked as far as it can be without the network; bad usage is a ``ProbeFailure``."""
    parser = _Parser(
        prog="iqresponder-probe",
        allow_abbrev=False,  # or --password would pass for --password-file
        description="Log in as a client account, send one Iq to TARGET_JID and print the reply. Exit status: "
        "0 result, 1 error reply, 2 bad usage or no login, 3 no reply (in time). The password is read from "
        f"--password-file, else from the {PASSWORD_VARIABLE} environment variable.",
    )
    parser.add_argument("--jid", type=_jid, required=True, help="the account to log in as: user@domain")
    parser.add_argument("--password", help=argparse.SUPPRESS)  # only to refuse it without echoing it
    parser.add_argument("--password-file", help=f"file holding the password (default: ${PASSWORD_VARIABLE})")
    parser.add_argument("--host", help="server to connect to (default: the domain of --jid; no SRV lookup)")
    parser.add_argument("--port", type=int, default=5222, help="client port of the server (default: 5222)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait to log in, then for the reply")
    parser.add_argument(
        "--tls",
        choices=[TLS_REQUIRED, TLS_OPTIONAL, TLS_OFF],
        help="STARTTLS, checking the certificate against the domain of --jid with the system's CAs (or those in "
        "$SSL_CERT_FILE): 'required' refuses a server without it; 'optional' uses it when offered, else sends "
        "the password unencrypted (SASL PLAIN); 'off' never uses it. Default: 'optional' when --host is "
        "localhost or a loopback address, else 'required'",
    )
    parser.add_argument("--node", help="the disco node to ask about (disco-info, disco-items)")
    parser.add_argument("--xml", help="for raw: a payload element (sent in a get), or a whole <iq type='get|set'>")
    parser.add_argument("target", type=_jid, metavar="TARGET_JID", help="the entity to ask, e.g. iq.example.org")
    parser.add_argument("query", choices=[*QUERIES, "raw"], help="what to ask")
    arguments = parser.parse_args(argv)
    if arguments.password is not None:
        parser.error(f"no --password: any local user can read it; use --password-file or ${PASSWORD_VARIABLE}")
    if not arguments.jid.user:
        parser.error(f"--jid {arguments.jid.full()} is not an account: give user@domain")
    if arguments.node is not None and not arguments.query.startswith("disco-"):
        parser.error("--node is only for disco-info and disco-items")
    if (arguments.xml is None) == (arguments.query == "raw"):
        parser.error("--xml goes with raw, and raw needs --xml")
    if not (math.isfinite(arguments.timeout) and arguments.timeout > 0):
        parser.error("--timeout must be a positive number of seconds")
    if not 0 < arguments.port < 65536:
        parser.error("--port must be between 1 and 65535")
    return arguments


def read_password(path: str | None) -> str:
    """The password from the file (without its final newline), else from the environment."""
    if path is None:
        password, source = os.environ.get(PASSWORD_VARIABLE, ""), f"${PASSWORD_VARIABLE}"
    else:
        try:
            with open(path, encoding="utf-8") as file:
                password, source = file.read().removesuffix("\n").removesuffix("\r"), path
        except (OSError, UnicodeDecodeError) as reason:
            raise ProbeFailure(EXIT_FAILED, f"cannot read the password file {path}: {reason}") from None
    if not password:
        raise ProbeFailure(EXIT_FAILED, f"no password: {source} is empty or missing (give --password-file)")
    return password


def build_request(arguments: argparse.Namespace) -> tuple[str, list[domish.Element | str]]:
    """The Iq type and children the command line asks for; a raw <iq> without xmlns is jabber:client's."""
    if arguments.query != "raw":
        payload = domish.Element(QUERIES[arguments.query])
        if arguments.node is not None:
            payload["node"] = arguments.node
        return "get", [payload]
    elements: list[domish.Element] = []
    parser = domish.elementStream()
    parser.DocumentStartEvent = parser.DocumentEndEvent = lambda *_: None
    parser.ElementEvent = elements.append
    try:
        parser.parse(f"<wrapper xmlns='jabber:client'>{arguments.xml}</wrapper>".encode())
    except domish.ParserError as reason:
        raise ProbeFailure(EXIT_FAILED, f"--xml is not well-formed XML: {reason}") from None
    if len(elements) != 1:
        raise ProbeFailure(EXIT_FAILED, f"--xml must hold exactly one element, not {len(elements)}")
    [element] = elements
    if (element.uri, element.name) != ("jabber:client", "iq"):
        return "get", [element]
    if element.getAttribute("type") not in ("get", "set"):
        raise ProbeFailure(EXIT_FAILED, "an <iq> given with --xml needs type='get' or type='set'")
    if element.getAttribute("to") not in (None, arguments.target.full()):
        raise ProbeFailure(EXIT_FAILED, f"the <iq> given with --xml is addressed to {element['to']}, not TARGET_JID")
    return element["type"], list(element.children)


def default_tls(host: str) -> str:
    """Loopback traffic never leaves the machine, so only there is an unencrypted login a safe default."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host.lower() == "localhost"
    return TLS_OPTIONAL if loopback else TLS_REQUIRED


if TYPE_CHECKING:  # Twisted's class, with the signatures of what the probe calls on it (component/twisted_typed.py)

    class _XMPPAuthenticator(client.XMPPAuthenticator):
        def __init__(self, jid: JID, password: str) -> None: ...

        def associateWithStream(self, xs: xmlstream.XmlStream) -> None: ...

else:
    _XMPPAuthenticator = client.XMPPAuthenticator


class ProbeAuthenticator(_XMPPAuthenticator):
    """Twisted's client authenticator, with STARTTLS as chosen: on its own it fails without STARTTLS."""

    def __init__(self, jid: JID, password: str, tls: str) -> None:
        super().__init__(jid, password)
        self.tls = tls

    def associateWithStream(self, xs: xmlstream.XmlStream) -> None:
        super().associateWithStream(xs)
        for initializer in xs.initializers:
            if isinstance(initializer, xmlstream.TLSInitiatingInitializer):
                initializer.required = self.tls == TLS_REQUIRED
                initializer.wanted = self.tls != TLS_OFF


def _describe(reason: error.BaseError) -> str:
    error_type = getattr(reason, "type", None)  # a stanza error's; a stream error has none
    kind = f"{error_type} " if error_type else ""
    return f"{kind}{reason.condition}" + (f": {reason.text}" if reason.text else "")


def _login_failure(reason: Failure, xs: xmlstream.XmlStream | None) -> str:
    """Why the login failed, in an operator's terms: which step, and what to change."""
    step = type(xs.initializers[0]) if xs is not None and xs.initializers else None
    problem = reason.value
    if isinstance(problem, sasl.SASLAuthError):
        return f"the server refused the login: {problem.condition}"
    if reason.check(sasl.SASLNoAcceptableMechanism):
        offered = ", ".join(sasl.get_mechanisms(xs)) or "none"
        return f"no SASL mechanism that Twisted has (PLAIN, DIGEST-MD5) is offered; the server offers: {offered}"
    if reason.check(xmlstream.TLSRequired):
        return "the server requires STARTTLS, but --tls is off"
    if reason.check(xmlstream.FeatureNotAdvertized) and step is xmlstream.TLSInitiatingInitializer:
        return "the server does not offer STARTTLS (--tls optional would log in without it)"
    if reason.check(xmlstream.FeatureNotAdvertized) and step is sasl.SASLInitiatingInitializer:
        return "the server offers no SASL login on this stream (it may want TLS first)"
    if isinstance(problem, error.StreamError):
        return f"the server closed the stream: {_describe(problem)}"
    if isinstance(problem, SSL.Error):
        why = "; ".join(entry[-1] for entry in problem.args[0] if entry)
        server: JID | None = xs.otherEntity if xs is not None else None
        return f"TLS with {server.host if server is not None else 'the server'} failed: {why}"
    return f"login failed: {reason.getErrorMessage()}"


class ClientSession:
    """One client connection: logged in by ``ProbeAuthenticator``, closed politely.

    ``ready`` fires once: with the authenticated stream, or with a ``ProbeFailure`` saying why
    there is none. Cancelling it (as ``addTimeout`` does) abandons the connection at once.
    """

    def __init__(self, reactor: Any, arguments: argparse.Namespace, password: str) -> None:
        host = arguments.host or arguments.jid.host
        self.address = f"{host}:{arguments.port}"
        authenticator = ProbeAuthenticator(arguments.jid, password, arguments.tls or default_tls(host))
        factory = xmlstream.XmlStreamFactory(authenticator)
        factory.addBootstrap(xmlstream.STREAM_CONNECTED_EVENT, self._connected)
        factory.addBootstrap(xmlstream.STREAM_AUTHD_EVENT, self._logged_in)
        factory.addBootstrap(xmlstream.INIT_FAILED_EVENT, self._refused)
        factory.addBootstrap(xmlstream.STREAM_ERROR_EVENT, self._refused)
        factory.addBootstrap(xmlstream.STREAM_END_EVENT, self._lost)
        self.stream: xmlstream.XmlStream | None = None
        self.ready: defer.Deferred[xmlstream.XmlStream] = defer.Deferred(self._abandon)
        self.closed: defer.Deferred[None] = defer.Deferred()
        self._connecting = HostnameEndpoint(reactor, host, arguments.port).connect(factory)
        self._connecting.addErrback(self._unreachable)

    def _connected(self, xs: xmlstream.XmlStream) -> None:
        self.stream = xs

    def _logged_in(self, xs: xmlstream.XmlStream) -> None:
        if not self.ready.called:
            self.ready.callback(xs)

    def _fail(self, message: str) -> None:
        if not self.ready.called:
            self.ready.errback(ProbeFailure(EXIT_FAILED, message))

    def _refused(self, reason: Failure) -> None:
        self._fail(_login_failure(reason, self.stream))

    def _lost(self, reason: Failure) -> None:
        if reason.check(SSL.Error):
            self._fail(_login_failure(reason, self.stream))
        else:
            self._fail(f"the server closed the connection: {reason.getErrorMessage()}")
        self.closed.callback(None)

    def _unreachable(self, reason: Failure) -> None:
        self._fail(f"cannot connect to {self.address}: {reason.getErrorMessage()}")

    def _abandon(self, _: defer.Deferred[xmlstream.XmlStream]) -> None:
        self._connecting.cancel()
        if self.stream is not None:
            _transport(self.stream).abortConnection()

    async def close(self, reactor: Any) -> None:
        """Send ``</stream:stream>`` and wait, at most ``CLOSE_TIMEOUT``, for the connection to end."""
        if self.stream is None or self.closed.called:
            return
        self.stream.sendFooter()
        transport = _transport(self.stream)
        transport.loseConnection()
        deadline = reactor.callLater(CLOSE_TIMEOUT, transport.abortConnection)
        await self.closed
        if deadline.active():
            deadline.cancel()


def _transport(xs: xmlstream.XmlStream) -> ITCPTransport:
    """The stream's connection: TCP, or TLS over it, which passes on to it what it does not define itself."""
    return cast(ITCPTransport, xs.transport)


async def ask(
    xs: xmlstream.XmlStream, target: JID, request: tuple[str, list[domish.Element | str]], timeout: float
) -> domish.Element:
    """Send the query and return the result; an error reply (printed) or no reply is a ``ProbeFailure``."""
    stanza_type, children = request
    iq = xmlstream.IQ(xs, stanza_type)
    iq["id"] = secrets.token_hex(12)  # unguessable, so no other sender can pass off an answer
    iq.timeout = timeout  # type: ignore[assignment]  # Twisted's IQ declares timeout = None, for no timeout
    for child in children:
        iq.addChild(child)
    try:
        reply: domish.Element = await iq.send(target.full())
    except error.StanzaError as reason:
        stanza = getattr(reason, "stanza", None)  # the error reply, which Twisted sets on the exception
        if stanza is not None:
            print(pretty(stanza))
        raise ProbeFailure(EXIT_ERROR_REPLY, f"error reply from {target.full()}: {_describe(reason)}") from None
    except xmlstream.TimeoutError:
        raise ProbeFailure(EXIT_NO_REPLY, f"no reply from {target.full()} within {timeout:g} s") from None
    except ConnectionLost:
        raise ProbeFailure(EXIT_NO_REPLY, f"the connection closed before {target.full()} replied") from None
    return reply


def pretty(element: domish.Element) -> str:
    """The stanza as indented XML, one element per line."""
    document = minidom.parseString(element.toXml().encode()).documentElement
    assert document is not None  # a parsed element is a document's element
    return document.toprettyxml(indent="  ").rstrip()


async def run(reactor: Any, argv: list[str]) -> NoReturn:
    """The whole probe; it ends by raising ``SystemExit`` with the exit status, as ``react`` expects."""
    interrupted: list[bool] = []  # a signal stops the reactor, which closes the connection under us
    reactor.addSystemEventTrigger("before", "shutdown", interrupted.append, True)
    try:
        arguments = parse_arguments(argv)
        request = build_request(arguments)
        session = ClientSession(reactor, arguments, read_password(arguments.password_file))
        try:
            stream = await session.ready.addTimeout(arguments.timeout, reactor)
        except defer.TimeoutError:
            raise ProbeFailure(EXIT_NO_REPLY, f"no login at {session.address} within {arguments.timeout:g} s") from None
        try:
            reply = await ask(stream, arguments.target, request, arguments.timeout)
        finally:
            await session.close(reactor)
        print(pretty(reply))
    except ProbeFailure as failure:
        status, message = (EXIT_NO_REPLY, "interrupted") if interrupted else (failure.status, str(failure))
        sys.stdout.flush()
        print(message, file=sys.stderr)
        raise SystemExit(status) from None
    except Exception as bug:  # noqa: BLE001 - one line even for a bug, and not 1, which means an error reply
        print(f"internal error: {type(bug).__name__}: {bug}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED) from None
    raise SystemExit(EXIT_RESULT)


def main() -> NoReturn:
    """The console script's entry point: the command line from ``sys.argv``, the exit status as above."""
    react(run, (sys.argv[1:],))


if __name__ == "__main__":
    main()
