"""The private PostgreSQL cluster the store's tests and benchmarks use (private_servers/postgresql.py).

It listens on 127.0.0.1 only, gives each test an empty database of its own, keeps its data
across stop() and start(), and leaves no process behind when it stops.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from private_servers.postgresql import PostgreSQLCluster, PostgreSQLNotInstalled, find_pg_ctl
from tests.integration.test_servers import assert_all_exit, descendants, listening

pytestmark = pytest.mark.integration

STOP_TIMEOUT = 5.0


@pytest.fixture
def cluster() -> Iterator[PostgreSQLCluster]:
    """A cluster of the test's own, which it may stop; fsync off, since nothing here crashes it."""
    with PostgreSQLCluster(fsync=False) as own:
        yield own


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return [name for (name,) in rows]


def setting(url: str, name: str) -> str:
    with psycopg.connect(url) as connection:
        row = connection.execute(f"SHOW {name}").fetchone()
        assert row is not None
        return row[0]


def test_the_cluster_listens_on_127_0_0_1_only_and_only_on_its_port(postgresql_cluster: PostgreSQLCluster):
    assert postgresql_cluster.pid is not None
    assert listening(postgresql_cluster.pid) == {("127.0.0.1", postgresql_cluster.port)}
    # PostgreSQL's default, localhost, is ::1 too where /etc/hosts says so (Debian's does; not every machine's).
    assert setting(postgresql_cluster.url(), "listen_addresses") == "127.0.0.1"


def test_a_new_database_is_empty_and_apart_from_another(postgresql_cluster: PostgreSQLCluster):
    first, second = postgresql_cluster.new_database(), postgresql_cluster.new_database()
    assert first != second
    assert tables(first) == []
    with psycopg.connect(first) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    assert tables(first) == ["notes"]
    assert tables(second) == []


def test_fsync_is_on_unless_turned_off(postgresql_cluster: PostgreSQLCluster, cluster: PostgreSQLCluster):
    assert setting(postgresql_cluster.url(), "fsync") == "on"
    assert setting(cluster.url(), "fsync") == "off"


def test_data_survives_stop_and_start_on_the_same_port(cluster: PostgreSQLCluster):
    url = cluster.new_database()
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('kept')")
    cluster.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    cluster.start()
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT text FROM notes").fetchall() == [("kept",)]


def test_stop_leaves_no_postgresql_process_running(cluster: PostgreSQLCluster):
    assert cluster.pid is not None
    # pidfds name these very processes, so a pid reused later cannot pass for one of them.
    processes = {pid: os.pidfd_open(pid) for pid in [cluster.pid, *descendants(cluster.pid)]}
    assert len(processes) > 1, "the server ran no background process: this test would check little"
    cluster.stop()
    assert cluster.pid is None
    assert_all_exit(processes, STOP_TIMEOUT)


def test_without_postgresql_installed_the_error_says_so_in_one_line(tmp_path):
    with pytest.raises(PostgreSQLNotInstalled) as raised:
        find_pg_ctl(tmp_path)
    message = str(raised.value)
    assert "\n" not in message
    assert "PostgreSQL is not installed" in message
    assert "make postgresql" in message
