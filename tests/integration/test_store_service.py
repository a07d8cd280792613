"""The store through a real server: replies that are durable, and a database outage.

The component runs under twistd with the README's CustomXEP example, whose
values live in ``component.store``; a real client (slixmpp) sets and reads
them. PostgreSQL is the suite's private cluster (private_servers/postgresql.py);
the outage test has a cluster of its own, which it stops and starts again.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from private_servers.base import free_port
from private_servers.postgresql import PostgreSQLCluster
from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.xmpp_client import XmppClient, error_of

pytestmark = pytest.mark.integration

SHARED = "iq.localhost"


def item_set(key: str, value: str) -> str:
    return f"<query xmlns='custom-xep'><item key='{key}'>{value}</item></query>"


def item_get(key: str) -> str:
    return f"<query xmlns='custom-xep'><item key='{key}'/></query>"


def value_of(reply) -> str:
    assert reply.get("type") == "result", reply
    return reply.find("{custom-xep}query/{custom-xep}item").text or ""


@pytest.fixture
def store_url(request, tmp_path) -> str:
    """The backend a test's component keeps its store on, by the test's ``backend`` parameter."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("postgresql_url")


def component_config(directory: Path, server, secret_file: Path, handler_directory: Path, store: str) -> Path:
    return write_config(
        directory / "iqresponder.toml",
        server.endpoint,
        secret_file,
        [BUNDLED, handler_directory],
        f"[store]\n{store}\n",
    )


@pytest.mark.servers("prosody-tcp")
@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_a_set_that_was_answered_survives_a_sigkill_right_after_the_reply(
    tmp_path, server, secret_file, handler_directory, store_url
):
    config = component_config(tmp_path, server, secret_file, handler_directory, f'url = "{store_url}"')
    client = XmppClient(f"{USER}@localhost/durable", PASSWORD, server.c2s_port)
    try:
        first = ComponentProcess(config)
        first.wait_for_log(f"Authenticated as {SHARED}")
        replies = client.iqs([item_set(f"k{n}", f"v{n}") for n in range(20)], type="set")
        assert [reply.get("type") for reply in replies] == ["result"] * 20
        # The last reply is in: kill at once, with no chance to flush anything more.
        first.process.send_signal(signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL

        second = ComponentProcess(config)
        second.wait_for_log(f"Authenticated as {SHARED}")
        assert [value_of(reply) for reply in client.iqs([item_get(f"k{n}") for n in range(20)])] == [
            f"v{n}" for n in range(20)
        ]
        second.stop()
        assert second.failures() == []
    finally:
        client.close()


@pytest.fixture
def own_cluster() -> Iterator[PostgreSQLCluster]:
    """A PostgreSQL cluster for this test alone, which it may stop and start again."""
    cluster = PostgreSQLCluster(fsync=False)
    cluster.start()
    yield cluster
    cluster.remove()


def until(check: Callable[[], object], what: str, timeout: float) -> object:
    """Ask ``check()`` again (each call is a round trip through the server) until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout} s")


STORE_TIMEOUT = 2.0


@pytest.mark.servers("prosody-tcp")
def test_with_postgresql_down_store_requests_get_wait_errors_others_are_answered_and_it_recovers(
    tmp_path, server, secret_file, handler_directory, own_cluster
):
    url = own_cluster.new_database()
    config = component_config(
        tmp_path, server, secret_file, handler_directory, f'url = "{url}"\ntimeout = {STORE_TIMEOUT}'
    )
    component = ComponentProcess(config)
    client = XmppClient(f"{USER}@localhost/outage", PASSWORD, server.c2s_port)
    try:
        component.wait_for_log(f"Authenticated as {SHARED}")
        assert client.iq(item_set("before", "kept"), type="set").get("type") == "result"

        own_cluster.stop()
        started = time.monotonic()
        reply = client.iq(item_get("before"), timeout=3 * STORE_TIMEOUT)
        took = time.monotonic() - started
        assert error_of(reply) == ("wait", "internal-server-error")
        assert reply.find("{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}text").text == (
            "The service's storage is unavailable; try again later"
        )
        assert took < 2 * STORE_TIMEOUT, f"the error came after {took:.2f} s"
        print(f"error reply {took:.3f} s after the request, PostgreSQL stopped")
        # Everything else is answered meanwhile, and store requests keep getting their error, each in time.
        for _ in range(3):
            assert client.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"
            started = time.monotonic()
            assert error_of(client.iq(item_set("during", "x"), type="set", timeout=3 * STORE_TIMEOUT)) == (
                "wait",
                "internal-server-error",
            )
            assert time.monotonic() - started < 2 * STORE_TIMEOUT

        own_cluster.start()
        back = time.monotonic()
        until(lambda: client.iq(item_get("before")).get("type") == "result", "answered again", timeout=30)
        print(f"store requests answered again {time.monotonic() - back:.2f} s after PostgreSQL was back")
        assert value_of(client.iq(item_get("before"))) == "kept"
        assert client.iq(item_set("after", "y"), type="set").get("type") == "result"
        assert value_of(client.iq(item_get("after"))) == "y"

        log = component.log()
        assert log.count("The store is unavailable") == 1, log
        assert log.count("The store is available again") == 1, log
        assert log.count(f"Authenticated as {SHARED}") == 1, "the stream to the server stayed up"
        assert component.failures() == []
    finally:
        client.close()
        component.stop()


@pytest.mark.servers("prosody-tcp")
def test_a_database_that_cannot_be_reached_at_start_is_one_warning_and_the_rest_is_served(
    tmp_path, server, secret_file, handler_directory
):
    port = free_port()
    config = component_config(
        tmp_path, server, secret_file, handler_directory, f'url = "postgresql://iq@127.0.0.1:{port}/iq"\ntimeout = 1'
    )
    component = ComponentProcess(config)
    client = XmppClient(f"{USER}@localhost/unreachable", PASSWORD, server.c2s_port)
    try:
        component.wait_for_log(f"Handlers' state is kept in PostgreSQL 127.0.0.1:{port}/iq")
        component.wait_for_log(f"The store is unavailable (PostgreSQL 127.0.0.1:{port}/iq)")
        component.wait_for_log(f"Authenticated as {SHARED}")
        assert client.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"
        assert error_of(client.iq(item_get("k"), timeout=5)) == ("wait", "internal-server-error")
        assert component.log().count("The store is unavailable") == 1
        assert component.failures() == []
    finally:
        client.close()
        component.stop()


def readme_table_sql() -> str:
    """The SQL the store's guide gives an owner to create the store's table for a user with fewer rights."""
    guide = (Path(__file__).parents[2] / "docs" / "howto" / "store.md").read_text()
    return guide.split("```sql\n", 1)[1].split("```", 1)[0]


@pytest.mark.servers("prosody-tcp")
def test_a_user_who_may_not_create_the_table_gets_one_warning_then_works_once_the_owner_runs_the_readmes_sql(
    tmp_path, server, secret_file, handler_directory, postgresql_cluster
):
    owner_url = postgresql_cluster.new_database()
    with psycopg.connect(owner_url, autocommit=True) as owner:
        owner.execute("DO $$ BEGIN CREATE ROLE iqresponder LOGIN; EXCEPTION WHEN duplicate_object THEN END $$")
    limited_url = owner_url.replace("postgres@", "iqresponder@")
    config = component_config(tmp_path, server, secret_file, handler_directory, f'url = "{limited_url}"\ntimeout = 1')
    client = XmppClient(f"{USER}@localhost/limited", PASSWORD, server.c2s_port)
    component = ComponentProcess(config)
    try:
        component.wait_for_log(f"Authenticated as {SHARED}")
        component.wait_for_log("the table iqresponder_store is missing and this user may not create it")
        assert error_of(client.iq(item_set("k", "v"), type="set", timeout=5)) == ("wait", "internal-server-error")
        assert component.failures() == []

        with psycopg.connect(owner_url, autocommit=True) as owner:
            owner.execute(readme_table_sql())
        assert client.iq(item_set("k", "v"), type="set").get("type") == "result"
        assert value_of(client.iq(item_get("k"))) == "v"
        assert component.log().count("The store is unavailable") == 1
        assert component.failures() == []
    finally:
        client.close()
        component.stop()


@pytest.mark.servers("prosody-tcp")
def test_a_missing_database_is_named_in_the_warning(
    tmp_path, server, secret_file, handler_directory, postgresql_cluster
):
    url = postgresql_cluster.url("no_such_database")
    config = component_config(tmp_path, server, secret_file, handler_directory, f'url = "{url}"\ntimeout = 1')
    component = ComponentProcess(config)
    try:
        component.wait_for_log('database "no_such_database" does not exist')
        assert component.failures() == []
    finally:
        component.stop()
