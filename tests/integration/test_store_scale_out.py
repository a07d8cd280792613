"""The store shared by instances: three component processes under one name on ejabberd, one PostgreSQL database.

The CustomXEP example keeps its values in ``component.store``; each instance
also has its own name (``--instance-jid``), so the client picks which instance
answers a request, and shows that they all see the same values and that
compare-and-set updates sent to all three at once lose none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import PASSWORD, USER
from tests.integration.processes import ComponentProcess, instances
from tests.integration.test_store_service import SHARED, component_config, item_get, item_set, value_of
from tests.integration.xmpp_client import XmppClient

pytestmark = [pytest.mark.integration, pytest.mark.servers("ejabberd-tcp")]

INSTANCES = ("iq-1.localhost", "iq-2.localhost", "iq-3.localhost")


@pytest.fixture(scope="module")
def component_names() -> tuple[str, ...]:
    return (SHARED, *INSTANCES)


@pytest.fixture
def running(tmp_path, server, secret_file, handler_directory, postgresql_url) -> Iterator[list[ComponentProcess]]:
    """Three instances under one name, each also under its own, sharing one PostgreSQL database."""
    config = component_config(tmp_path, server, secret_file, handler_directory, f'url = "{postgresql_url}"')
    with instances(config, SHARED, INSTANCES) as processes:
        yield processes


def test_a_value_set_through_one_instance_is_read_through_the_others(running, server):
    client = XmppClient(f"{USER}@localhost/shared", PASSWORD, server.c2s_port)
    try:
        assert client.iq(item_set("colour", "teal"), type="set", to=INSTANCES[0]).get("type") == "result"
        assert [value_of(client.iq(item_get("colour"), to=name)) for name in INSTANCES[1:]] == ["teal", "teal"]
        assert client.iq(item_set("colour", "plum"), type="set", to=INSTANCES[2]).get("type") == "result"
        assert value_of(client.iq(item_get("colour"), to=INSTANCES[0])) == "plum"
        assert value_of(client.iq(item_get("colour"), to=SHARED)) == "plum", "whichever instance ejabberd picks"
    finally:
        client.close()


def test_increments_sent_to_all_three_instances_at_once_lose_no_update(running, server):
    per_instance = 20
    client = XmppClient(f"{USER}@localhost/counter", PASSWORD, server.c2s_port)
    try:
        requests = [(name, "<count xmlns='custom-xep' key='hits'/>") for _ in range(per_instance) for name in INSTANCES]
        replies = client.iqs_to(requests, type="set")
        counts = sorted(int(reply.find("{custom-xep}count").get("value")) for reply in replies)
        # Every increment landed exactly once: the instances handed out 1..N, each value once.
        assert counts == list(range(1, 3 * per_instance + 1))
        final = client.iq("<count xmlns='custom-xep' key='hits'/>", type="set", to=INSTANCES[1])
        assert final.find("{custom-xep}count").get("value") == str(3 * per_instance + 1)
    finally:
        client.close()
