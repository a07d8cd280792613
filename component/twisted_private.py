"""The private names of Twisted that iqresponder relies on, each used here and nowhere else.

Twisted offers no public way to do either of these. Each is checked by
``tests/unit/test_twisted_private.py``, which fails loudly when a Twisted
release changes the name; ``pyproject.toml`` states the Twisted versions the
suite has run on.
"""

from __future__ import annotations

import signal
from typing import Any, cast

from twisted.application.internet import ClientService
from twisted.logger import ILogObserver, Logger

EXIT_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class QuietClientService(ClientService):
    """``ClientService`` without its own "Scheduling retry" log line.

    Its attempt count resets on every TCP connect, so against a server that
    accepts the connection and refuses the handshake it would say "retry 1"
    forever; ``component.connection`` logs each retry with the count that
    matters instead. ``ClientService._log`` is the logger it writes that line to.
    """

    _log = Logger(observer=cast(ILogObserver, lambda event: None))  # a plain callable serves as an observer


def forget_exit_signal(reactor: Any) -> None:
    """Let twistd and twist exit 0 after a SIGTERM or SIGINT that was handled in full.

    After the reactor stops they raise the signal that stopped it again, read
    from ``reactor._exitSignal``, so a clean, complete shutdown would look like
    death by signal to supervisors and scripts.
    """
    if getattr(reactor, "_exitSignal", None) in EXIT_SIGNALS:
        reactor._exitSignal = None
