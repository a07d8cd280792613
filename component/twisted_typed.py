"""Twisted's unannotated classes that iqresponder subclasses, as the type checker is to see them.

``twisted.application.service``, ``twisted.words`` and ``twisted.python.usage`` ship without
annotations. pyproject.toml's ``untyped_calls_exclude`` lets calls into those modules pass, but
mypy names a call through a subclass after the subclass (``super().startService()``,
``stream.addObserver(...)`` on a ``ComponentStream``), and such a call would be an error. The
classes here declare, for the checker only, the signatures of the methods iqresponder calls on
them. At run time each name is Twisted's own class: nothing is added to any call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from twisted.application import service
    from twisted.application.service import IServiceCollection
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import ITCPTransport, ITransport
    from twisted.python import usage
    from twisted.python.failure import Failure
    from twisted.words.protocols.jabber import error, xmlstream

    class Service(service.Service):
        running: int

        def setServiceParent(self, parent: IServiceCollection) -> None: ...

        def startService(self) -> None: ...

        def stopService(self) -> Deferred[Any] | None: ...

    class MultiService(service.MultiService):
        def __init__(self) -> None: ...

        def setServiceParent(self, parent: IServiceCollection) -> None: ...

        def startService(self) -> None: ...

        def stopService(self) -> Deferred[Any]: ...

    class XmlStream(xmlstream.XmlStream):
        transport: ITCPTransport  # TCP, or TLS over it, which passes on to it what it does not define itself

        def __init__(self, authenticator: xmlstream.Authenticator) -> None: ...

        def makeConnection(self, transport: ITransport) -> None: ...

        def connectionLost(self, reason: Failure = ...) -> None: ...

        def addObserver(self, event: str, observerfn: Callable[..., object], priority: int = 0) -> None: ...

        def sendFooter(self) -> None: ...

        def sendStreamError(self, streamError: error.StreamError) -> None: ...

    class Options(usage.Options):
        def __init__(self) -> None: ...

else:
    from twisted.application.service import MultiService, Service
    from twisted.python.usage import Options
    from twisted.words.protocols.jabber.xmlstream import XmlStream

__all__ = ["MultiService", "Options", "Service", "XmlStream"]
