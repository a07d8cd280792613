"""Integration fixtures: a private XMPP server on 127.0.0.1, the component under twistd, real clients.

``server`` is parametrized over every variant in ``servers.VARIANTS`` (Prosody and ejabberd,
each over plain TCP and direct TLS), so each test that uses it runs once per variant, and a
module's tests share one server per variant. A test or module that is about something else
than the server narrows the list with the ``servers`` mark, e.g.
``pytestmark = pytest.mark.servers(*EACH_SERVER)``.

``postgresql_url`` is a new, empty database on the session's private PostgreSQL cluster
(``postgresql_cluster``, started on first use). A test that stops PostgreSQL starts a
``PostgreSQLCluster`` of its own instead.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from private_servers.postgresql import PostgreSQLCluster
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.servers import VARIANTS, Pki, XmppServer, make_pki
from tests.integration.xmpp_client import XmppClient

ROOT = Path(__file__).parents[2]
BUNDLED = ROOT / "handlers"
EXAMPLES = ROOT / "examples" / "handlers"
USER, PASSWORD = "alice", "wonderland"


@pytest.fixture(scope="session", autouse=True)
def no_component_outlives_the_session():
    yield
    for process in ComponentProcess.started:
        process.stop()


@pytest.fixture(scope="session")
def postgresql_cluster() -> Iterator[PostgreSQLCluster]:
    """One PostgreSQL cluster on 127.0.0.1 for the session, fsync on, removed at its end."""
    with PostgreSQLCluster() as cluster:
        yield cluster


@pytest.fixture
def postgresql_url(postgresql_cluster: PostgreSQLCluster) -> str:
    """The URL of a new, empty database of the test's own."""
    return postgresql_cluster.new_database()


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(secrets.token_hex(16))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def component_names() -> tuple[str, ...]:
    """The component names the server accepts (all with the same secret); a module may override it."""
    return ("iq.localhost",)


def pytest_generate_tests(metafunc):
    if "server" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("servers")
        metafunc.parametrize("server", marker.args if marker else VARIANTS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def ejabberd_loglevel() -> str:
    """ejabberd's log level; a module that waits for route changes in its log overrides it with debug."""
    return "info"


@pytest.fixture(scope="module")
def server(request, tmp_path_factory, secret_file, pki, component_names, ejabberd_loglevel):
    running = XmppServer(
        request.param,
        tmp_path_factory.mktemp(request.param),
        secret_file.read_text(),
        pki,
        component_names,
        ejabberd_loglevel,
    )
    running.start()
    running.register(USER, PASSWORD)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory) -> Path:
    """A handler directory the test writes: the README's custom_xep.py example, copied in."""
    directory = tmp_path_factory.mktemp("handlers")
    (directory / "custom_xep.py").write_text((EXAMPLES / "custom_xep.py").read_text())
    return directory


@pytest.fixture(scope="module")
def extra_config() -> str:
    """TOML appended to the component's configuration; a test module may override it."""
    return ""


@pytest.fixture(scope="module")
def expected_failures() -> tuple[str, ...]:
    """Texts of the failures the module's component may log; a module that provokes one overrides it."""
    return ()


@pytest.fixture(scope="module")
def component(tmp_path_factory, server, secret_file, handler_directory, extra_config, expected_failures):
    """The component under twistd; the module's last test fails on a failure it logged that was not expected."""
    config = write_config(
        tmp_path_factory.mktemp("config") / "iqresponder.toml",
        server.endpoint,
        secret_file,
        [BUNDLED, handler_directory],
        extra_config,
    )
    process = ComponentProcess(config)
    process.wait_for_log("Authenticated as iq.localhost")
    yield process
    process.stop()
    unexpected = [text for text in process.failures() if not any(expected in text for expected in expected_failures)]
    assert unexpected == [], "the component logged failures:\n" + "\n".join(unexpected)


@pytest.fixture(scope="module")
def client(server, component):
    session = XmppClient(f"{USER}@localhost/tests", PASSWORD, server.c2s_port)
    yield session
    session.close()


@pytest.fixture(params=["aioxmpp", "slixmpp"])
def connect(request, server, component):
    """An ad-hoc command client of each library in turn (tests/integration/command_clients.py).

    ``connect(user, resource)`` logs in; every client is closed after the test.
    """
    from tests.integration.command_clients import LIBRARIES  # aioxmpp is imported by the tests that use it only

    opened = []

    def open_client(user: str = USER, resource: str = "commands"):
        client = LIBRARIES[request.param](f"{user}@localhost/{resource}", PASSWORD, server.c2s_port)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
