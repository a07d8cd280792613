"""Integration fixtures: a private Prosody on 127.0.0.1, the component under twistd, real clients."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from private_prosody import PrivateProsody, free_port
from tests.integration.processes import ComponentProcess, write_config
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


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(secrets.token_hex(16))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def prosody(tmp_path_factory, secret_file):
    server = PrivateProsody(
        tmp_path_factory.mktemp("prosody"),
        c2s_port=free_port(),
        component_port=free_port(),
        secret=secret_file.read_text(),
    )
    server.start()
    server.register(USER, "localhost", PASSWORD)
    yield server
    server.stop()


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
def component(tmp_path_factory, prosody, secret_file, handler_directory, extra_config):
    config = write_config(
        tmp_path_factory.mktemp("config") / "iqresponder.toml",
        prosody.component_port,
        secret_file,
        [BUNDLED, handler_directory],
        extra_config,
    )
    process = ComponentProcess(config)
    process.wait_for_log("Authenticated as iq.localhost")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def client(prosody, component):
    session = XmppClient(f"{USER}@localhost/tests", PASSWORD, prosody.c2s_port)
    yield session
    session.close()
