"""Prometheus metrics over HTTP, scraped while traffic flows through each real server."""

import re
import urllib.request

import pytest

from private_prosody import free_port
from tests.integration.xmpp_client import error_of

pytestmark = pytest.mark.integration

ASKING = """
from component import responder


@responder("urn:example:metrics", "get")
async def ask_server(request):
    await request.component.disco_info("localhost")
"""

METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("metrics-handlers")
    (directory / "asking.py").write_text(ASKING)
    return directory


@pytest.fixture(scope="module")
def extra_config():
    return f'[metrics]\nendpoint = "tcp:port={METRICS_PORT}:interface=127.0.0.1"\n'


def scrape() -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+(?:\{[^}]*\})?) (\S+)", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def value(samples, name, **labels) -> float:
    if labels:
        name += "{" + ",".join(f'{key}="{val}"' for key, val in labels.items()) + "}"
    return samples.get(name, 0.0)


def test_numbers_move_as_traffic_flows(client):
    before = scrape()
    assert value(before, 'iqresponder_connected{jid="iq.localhost"}') == 1.0
    for _ in range(5):
        assert client.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"
    for _ in range(3):
        assert error_of(client.iq("<query xmlns='urn:example:nobody'/>")) == ("cancel", "service-unavailable")
    assert client.iq("<query xmlns='urn:example:metrics'/>").get("type") == "result"
    after = scrape()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("iqresponder_requests_total", namespace="urn:xmpp:ping", outcome="result", type="get") == 5
    assert moved("iqresponder_requests_total", namespace="other", outcome="service-unavailable", type="get") == 3
    assert moved("iqresponder_responder_seconds_count", namespace="urn:xmpp:ping") == 5
    assert moved("iqresponder_outbound_queries_total", outcome="answered") >= 1
    assert value(after, "iqresponder_outbound_queries_pending") == 0
    assert value(after, "iqresponder_reconnects_total") == 0


def test_unknown_namespaces_do_not_grow_the_label_set(client):
    for index in range(10):
        client.iq(f"<query xmlns='urn:example:invented{index}'/>")
    assert not [name for name in scrape() if "invented" in name]
