"""What a responder's call came to: a value now, or later; and which error answers a failure.

The router and the discovery provider both call code they do not own (a
responder, a disco provider) and both turn what it did into one reply. The
rules live here, once:

- ``settle(result, ...)`` takes what the call returned. A plain value is
  returned as it is (the common case costs two type checks). A Deferred, a
  coroutine, an asyncio Future or any object with ``__await__`` becomes a
  Deferred of the router's own, bounded by a timeout.
- A Deferred the responder returned is the responder's: it may be shared by
  several requests (a cache of lookups in flight), so it is only observed.
  Every callback registered on it sees the same result the router saw, and it
  is never cancelled; at the timeout the router stops waiting for it. A
  failure is passed on to everything registered before it fired, and then
  consumed, so that it is not reported again as an unhandled error when the
  Deferred is collected.
- A coroutine or awaitable is run by the router itself, so at the timeout it
  is cancelled.
- ``stanza_error(failure, ...)`` maps an exception to the error that answers
  it (DESIGN.md, "Public API"), logging what the operator must see.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.defer import TimeoutError as DeadlineExceeded
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from component.errors import IqError, IqTimeout, StanzaError

log = Logger()

INTERNAL_SERVER_ERROR = StanzaError("internal-server-error")
REMOTE_SERVER_TIMEOUT = StanzaError("remote-server-timeout")
UNDEFINED_CONDITION = StanzaError("undefined-condition")


def settle(result: Any, clock: IReactorTime, timeout: float) -> Any:
    """``result`` itself when it is a plain value, else a Deferred of its value that fails after ``timeout``."""
    if result is None:  # the commonest answer: an empty result
        return result
    if isinstance(result, Deferred):
        own = observe(result)
    elif inspect.iscoroutine(result):
        own = Deferred.fromCoroutine(result)
    elif asyncio.isfuture(result):
        own = Deferred.fromFuture(result)
    elif hasattr(type(result), "__await__"):
        own = Deferred.fromCoroutine(_wait_for(result))
    else:
        return result
    return own.addTimeout(timeout, clock)


def observe(shared: Deferred[Any]) -> Deferred[Any]:
    """A new Deferred with ``shared``'s result, leaving ``shared``'s result as it is for its other users."""
    own: Deferred[Any] = Deferred()

    def pass_on(result: Any) -> Any:
        if isinstance(result, Failure):
            own.errback(result)
            shared.addErrback(_consumed)  # runs after every callback registered so far
        else:
            own.callback(result)
        return result

    shared.addBoth(pass_on)
    return own


def _consumed(failure: Failure) -> None:
    return None


async def _wait_for(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def stanza_error(failure: Failure, describe: Callable[[], dict[str, Any]], timeout: float) -> StanzaError:
    """The error that answers ``failure``; logs it when the operator should know.

    ``describe()`` gives the log fields that name the call: ``what`` (the
    responder or provider) and ``request`` (the type, namespace, sender and id).
    A ``StanzaError`` is the answer the code chose; an ``IqTimeout`` or ``IqError``
    from an outbound query becomes ``remote-server-timeout`` or
    ``undefined-condition`` (a third party's error text is never passed on);
    anything else is ``internal-server-error``, logged with its traceback.
    """
    error = failure.value
    if isinstance(error, StanzaError):
        return error
    if isinstance(error, IqTimeout):
        return REMOTE_SERVER_TIMEOUT
    if isinstance(error, IqError):
        return UNDEFINED_CONDITION
    if isinstance(error, DeadlineExceeded):
        log.warn("{what} did not answer {request} within {timeout:g} s", timeout=timeout, **describe())
    elif isinstance(error, CancelledError):
        log.warn("{what} was cancelled while answering {request}", **describe())
    else:
        log.failure("{what} failed on {request}", failure, **describe())
    return INTERNAL_SERVER_ERROR
