"""Fixtures shared by the unit and integration tests."""

import pytest
from twisted.logger import formatEvent, globalLogPublisher


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
