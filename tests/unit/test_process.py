"""The process policy (component/process.py): SIGHUP reloads, and a drained shutdown exits 0."""

import gc
import os
import signal

import pytest
from twisted.internet import task
from twisted.internet.defer import Deferred

from component.process import ProcessPolicy
from component.registry import Registry
from component.service import Component
from component.testing import make_settings


class ThreadedClock(task.Clock):
    """A clock that, like a real reactor, takes calls from a signal handler with ``callFromThread``."""

    def __init__(self):
        super().__init__()
        self.from_thread = []
        self._exitSignal = None

    def callFromThread(self, function, *args):
        self.from_thread.append(function)


@pytest.fixture(autouse=True)
def unfreeze():
    """Starting the policy freezes the collector's view of the process; give the rest of the suite it back."""
    yield
    gc.unfreeze()


class _NoServer:
    def connect(self, factory):
        return Deferred()  # never connects: the policy is what is tested


def policy_over_a_component():
    clock = ThreadedClock()
    policy = ProcessPolicy(clock, give_up=lambda reactor, status: None)
    component = Component(make_settings(), Registry(), reactor=clock, endpoint=_NoServer())
    return clock, policy.serve(component), component


def test_sighup_asks_the_reactor_thread_for_a_reload_while_running_and_no_longer_once_stopped():
    clock, policy, component = policy_over_a_component()
    before = signal.getsignal(signal.SIGHUP)
    policy.startService()
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert clock.from_thread == [component.reload]
    finally:
        policy.stopService()
    assert signal.getsignal(signal.SIGHUP) == before


def test_a_shutdown_that_answered_everything_exits_0_not_by_the_signal_that_asked_for_it():
    clock, policy, _ = policy_over_a_component()
    policy.startService()
    clock._exitSignal = signal.SIGTERM
    stopped = policy.stopService()
    assert stopped.called and clock._exitSignal is None


def test_a_shutdown_that_left_requests_unanswered_keeps_the_signal():
    clock, policy, component = policy_over_a_component()
    policy.startService()
    component.router.in_flight = 1  # a responder that never finishes
    clock._exitSignal = signal.SIGTERM
    stopped = policy.stopService()
    clock.advance(component.settings.shutdown_grace * 2 + 1)
    assert stopped.called and clock._exitSignal == signal.SIGTERM
