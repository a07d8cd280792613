"""The store across a module's life under twistd: setup(), expiry, reload, a burst, running in the background, shutdown.

A handler module of the test's own keeps its values in ``component.store``:
its ``setup()`` writes without awaiting (it cannot), its ``teardown()`` writes
and awaits, and its requests set values with a ``ttl``. The component runs
under twistd on SQLite, behind the private Prosody, with a real client.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from private_servers.postgresql import PostgreSQLCluster
from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import TWISTD, ComponentProcess, write_config
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


def stash_config(tmp_path, server, secret_file, store: str, component_extra: str = "") -> Path:
    handlers = tmp_path / "handlers"
    handlers.mkdir(exist_ok=True)
    (handlers / "stash.py").write_text(STASH)
    return write_config(
        tmp_path / "iqresponder.toml", server.endpoint, secret_file, [BUNDLED, handlers], store, component_extra
    )


def wait_until(check, what: str, timeout: float):
    """``check()`` again until it gives something true; each check reads a file or the component's state."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout} s")
    return result


def test_in_the_background_a_setup_that_wrote_to_the_store_leaves_it_working(tmp_path, server, secret_file):
    """twistd without --nodaemon runs setup() before it forks: the store must not start its threads in the parent."""
    store = f'[store]\nurl = "sqlite:///{tmp_path / "store.sqlite3"}"\ntimeout = 2\n'
    config = stash_config(tmp_path, server, secret_file, store)
    pidfile, logfile = tmp_path / "twistd.pid", tmp_path / "twistd.log"
    subprocess.run(
        [str(TWISTD), f"--pidfile={pidfile}", f"--logfile={logfile}", "iqresponder", "--config", str(config)],
        check=True,
        timeout=30,
    )
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), "a pid file", 10))
    client = XmppClient(f"{USER}@localhost/daemon", PASSWORD, server.c2s_port)
    try:
        wait_until(lambda: f"Authenticated as {SHARED}" in logfile.read_text(), "authenticated", 15)
        started = time.monotonic()
        assert client.iq(put("k", "v"), type="set", timeout=5).get("type") == "result"
        assert time.monotonic() - started < 1.0
        assert taken(client.iq(take("k"))) == "v"
        assert taken(client.iq(take("setup/ran"))) == "yes"
    finally:
        client.close()
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), "the daemon gone", 20)
    log = logfile.read_text()
    assert "The store is unavailable" not in log and "Traceback" not in log, log


GRACE, TIMEOUT = 2.0, 1.0


def exits_within(component: ComponentProcess, seconds: float) -> float:
    started = time.monotonic()
    component.process.send_signal(signal.SIGTERM)
    try:
        component.process.wait(seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {seconds} s after SIGTERM:\n{component.log()}") from None
    return time.monotonic() - started


def test_sigterm_with_postgresql_down_and_store_calls_queued_exits_in_bounded_time(tmp_path, server, secret_file):
    with PostgreSQLCluster(fsync=False) as cluster:
        store = f'[store]\nurl = "{cluster.new_database()}"\ntimeout = {TIMEOUT}\n'
        config = stash_config(tmp_path, server, secret_file, store, f"shutdown_grace = {GRACE}\n")
        component = ComponentProcess(config)
        client = XmppClient(f"{USER}@localhost/down", PASSWORD, server.c2s_port)
        try:
            component.wait_for_log(f"Authenticated as {SHARED}")
            assert client.iq(put("k", "1"), type="set").get("type") == "result"
            cluster.stop()
            sender = threading.Thread(
                target=lambda: client.iqs([put(f"x{n}", "v") for n in range(40)], type="set", timeout=15), daemon=True
            )
            sender.start()
            component.wait_for_log("The store is unavailable")  # the first calls failed; the rest are queued
            # Requests in flight get the grace, then teardown the grace, then the store's running calls their timeout.
            took = exits_within(component, GRACE + GRACE + 2 * TIMEOUT + 0.5 + 3.0)
            print(f"exited {took:.2f} s after SIGTERM with PostgreSQL down and calls queued")
            sender.join(20)
        finally:
            client.close()
            component.stop()


def test_a_row_held_by_another_session_costs_one_key_a_timeout_and_never_blocks_the_rest(tmp_path, server, secret_file):
    with PostgreSQLCluster(fsync=False) as cluster:
        url = cluster.new_database()
        store = f'[store]\nurl = "{url}"\ntimeout = {TIMEOUT}\n'
        config = stash_config(tmp_path, server, secret_file, store, f"shutdown_grace = {GRACE}\n")
        component = ComponentProcess(config)
        client = XmppClient(f"{USER}@localhost/locked", PASSWORD, server.c2s_port)
        try:
            component.wait_for_log(f"Authenticated as {SHARED}")
            assert client.iq(put("k", "1"), type="set").get("type") == "result"
            with psycopg.connect(url) as other:  # an operator's open transaction holds the row of k
                other.execute("UPDATE iqresponder_store SET value = value WHERE key = 'k'")
                replies = client.iqs([put("k", str(n)) for n in range(2, 10)], type="set", timeout=10)
                assert [error_of(reply) for reply in replies] == [("wait", "internal-server-error")] * 8
                # The pool's connections were all freed by the database's own lock timeout: others are served.
                assert [
                    reply.get("type") for reply in client.iqs([put(f"free{n}", "v") for n in range(8)], type="set")
                ] == ["result"] * 8
                other.rollback()
            final = taken(client.iq(take("k")))
            assert final == "1", f"a write answered as failed must not land later: k holds {final}\n{component.log()}"
            exits_within(component, GRACE + GRACE + 2 * TIMEOUT + 0.5 + 3.0)
        finally:
            client.close()
            component.stop()
