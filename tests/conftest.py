"""Fixtures shared by the unit and integration tests."""

import pytest
from hypothesis import settings
from twisted.logger import formatEvent, globalLogPublisher

# Fuzzing budgets: bounded in the suite; `make soak` selects the long one with --hypothesis-profile=soak.
settings.register_profile("suite", max_examples=150)
settings.register_profile("soak", max_examples=20_000)
settings.load_profile("suite")


class LogEvents(list):
    """twisted.logger events captured during a test."""

    @staticmethod
    def format(event) -> str:
        return formatEvent(event)

    def text(self) -> str:
        return "\n".join(self.format(event) for event in self)


@pytest.fixture
def caplog_twisted():
    """Capture the twisted.logger events emitted during the test."""
    events = LogEvents()
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)
