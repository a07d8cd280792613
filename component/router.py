"""Inbound Iq stanzas: validate, look up, call the responder, reply exactly once.

This is the only place where a responder's return value or exception becomes
a reply, following RFC 6120 section 8 (see DESIGN.md's table). Result and
error stanzas go to the tracker and are never answered.
"""

from __future__ import annotations

import inspect
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.xish import domish

from component.errors import IqError, IqTimeout, StanzaError
from component.registry import Registry, Responder
from component.request import InvalidFormat, Request, parse_jid

# An error reply carries the request's payload back (RFC 6120 8.3.1) only when it is this small.
ECHO_PAYLOAD_LIMIT = 512


class Router:
    """Turns each inbound Iq into exactly one reply, or hands it to the tracker."""

    log = Logger()

    def __init__(self, registry: Registry, tracker: Any, component: Any) -> None:
        self.registry = registry
        self.tracker = tracker
        self.component = component

    def receive(self, iq: domish.Element) -> None:
        """Handle one ``<iq/>`` from the stream. Never raises."""
        type = iq.getAttribute("type")
        if type == "result" or type == "error":
            self.tracker.receive(iq)
            return
        if iq.getAttribute("id") is None:
            self.log.warn(
                "Dropped an Iq {type} from {sender} without an id: nothing to correlate a reply with",
                type=type,
                sender=iq.getAttribute("from"),
            )
            return
        if type != "get" and type != "set":
            self.reply_error(iq, StanzaError("bad-request", text="An Iq type must be get, set, result or error"))
            return

        payload = None
        for count, child in enumerate(iq.elements(), 1):
            if count > 1:
                self.reply_error(iq, StanzaError("bad-request", text="An Iq get or set carries exactly one payload"))
                return
            payload = child
        if payload is None:
            self.reply_error(iq, StanzaError("bad-request", text="An Iq get or set carries exactly one payload"))
            return

        responder = self.registry.lookup(type, payload.uri, payload.name)
        if responder is None:
            condition = "feature-not-implemented" if self.registry.serves(payload.uri) else "service-unavailable"
            self.reply_error(iq, StanzaError(condition), payload)
            return

        try:
            sender = parse_jid(iq["from"]) if iq.hasAttribute("from") else None
            recipient = parse_jid(iq["to"]) if iq.hasAttribute("to") else None
        except InvalidFormat:
            self.reply_error(iq, StanzaError("jid-malformed"), payload)
            return
        self.call(responder, Request(iq, payload, sender, recipient, self.component))

    def call(self, responder: Responder, request: Request) -> None:
        """Run ``responder`` and send its one reply, now or when its result arrives."""
        try:
            result = responder.function(request)
        except Exception:  # noqa: BLE001 - a responder's exception becomes its error reply
            self.reply_failure(Failure(), responder, request)
            return
        if inspect.iscoroutine(result):
            result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            result.addCallbacks(
                self.reply_result,
                self.reply_failure,
                callbackArgs=(responder, request),
                errbackArgs=(responder, request),
            )
        else:
            self.reply_result(result, responder, request)

    def reply_result(self, result: Any, responder: Responder, request: Request) -> None:
        if isinstance(result, domish.SerializedXML):  # a cached payload, serialized once
            reply = _reply(request.stanza, "result")
            reply.addRawXml(result)
            self.component.send(reply)
            return
        if result is not None and not isinstance(result, domish.Element):
            self.log.error(
                "Responder {responder} returned {kind}, not an Element or None, "
                "for {type} {namespace} from {sender} id {id}",
                responder=responder.name,
                kind=type(result).__name__,
                type=request.type,
                namespace=request.namespace,
                sender=request.stanza.getAttribute("from"),
                id=request.id,
            )
            self.reply_error(request.stanza, StanzaError("internal-server-error"), request.payload)
            return
        reply = _reply(request.stanza, "result")
        if result is not None:
            reply.addChild(result)
        self.component.send(reply)

    def reply_failure(self, failure: Failure, responder: Responder, request: Request) -> None:
        """Map a responder's exception to its one error reply (DESIGN.md, public API)."""
        error = failure.value
        if isinstance(error, StanzaError):
            reply = error
        elif isinstance(error, IqTimeout):
            reply = StanzaError("remote-server-timeout")
        elif isinstance(error, IqError):
            reply = StanzaError("undefined-condition")
        else:
            if not isinstance(error, CancelledError):
                self.log.failure(
                    "Responder {responder} failed on {type} {namespace} from {sender} id {id}",
                    failure,
                    responder=responder.name,
                    type=request.type,
                    namespace=request.namespace,
                    sender=request.stanza.getAttribute("from"),
                    id=request.id,
                )
            reply = StanzaError("internal-server-error")
        self.reply_error(request.stanza, reply, request.payload)

    def reply_error(self, iq: domish.Element, error: StanzaError, payload: domish.Element | None = None) -> None:
        reply = _reply(iq, "error")
        if payload is not None and len(payload.toXml()) <= ECHO_PAYLOAD_LIMIT:
            reply.addChild(payload)
        reply.addChild(error.to_element())
        self.component.send(reply)


def _reply(iq: domish.Element, type: str) -> domish.Element:
    """A reply skeleton: the request's id, with ``to`` and ``from`` swapped."""
    reply = domish.Element((None, "iq"))
    reply["type"] = type
    reply["id"] = iq.getAttribute("id", "")
    if iq.hasAttribute("from"):
        reply["to"] = iq["from"]
    if iq.hasAttribute("to"):
        reply["from"] = iq["to"]
    return reply
