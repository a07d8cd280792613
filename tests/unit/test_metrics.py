"""The metrics each part feeds: outbound query outcomes, connection state and reconnects."""

from prometheus_client import generate_latest
from twisted.internet.defer import CancelledError

from component.testing import InMemoryComponent, make_settings

CONNECTED = 'iqresponder_connected{jid="iq.localhost"}'


def sample(harness, line_start: str) -> float:
    text = generate_latest(harness.component.metrics.registry).decode()
    lines = [line for line in text.splitlines() if line.startswith(line_start)]
    assert lines, f"no sample {line_start} in:\n{text}"  # a missing sample is not a zero
    return float(lines[0].split()[-1])


def test_outbound_query_outcomes_are_counted_and_nothing_stays_pending():
    harness = InMemoryComponent(settings=make_settings(metrics_endpoint="tcp:port=0:interface=127.0.0.1"))
    component = harness.component.facade
    answered = component.query("peer.localhost", "urn:x")
    [iq] = harness.sent()
    harness.receive(f"<iq type='result' id='{iq['id']}' from='peer.localhost' to='iq.localhost'/>")
    failed = component.query("peer.localhost", "urn:x")
    [iq] = harness.sent()
    harness.receive(
        f"<iq type='error' id='{iq['id']}' from='peer.localhost' to='iq.localhost'><error type='cancel'/></iq>"
    )
    component.query("peer.localhost", "urn:x", timeout=1).addErrback(lambda f: None)
    harness.clock.advance(1.1)
    cancelled = component.query("peer.localhost", "urn:x")
    cancelled.cancel()
    cancelled.addErrback(lambda f: f.trap(CancelledError))  # else an "Unhandled error in Deferred" is logged
    component.query("peer.localhost", "urn:x").addErrback(lambda f: None)
    failed.addErrback(lambda f: None)
    assert answered.called
    assert sample(harness, "iqresponder_outbound_queries_pending") == 1
    harness.disconnect()
    for outcome in ("answered", "failed", "timed_out", "cancelled", "not_connected"):
        assert sample(harness, f'iqresponder_outbound_queries_total{{outcome="{outcome}"}}') == 1, outcome
    assert sample(harness, "iqresponder_outbound_queries_pending") == 0
    assert sample(harness, CONNECTED) == 0


def test_connection_state_follows_the_stream():
    harness = InMemoryComponent(settings=make_settings(metrics_endpoint="tcp:port=0:interface=127.0.0.1"))
    assert sample(harness, CONNECTED) == 1
    harness.disconnect()
    assert sample(harness, CONNECTED) == 0
    harness.connect()
    assert sample(harness, CONNECTED) == 1


def test_metrics_are_off_by_default():
    harness = InMemoryComponent()
    assert not hasattr(harness.component.metrics, "registry")
