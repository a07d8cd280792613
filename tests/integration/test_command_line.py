"""The component started as operators start it, and every way start-up can fail, as real processes."""

import subprocess

import pytest

from private_servers.base import free_port
from tests.integration.conftest import BUNDLED, EXAMPLES
from tests.integration.processes import TWISTD, ComponentProcess, write_config
from tests.integration.servers import EACH_SERVER
from tests.integration.xmpp_client import XmppClient

pytestmark = [pytest.mark.integration, pytest.mark.servers(*EACH_SERVER)]

EX_CONFIG = 78
NOWHERE = "tcp:host=127.0.0.1:port=5347"
"""A server address for configurations that never get as far as connecting."""


def run_twistd(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TWISTD), "--nodaemon", "--pidfile=", "iqresponder", *arguments],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr + result.stdout, result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def good_config(tmp_path, secret_file):
    return write_config(tmp_path / "iqresponder.toml", NOWHERE, secret_file, [BUNDLED])


def test_help_lists_every_option_on_one_line_each():
    result = run_twistd("--help")
    lines = result.stdout.splitlines()
    for option in ["--config=", "--jid=", "--instance-jid=", "--server=", "--secret-file=", "--handlers="]:
        [index] = [i for i, line in enumerate(lines) if option in line]
        assert len(lines[index].split(option, 1)[1].strip()) > 10, f"{option} has no description"
        following = lines[index + 1].strip()
        assert following == "" or following.startswith("-"), f"{option}'s help spans more than one line"


def test_twist_also_starts_the_component(server, tmp_path, secret_file):
    config = write_config(tmp_path / "twist.toml", server.endpoint, secret_file, [BUNDLED])
    process = ComponentProcess(config, twist=True)
    try:
        process.wait_for_log("Authenticated as iq.localhost")
    finally:
        assert process.stop() is not None


def test_command_line_overrides_server_secret_file_and_handlers(server, tmp_path, secret_file):
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret")
    config = write_config(tmp_path / "stale.toml", f"tcp:host=127.0.0.1:port={free_port()}", wrong, [BUNDLED])
    process = ComponentProcess(
        config,
        "--server",
        server.endpoint,
        "--secret-file",
        str(secret_file),
        "--handlers",
        str(EXAMPLES),
        "--handlers",
        str(BUNDLED),
    )
    client = None
    try:
        process.wait_for_log("Authenticated as iq.localhost")
        assert process.log().index("module custom_xep") < process.log().index("module disco")
        client = XmppClient("alice@localhost/overrides", "wonderland", server.c2s_port)
        assert client.iq("<query xmlns='custom-xep'><item key='k'>v</item></query>", type="set").get("type") == "result"
    finally:
        if client:
            client.close()
        process.stop()


def test_jid_option_overrides_the_file_and_an_unknown_name_exits_ex_config(server, tmp_path, secret_file):
    config = write_config(tmp_path / "other.toml", server.endpoint, secret_file, [BUNDLED])
    process = ComponentProcess(config, "--jid", "unknown.localhost")
    try:
        assert process.wait(timeout=15) == EX_CONFIG
        line = process.wait_for_log("refused unknown.localhost")
        # Prosody refuses an unknown name at the stream header, ejabberd at the handshake.
        assert ("host-unknown" if server.kind == "prosody" else "not-authorized") in line
    finally:
        process.stop()


def test_an_instance_name_the_server_does_not_know_exits_ex_config_naming_the_key(server, tmp_path, secret_file):
    config = write_config(tmp_path / "instance.toml", server.endpoint, secret_file, [BUNDLED])
    process = ComponentProcess(config, "--instance-jid", "iq-9.localhost")
    try:
        assert process.wait(timeout=15) == EX_CONFIG
        line = process.wait_for_log("Stopping:")
        assert "iq-9.localhost" in line and "component.instance_jid" in line
    finally:
        process.stop()


def test_wrong_secret_is_logged_with_the_servers_text_and_exits_ex_config(server, tmp_path):
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret")
    config = write_config(tmp_path / "wrong.toml", server.endpoint, wrong, [BUNDLED])
    process = ComponentProcess(config)
    try:
        assert process.wait(timeout=15) == EX_CONFIG
        line = process.wait_for_log("refused iq.localhost")
        assert "not-authorized" in line
        if server.kind == "prosody":  # ejabberd's not-authorized has no text
            assert "Given token does not match calculated token" in line
        assert "not-the-secret" not in process.log()
        assert process.log().count("refused iq.localhost: not-authorized") == 1  # tried once, not retried
    finally:
        process.stop()


def test_config_error_exits_with_one_line_naming_file_and_key(tmp_path, good_config):
    good_config.write_text(good_config.read_text().replace("reconnect_max = 2.0", "reconnect_max = 'often'"))
    line = assert_one_line_failure(
        run_twistd("--config", str(good_config)), str(good_config), "component.reconnect_max"
    )
    assert "expected a number" in line


def test_malformed_config_exits_with_one_line(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[component\n")
    assert_one_line_failure(run_twistd("--config", str(broken)), str(broken), "not valid TOML")


def test_missing_secret_exits_with_one_line(tmp_path):
    config = tmp_path / "nosecret.toml"
    config.write_text('[component]\njid = "iq.localhost"\n')
    assert_one_line_failure(run_twistd("--config", str(config)), str(config), "component.secret", "missing")


def test_missing_config_option_exits_with_one_line():
    assert_one_line_failure(run_twistd(), "--config")


def test_handler_that_fails_to_import_stops_start_up_naming_the_file(tmp_path, secret_file):
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "broken.py").write_text("raise RuntimeError('no database configured')\n")
    config = write_config(tmp_path / "iqresponder.toml", NOWHERE, secret_file, [handlers])
    line = assert_one_line_failure(run_twistd("--config", str(config)), str(handlers / "broken.py"))
    assert "RuntimeError: no database configured" in line


def test_two_handlers_claiming_the_same_key_stop_start_up_naming_both(tmp_path, secret_file):
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "my_ping.py").write_text(
        "from component import responder\n@responder('urn:xmpp:ping', 'get', element='ping')\ndef p(r): pass\n"
    )
    config = write_config(tmp_path / "iqresponder.toml", NOWHERE, secret_file, [BUNDLED, handlers])
    assert_one_line_failure(run_twistd("--config", str(config)), str(BUNDLED / "ping.py"), str(handlers / "my_ping.py"))


def test_options_for_an_unknown_module_name_the_config_file_and_key(tmp_path, secret_file):
    config = write_config(tmp_path / "iqresponder.toml", NOWHERE, secret_file, [BUNDLED], "[handlers.options.pnig]\n")
    assert_one_line_failure(run_twistd("--config", str(config)), str(config), "handlers.options.pnig")


def test_component_reconnects_after_the_server_restarts_and_answers_again(server, tmp_path, secret_file):
    config = write_config(tmp_path / "restart.toml", server.endpoint, secret_file, [BUNDLED])
    process = ComponentProcess(config)
    try:
        process.wait_for_log("Authenticated as iq.localhost")
        before = XmppClient("alice@localhost/before-restart", "wonderland", server.c2s_port)
        assert before.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"
        before.close()

        server.restart()
        process.wait_for_log("Lost the connection")
        process.wait_for_log("Authenticated as iq.localhost", count=2, timeout=20)

        after = XmppClient("alice@localhost/after-restart", "wonderland", server.c2s_port)
        try:
            assert after.iq("<ping xmlns='urn:xmpp:ping'/>").get("type") == "result"
            assert after.iq("<query xmlns='jabber:iq:version'/>").get("type") == "result"
        finally:
            after.close()
    finally:
        process.stop()
