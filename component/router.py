"""Inbound Iq stanzas: validate, look up, call the responder, reply exactly once; and the server's messages.

This is the only place where a responder's return value or exception becomes
a reply, following RFC 6120 section 8 (see DESIGN.md's table). Result and
error stanzas go to the tracker and are never answered.

Each stanza comes with the link (component/link.py) it arrived on, and its
reply is written with that link's ``send``, under the name the request went to.
Replies are written as strings: the reply's own tag is formatted directly and
only the payload is serialized (or taken pre-serialized, as disco's cached
answers are), which costs a fraction of building and serializing an Element.

Messages carry nothing for responders; those from the server that advertise
delegations and privileges go to component/delegation.py and
component/privilege.py, and the rest are dropped.
"""

from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.xish import domish

from component.addresses import InvalidFormat, bare_jid, parse_jid
from component.config import Limits
from component.delegation import DELEGATION_VERSIONS
from component.errors import StanzaError
from component.interfaces import IComponent
from component.metrics import NoMetrics
from component.outcome import INTERNAL_SERVER_ERROR, settle, stanza_error
from component.payload import Payload, PayloadError
from component.policy import AccessControl, SenderRateLimit
from component.privilege import PRIVILEGE_VERSIONS
from component.registry import Registry, Responder
from component.request import Request
from component.serializer import escape_attribute, to_xml
from component.stream import NS_COMPONENT_ACCEPT

if TYPE_CHECKING:
    from component.delegation import Delegations
    from component.metrics import Metrics
    from component.privilege import PrivilegeGrants
    from component.stream import ReplyLink
    from component.tracker import Tracker

_DELEGATIONS = frozenset(DELEGATION_VERSIONS)  # a payload in one of these is a server's wrapper (XEP-0355)

# An error reply carries the request's payload back (RFC 6120 8.3.1) only when it is this small.
ECHO_PAYLOAD_LIMIT = 512

BAD_TYPE = StanzaError("bad-request", text="An Iq type must be get, set, result or error")
NOT_ONE_PAYLOAD = StanzaError("bad-request", text="An Iq get or set carries exactly one payload")
SERVICE_UNAVAILABLE = StanzaError("service-unavailable")
FEATURE_NOT_IMPLEMENTED = StanzaError("feature-not-implemented")
JID_MALFORMED = StanzaError("jid-malformed")
FORBIDDEN = StanzaError("forbidden")
TOO_FAST = StanzaError("resource-constraint", text="Too many requests from this sender; slow down")
TOO_BUSY = StanzaError("resource-constraint", text="Too many requests in progress; try again later")
SHUTTING_DOWN = StanzaError("resource-constraint", text="Shutting down; try again later")


def serialized(payload: domish.Element | Payload) -> domish.SerializedXML:
    """Serialize a payload (an Element or a payload instance) once, for a responder whose answer does not change.

    Returning the result skips serialization on every request; the router
    writes it into the reply as it is.
    """
    if isinstance(payload, Payload):
        return domish.SerializedXML(payload.to_xml(NS_COMPONENT_ACCEPT))
    return domish.SerializedXML(to_xml(payload, within=NS_COMPONENT_ACCEPT))


class Router:
    """Turns each inbound Iq into exactly one reply, or hands it to the tracker."""

    log = Logger()

    def __init__(
        self,
        registry: Registry,
        tracker: Tracker,
        component: IComponent,
        clock: IReactorTime,
        limits: Limits | None = None,
        access: AccessControl | None = None,
        metrics: Metrics | NoMetrics | None = None,
        log_requests: bool = False,
        delegations: Delegations | None = None,
        privileges: PrivilegeGrants | None = None,
    ) -> None:
        self.registry = registry
        self.delegations = delegations
        """Unwraps what servers forward (component/delegation.py), and hears their advertisements; or None."""
        self.trusted_servers: frozenset[str] = delegations.servers if delegations is not None else frozenset()
        """The servers that forward their users' Iqs: not rate-limited as one sender."""
        self.privileges = privileges
        """Hears the servers' privilege advertisements (component/privilege.py ``PrivilegeGrants``); or None."""
        self.tracker = tracker
        self.component = component
        self.clock = clock
        self.limits = limits = limits or Limits()
        self.access = access or AccessControl(())
        self.rate_limit = SenderRateLimit(limits.sender_rate, limits.sender_burst, clock)
        self.metrics = metrics or NoMetrics()
        self.log_requests = log_requests
        self.timing = log_requests or not isinstance(self.metrics, NoMetrics)
        self.in_flight = 0
        self.requests: dict[str, int] = {}
        """Requests handed to a responder since start, by namespace."""
        self.draining = False
        self._idle: list[Deferred[None]] = []

    def receive(self, iq: domish.Element, link: ReplyLink) -> None:
        """Handle one ``<iq/>`` that came on ``link`` (its reply goes out there). Never raises."""
        attributes = iq.attributes
        type = attributes.get("type")
        if type == "result" or type == "error":
            self.tracker.receive(iq)
            return
        if "id" not in attributes:
            self.log.warn(
                "Dropped an Iq {type} from {sender} without an id: nothing to correlate a reply with",
                type=type,
                sender=attributes.get("from"),
            )
            return
        if type != "get" and type != "set":
            self.reply_error(link, iq, BAD_TYPE)
            return
        sender = attributes.get("from")
        try:
            bare_sender = bare_jid(sender) if sender is not None else None
        except InvalidFormat:
            self.log.warn(
                "Dropped an Iq from a malformed JID {sender!r}: a reply could not be addressed",
                sender=sender,
            )
            return
        try:
            recipient = parse_jid(attributes["to"]) if "to" in attributes else None
        except InvalidFormat:
            self.reply_error(link, iq, JID_MALFORMED, from_self=True)
            return
        # The server forwards every user's delegated Iqs (XEP-0355): it is not limited as one sender, and
        # what it forwards is answered inside its wrapper, shutting down included (component/delegation.py).
        server = bare_sender is not None and bare_sender in self.trusted_servers
        if self.draining and not server:
            self.reply_error(link, iq, SHUTTING_DOWN)
            return
        if bare_sender is not None and not server and not self.rate_limit.allow(bare_sender):
            self.reply_error(link, iq, TOO_FAST)
            return

        payload = None
        for child in iq.children:
            if child.__class__ is not str:
                if payload is not None:
                    self.reply_error(link, iq, NOT_ONE_PAYLOAD)
                    return
                payload = child
        if payload is None:
            self.reply_error(link, iq, NOT_ONE_PAYLOAD)
            return
        if payload.uri in _DELEGATIONS and self.delegations is not None:
            # A user's Iq the server forwarded: it comes back here unwrapped, limited as that user's.
            self.delegations.unwrap(iq, payload, link, self)
            return
        if server and self.draining:
            self.reply_error(link, iq, SHUTTING_DOWN)
            return

        if self.access and not self.access.allows(type, payload.uri, parse_jid(sender) if sender else None):
            self.reply_error(link, iq, FORBIDDEN)
            return
        responder = self.registry.lookup(type, payload.uri, payload.name)
        if responder is None:
            error = FEATURE_NOT_IMPLEMENTED if self.registry.serves(payload.uri) else SERVICE_UNAVAILABLE
            self.reply_error(link, iq, error, payload)
            return
        if self.in_flight >= self.limits.max_in_flight:
            self.reply_error(link, iq, TOO_BUSY)
            return
        counts = self.requests  # per namespace, for the admins' status command: one dict update
        counts[responder.namespace] = counts.get(responder.namespace, 0) + 1
        component = responder.component or self.component  # the responder's module's face, with its store
        self.call(responder, Request(iq, payload, sender, recipient, component, link))

    def receive_message(self, message: domish.Element, link: ReplyLink) -> None:
        """Read a server's advertisement of delegations or privileges; log a trusted server's bounce. Never raises.

        Any other message is dropped: the component answers Iqs only.
        """
        sender = message.attributes.get("from")
        if message.attributes.get("type") == "error":
            if self.privileges is not None and sender in self.privileges.servers:
                error = next((child for child in message.elements() if child.name == "error"), None)
                condition = next((child.name for child in error.elements()), None) if error is not None else None
                self.log.warn(
                    "{server} refused a message the component sent as it: {condition}",
                    server=sender,
                    condition=condition or "no condition given",
                )
            return
        for child in message.elements():
            if child.name == "privilege" and child.uri in PRIVILEGE_VERSIONS and self.privileges is not None:
                self.privileges.advertised(sender, message.attributes.get("to", link.jid), child)
            elif child.name == "delegation" and child.uri in _DELEGATIONS and self.delegations is not None:
                self.delegations.advertised(sender, child)

    def refuse(self, stanza: domish.Element, condition: str, text: str, link: ReplyLink) -> None:
        """Answer a stanza that came on ``link`` and broke a limit (its content already discarded), or drop it.

        Never raises.

        A get or set with an id and a sender gets the error; anything else
        cannot be answered usefully, so it is dropped with one log line.
        """
        attributes = stanza.attributes
        answerable = (
            stanza.name == "iq"
            and attributes.get("type") in ("get", "set")
            and "id" in attributes
            and "from" in attributes
        )
        if answerable:
            self.reply_error(link, stanza, StanzaError(condition, text=text.capitalize()))
        else:
            self.log.warn(
                "Dropped a <{name}/> {type} from {sender} id {id}: {text}",
                name=stanza.name,
                type=attributes.get("type"),
                sender=attributes.get("from"),
                id=attributes.get("id"),
                text=text,
            )

    def call(self, responder: Responder, request: Request) -> None:
        """Run ``responder`` and send its one reply, now or when its result arrives."""
        if self.timing:
            request.received = perf_counter()
        if responder.payload is not None:
            try:
                request.payload = responder.payload.parse(request.element)
            except PayloadError as e:
                self.reply_error(request.link, request.stanza, StanzaError("bad-request", text=str(e)), request=request)
                return
        try:
            result = settle(responder.function(request), self.clock, self.limits.handler_timeout)
        except Exception:  # noqa: BLE001 - a responder's exception becomes its error reply
            self.reply_failure(Failure(), responder, request)
            return
        if isinstance(result, Deferred):
            self.in_flight += 1
            result.addCallbacks(
                self.reply_result,
                self.reply_failure,
                callbackArgs=(responder, request),
                errbackArgs=(responder, request),
            )
            result.addErrback(self._reply_failed, responder, request)
            result.addBoth(self._finished)
        else:
            self.reply_result(result, responder, request)

    def _reply_failed(self, failure: Failure, responder: Responder, request: Request) -> None:
        self.log.failure(
            "Failed to reply to {request} after {responder} answered",
            failure,
            request=request,
            responder=responder.name,
        )

    def _finished(self, _: Any) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            idle, self._idle = self._idle, []
            for waiting in idle:
                waiting.callback(None)

    def when_idle(self) -> Deferred[None]:
        """A Deferred that fires once no responder is in flight."""
        if self.in_flight == 0:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._idle.append(waiting)
        return waiting

    def reply_result(self, result: Any, responder: Responder, request: Request) -> None:
        if self.timing and (result is None or isinstance(result, (domish.SerializedXML, domish.Element, Payload))):
            self._record(request.stanza, request.namespace, "result", perf_counter() - request.received)
        # The reply comes from the address the request went to, on the link it came in on.
        if result is None:
            request.link.send(_start_tag(request.stanza, "result", close=True))
        elif isinstance(result, domish.SerializedXML):  # a payload serialized once, such as disco's answers
            request.link.send(_start_tag(request.stanza, "result") + result + "</iq>")
        elif isinstance(result, (Payload, domish.Element)):
            try:
                if isinstance(result, Payload):
                    payload = result.to_xml(NS_COMPONENT_ACCEPT)
                else:
                    payload = to_xml(result, within=NS_COMPONENT_ACCEPT)
            except ValueError:  # a character XML cannot carry: the answer cannot be written
                self.log.failure(
                    "Responder {responder} returned a payload that cannot be written", responder=responder.name
                )
                self.reply_error(request.link, request.stanza, INTERNAL_SERVER_ERROR, request.element, request=request)
                return
            request.link.send(_start_tag(request.stanza, "result") + payload + "</iq>")
        else:
            self.log.error(
                "Responder {responder} returned {kind}, not a payload, an Element or None, for {request}",
                responder=responder.name,
                kind=type(result).__name__,
                request=request,
            )
            self.reply_error(request.link, request.stanza, INTERNAL_SERVER_ERROR, request.element, request=request)

    def reply_failure(self, failure: Failure, responder: Responder, request: Request) -> None:
        """Answer a responder's exception with its one error reply (component/outcome.py decides which)."""
        error = stanza_error(
            failure,
            lambda: {"what": f"Responder {responder.name}", "request": request},
            self.limits.handler_timeout,
        )
        self.reply_error(request.link, request.stanza, error, request.element, request=request)

    def _record(self, iq: domish.Element, namespace: str | None, outcome: str, seconds: float | None) -> None:
        """Count the reply, and log one debug event for it when ``[logging] requests`` is on."""
        type = iq.getAttribute("type")
        self.metrics.request(namespace, type, outcome, seconds)
        if self.log_requests:
            self.log.debug(
                "{type} {namespace} from {sender} id {id}: {outcome}{took}",
                type=type,
                namespace=namespace,
                sender=iq.getAttribute("from"),
                id=iq.getAttribute("id"),
                outcome=outcome,
                took=f" in {seconds * 1000:.2f} ms" if seconds is not None else "",
            )

    def reply_error(
        self,
        link: ReplyLink,
        iq: domish.Element,
        error: StanzaError,
        payload: domish.Element | None = None,
        from_self: bool = False,
        request: Request | None = None,
    ) -> None:
        if self.timing:
            seconds = perf_counter() - request.received if request is not None else None
            self._record(iq, payload.uri if payload is not None else None, error.condition, seconds)
        echoed = ""
        if payload is not None:
            echoed = to_xml(payload, within=NS_COMPONENT_ACCEPT)
            if len(echoed) > ECHO_PAYLOAD_LIMIT:
                # Too large to send back whole: the element with its attributes alone still says which request
                # this answers (XEP-0050 clients match a command's error by the sessionid on its <command/>).
                start = domish.Element((payload.uri, payload.name), attribs=dict(payload.attributes))
                echoed = to_xml(start, within=NS_COMPONENT_ACCEPT)
                if len(echoed) > ECHO_PAYLOAD_LIMIT:
                    echoed = ""
        # A request whose own address is unusable is answered from the name of the link it came on.
        sender = link.jid if from_self else None
        link.send(_start_tag(iq, "error", sender=sender) + echoed + error.xml + "</iq>")


def _start_tag(iq: domish.Element, type: str, close: bool = False, sender: str | None = None) -> str:
    """The reply's start tag: the request's id, with ``to`` and ``from`` swapped."""
    attributes = iq.attributes
    tag = f"<iq type='{type}' id='{escape_attribute(attributes.get('id', ''))}'"
    if "from" in attributes:
        tag += f" to='{escape_attribute(attributes['from'])}'"
    if sender is not None:
        tag += f" from='{escape_attribute(sender)}'"
    elif "to" in attributes:
        tag += f" from='{escape_attribute(attributes['to'])}'"
    return tag + ("/>" if close else ">")
