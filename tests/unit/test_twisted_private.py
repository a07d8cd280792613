"""The private names of Twisted that component/twisted_private.py relies on are still there and still work.

When one of these fails after a Twisted upgrade, that module needs a look: the
name it relies on has changed.
"""

import signal

from twisted.application import app
from twisted.application.internet import ClientService
from twisted.internet import defer, protocol, task
from twisted.internet.interfaces import _ISupportsExitSignalCapturing
from twisted.internet.selectreactor import SelectReactor

from component.twisted_private import QuietClientService, forget_exit_signal


class RefusingEndpoint:
    def connect(self, factory):
        return defer.fail(ConnectionRefusedError("refused in test"))


def retry_lines(service_class, caplog_twisted) -> list[str]:
    clock = task.Clock()
    service = service_class(RefusingEndpoint(), protocol.Factory(), retryPolicy=lambda attempt: 1.0, clock=clock)
    service.startService()
    clock.advance(1.0)
    service.stopService()
    return [caplog_twisted.format(event) for event in caplog_twisted if "retry" in caplog_twisted.format(event)]


def test_client_service_still_logs_its_retries_through_its_private_logger(caplog_twisted):
    assert "_log" in vars(ClientService)
    assert retry_lines(ClientService, caplog_twisted), "ClientService no longer logs retries where it did"


def test_the_quiet_client_service_logs_no_retry_line_of_its_own(caplog_twisted):
    assert retry_lines(QuietClientService, caplog_twisted) == []


def test_reactors_still_capture_the_exit_signal_where_twistd_reads_it():
    assert "_exitSignal" in _ISupportsExitSignalCapturing.names()
    assert _ISupportsExitSignalCapturing.implementedBy(SelectReactor)
    # twistd's runner reads it after the reactor stops, to raise the signal again.
    assert "_exitSignal" in app.ApplicationRunner.startReactor.__code__.co_names


def test_forgetting_the_exit_signal_clears_sigterm_and_sigint_only():
    reactor = SelectReactor()
    for number, left in ((signal.SIGTERM, None), (signal.SIGINT, None), (signal.SIGHUP, signal.SIGHUP)):
        reactor._exitSignal = number
        forget_exit_signal(reactor)
        assert reactor._exitSignal == left
