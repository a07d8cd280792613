"""The store across a module's life under twistd: setup(), requests with expiry, a reload's teardown(), a burst.

A handler module of the test's own keeps its values in ``component.store``:
its ``setup()`` writes without awaiting (it cannot), its ``teardown()`` writes
and awaits, and its requests set values with a ``ttl``. The component runs
under twistd on SQLite, behind the private Prosody, with a real client.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.xmpp_client import XmppClient, error_of

pytestmark = [pytest.mark.integration, pytest.mark.servers("prosody-tcp")]

SHARED = "iq.localhost"
NS = "urn:example:stash"
STASH = f'''
from component import Payload, StanzaError, attribute, responder


class Put(Payload, namespace="{NS}", element="put"):
    key: str = attribute()
    value: str = attribute()
    ttl: str | None = attribute(default=None)


class Take(Payload, namespace="{NS}", element="take"):
    key: str = attribute()
    value: str | None = attribute(default=None)


def setup(component, options):
    component.store.set("setup/ran", "yes")


async def teardown(component):
    await component.store.set("teardown/ran", "yes")


@responder(Put, "set")
async def put(request):
    ttl = float(request.payload.ttl) if request.payload.ttl else None
    await request.component.store.set(request.payload.key, request.payload.value, ttl=ttl)


@responder(Take, "get")
async def take(request):
    value = await request.component.store.get(request.payload.key)
    if value is None:
        raise StanzaError("item-not-found")
    return Take(key=request.payload.key, value=value)
'''


def put(key: str, value: str, ttl: float | None = None) -> str:
    expiry = f" ttl='{ttl}'" if ttl is not None else ""
    return f"<put xmlns='{NS}' key='{key}' value='{value}'{expiry}/>"


def take(key: str) -> str:
    return f"<take xmlns='{NS}' key='{key}'/>"


def taken(reply) -> str | tuple[str, str]:
    """The value a take answered, or its error's (type, condition)."""
    if reply.get("type") != "result":
        return error_of(reply)
    return reply.find(f"{{{NS}}}take").get("value")


@pytest.fixture
def running(tmp_path, server, secret_file):
    """The component with the stash module on SQLite (sender limits raised for the burst), and a client."""
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "stash.py").write_text(STASH)
    config = write_config(
        tmp_path / "iqresponder.toml",
        server.endpoint,
        secret_file,
        [BUNDLED, handlers],
        f'[store]\nurl = "sqlite:///{tmp_path / "store.sqlite3"}"\n'
        "[limits]\nsender_rate = 100000.0\nsender_burst = 100000\n",
    )
    component = ComponentProcess(config)
    client = XmppClient(f"{USER}@localhost/stash", PASSWORD, server.c2s_port)
    try:
        component.wait_for_log(f"Authenticated as {SHARED}")
        yield component, client
    finally:
        client.close()
        component.stop()


def test_setup_writes_requests_expire_in_real_time_and_a_reload_runs_teardown_on_the_open_store(running):
    component, client = running
    assert taken(client.iq(take("setup/ran"))) == "yes"

    sent = time.monotonic()  # the component's write, and so its clock for the ttl, starts after this
    assert client.iq(put("short", "v", ttl=1.0), type="set").get("type") == "result"
    assert taken(client.iq(take("short"))) == "v"
    deadline = sent + 5.0
    while taken(client.iq(take("short"))) == "v":  # each check is a round trip through Prosody
        assert time.monotonic() < deadline, "the entry did not expire"
    assert time.monotonic() - sent >= 1.0
    assert taken(client.iq(take("short"))) == ("cancel", "item-not-found")

    component.process.send_signal(signal.SIGHUP)  # the previous modules are torn down while the store stays open
    component.wait_for_log("Reloaded")
    deadline = time.monotonic() + 5.0
    while taken(client.iq(take("teardown/ran"))) != "yes":  # teardown runs after the reload, not before it
        assert time.monotonic() < deadline, "teardown() did not write"
    assert component.failures() == []


def test_a_burst_of_a_thousand_sets_on_sqlite_is_all_answered_and_all_kept(running):
    component, client = running
    started = time.monotonic()
    replies = client.iqs([put(f"k{n}", f"v{n}") for n in range(1000)], type="set", timeout=30)
    took = time.monotonic() - started
    assert [reply.get("type") for reply in replies] == ["result"] * 1000
    assert took < 10.0, f"a thousand sets took {took:.1f} s"
    print(f"1000 concurrent sets answered in {took:.2f} s")
    values = [taken(reply) for reply in client.iqs([take(f"k{n}") for n in range(1000)], timeout=30)]
    assert values == [f"v{n}" for n in range(1000)]
    assert component.failures() == []
