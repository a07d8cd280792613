"""Prometheus metrics over HTTP, scraped while traffic flows through each real server."""

import re
import urllib.request

import pytest

from private_servers.base import free_port
from tests.integration.xmpp_client import error_of

pytestmark = pytest.mark.integration

ASKING = """
from component import responder


@responder("urn:example:metrics", "get")
async def ask_server(request):
    await request.component.disco_info("localhost")
"""


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("metrics-handlers")
    (directory / "asking.py").write_text(ASKING)
    return directory


@pytest.fixture(scope="module")
def metrics_port(server) -> int:
    """A port free now, chosen for each server variant's component just before it starts (not at import)."""
    return free_port()


@pytest.fixture(scope="module")
def extra_config(metrics_port):
    return f'[metrics]\nendpoint = "tcp:port={metrics_port}:interface=127.0.0.1"\n'


@pytest.fixture
def scrape(component, metrics_port):
    """Read the component's /metrics page: sample name with its labels -> value."""

    def read() -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            return parse(response.read().decode())

    return read


def parse(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+(?:\{[^}]*\})?) (\S+)", line)
        if match:
            samples[match.group(1)] = float(match.group(2))
    return samples


def sample(name: str, **labels: str) -> str:
    if labels:
        name += "{" + ",".join(f'{key}="{val}"' for key, val in labels.items()) + "}"
    return name


def test_numbers_move_as_traffic_flows(client, scrape):
    before = scrape()
    assert before[sample("iqresponder_connected", jid="iq.localhost")] == 1.0
    for _ in range(5):
        assert client.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"
    for _ in range(3):
        assert error_of(client.iq("<query xmlns='urn:example:nobody'/>")) == ("cancel", "service-unavailable")
    assert client.iq("<query xmlns='urn:example:metrics'/>").get("type") == "result"
    after = scrape()

    def moved(name, **labels):
        """How far a sample moved; a labelled sample may first appear in ``after``, never vanish from it."""
        return after[sample(name, **labels)] - before.get(sample(name, **labels), 0.0)

    assert moved("iqresponder_requests_total", namespace="urn:xmpp:ping", outcome="result", type="get") == 5
    assert moved("iqresponder_requests_total", namespace="other", outcome="service-unavailable", type="get") == 3
    assert moved("iqresponder_responder_seconds_count", namespace="urn:xmpp:ping") == 5
    assert moved("iqresponder_outbound_queries_total", outcome="answered") >= 1
    assert after["iqresponder_outbound_queries_pending"] == 0
    assert after["iqresponder_reconnects_total"] == 0


def test_unknown_namespaces_do_not_grow_the_label_set(client, scrape):
    before = scrape()
    for index in range(10):
        assert error_of(client.iq(f"<query xmlns='urn:example:invented{index}'/>")) == ("cancel", "service-unavailable")
    after = scrape()
    other = sample("iqresponder_requests_total", namespace="other", outcome="service-unavailable", type="get")
    assert after[other] - before.get(other, 0.0) == 10  # counted, under the one label "other"
    assert not [name for name in after if "invented" in name]
