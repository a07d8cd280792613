"""What the process does about its component: exit statuses, SIGHUP, and what lives as long as the process.

The component (component/service.py) only reports what happened to its
links; this module decides what that means for the process, which a test
or another embedding may decide differently:

- refused with ``not-authorized`` or ``host-unknown`` before ever being
  accepted: stop with exit status 78 (EX_CONFIG), since retrying cannot fix a
  wrong name or secret (once accepted, every failure is retried with backoff);
- replaced (the server closed an authenticated stream with ``conflict``,
  Prosody's ``kick_old``: a newer process took the name): stop with status 0,
  since reconnecting would only take the name back and start a tug of war;
- SIGHUP reloads the handler modules;
- a shutdown that answered every request it accepted exits 0, not as death
  by the signal that asked for it.
"""

from __future__ import annotations

import atexit
import gc
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from component.twisted_private import forget_exit_signal
from component.twisted_typed import MultiService

# Conditions that mean "this name or secret is wrong", not "try again later".
REFUSALS = frozenset({"not-authorized", "host-unknown"})
EX_CONFIG = 78  # sysexits.h: the configuration is wrong


def exit_after_shutdown(reactor: Any, status: int) -> None:
    """Stop the reactor, and make the process exit with ``status`` once twistd has cleaned up.

    twistd and twist always exit 0 after the reactor stops; an ``atexit`` hook
    runs after their clean-up (pidfile removal, log flush) and sets the status.
    """

    def exit_with_status() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    atexit.register(exit_with_status)
    if reactor.running:
        reactor.stop()


class ProcessPolicy(MultiService):
    """The service twistd runs: the component as its one child, and the process's answers to its events.

    Build it first and hand ``refused`` and ``replaced`` to the component
    (``Component(..., on_refused=policy.refused, on_replaced=policy.replaced)``),
    then ``policy.serve(component)``. ``give_up(reactor, status)`` ends the
    process (``exit_after_shutdown``; tests record the status instead).
    """

    log = Logger()

    def __init__(self, reactor: Any = None, give_up: Callable[[Any, int], None] = exit_after_shutdown) -> None:
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._give_up = give_up
        self.component: Any = None
        self._previous_sighup: Any = None

    def serve(self, component: Any) -> ProcessPolicy:
        """Run ``component`` (a ``component.service.Component``) under this policy; returns the policy."""
        self.component = component
        component.setServiceParent(self)
        return self

    def startService(self) -> None:
        if hasattr(self._reactor, "callFromThread"):  # a real reactor: SIGHUP reloads the handlers
            self._previous_sighup = signal.signal(signal.SIGHUP, self._on_sighup)
        # Everything loaded so far (Twisted, handler modules, configuration) lives as long as the
        # process: move it out of the collector's sight, so collections scan only per-request garbage.
        gc.freeze()
        super().startService()

    def stopService(self) -> Deferred[Any]:
        if self._previous_sighup is not None:  # a SIGHUP while draining must not start a reload
            signal.signal(signal.SIGHUP, self._previous_sighup)
            self._previous_sighup = None
        return super().stopService().addCallback(self._stopped)

    def _stopped(self, result: object) -> object:
        # twistd and twist end a SIGTERM'd process by raising the signal again after clean-up; a
        # shutdown that answered everything it accepted exits 0 instead, so that supervisors and
        # scripts can tell it from one that lost requests.
        if self.component is not None and self.component.answered_all:
            forget_exit_signal(self._reactor)
        return result

    def _on_sighup(self, signum: int, frame: object) -> None:
        self._reactor.callFromThread(self.component.reload)

    def replaced(self, link: Any, text: str | None) -> None:
        """Another connection took over ``link``'s name: leave it to that one, and exit 0."""
        self.log.warn(
            "Stopping: another connection took over {jid} at {server} ({text}); "
            "this process leaves the name to it instead of taking it back",
            jid=link.jid,
            server=self.component.settings.server,
            text=text or "conflict",
        )
        self._give_up(self._reactor, 0)

    def refused(self, link: Any, condition: str, text: str | None) -> None:
        """The server refused ``link``'s name: exit with EX_CONFIG if it never accepted it, else keep retrying."""
        if condition in REFUSALS and not link.connection.ever_authenticated:
            settings = self.component.settings
            self.log.critical(
                "Stopping: {server} refused {jid} ({condition}) before ever accepting it; "
                "check {key} and the secret in {path} against the server's configuration",
                server=settings.server,
                jid=link.jid,
                condition=condition,
                key=link.key,
                path=str(settings.path),
            )
            self._give_up(self._reactor, EX_CONFIG)
