"""``iqresponder-probe`` as operators run it: the installed console script, a child process that logs in
to each real server as alice and asks the component under twistd, with every exit status it promises."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from private_servers.base import free_port
from tests.integration.conftest import EXAMPLES, PASSWORD, ROOT, USER
from tests.integration.servers import EACH_SERVER

pytestmark = [pytest.mark.integration, pytest.mark.servers(*EACH_SERVER)]

PASSWORD_VARIABLE = "IQRESPONDER_PROBE_PASSWORD"
PROBE = Path(sys.executable).with_name("iqresponder-probe")  # installed beside the interpreter running the tests
RUN_TIMEOUT = 30  # seconds; a bound on every probe run, well above its own --timeout

SILENT_HANDLER = '''
from twisted.internet import defer

from component import responder


@responder("urn:example:silent", "get")
def never(request):
    """Answer nothing: the component times this out only after [limits] handler_timeout."""
    return defer.Deferred()
'''


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("probe-handlers")
    (directory / "custom_xep.py").write_text((EXAMPLES / "custom_xep.py").read_text())
    (directory / "silent.py").write_text(SILENT_HANDLER)
    return directory


@pytest.fixture(scope="module")
def extra_config() -> str:
    # Longer than the probe's --timeout in the silent test; short enough not to hold up the component's shutdown.
    return "[limits]\nhandler_timeout = 3.0\n"


@pytest.fixture(scope="module")
def password_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "password.txt"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


def probe_command(*arguments: str, port: int, password_file: Path | None) -> list[str]:
    login = ["--jid", f"{USER}@localhost", "--host", "127.0.0.1", "--port", str(port)]
    if password_file is not None:
        login += ["--password-file", str(password_file)]
    return [str(PROBE), *login, *arguments]


def environment(**extra: str) -> dict[str, str]:
    """The test's environment without a password of the caller's, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if k != PASSWORD_VARIABLE}, **extra}


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, env=env or environment(), capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )


@pytest.fixture
def probe(server, component, password_file) -> Callable[..., subprocess.CompletedProcess]:
    """Run the probe against the test's server as alice; ``password_file=`` changes the password."""

    def probe(*arguments: str, password_file: Path = password_file) -> subprocess.CompletedProcess:
        return run(probe_command(*arguments, port=server.c2s_port, password_file=password_file))

    return probe


@contextmanager
def probe_on_a_silent_server(password_file: Path, timeout: str) -> Iterator[subprocess.Popen]:
    """A probe connected to a listener on 127.0.0.1 that accepts and never speaks; killed if it outlives the block."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        silent.settimeout(RUN_TIMEOUT)
        port = silent.getsockname()[1]
        command = probe_command("--timeout", timeout, "iq.localhost", "ping", port=port, password_file=password_file)
        process = subprocess.Popen(command, cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            connection, _ = silent.accept()  # the probe has read its password and is waiting for the server
            with connection:
                yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=RUN_TIMEOUT)


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_disco_info_of_the_component_lists_ping(probe):
    result = probe("iq.localhost", "disco-info")
    assert result.returncode == 0, result.stderr
    assert '<feature var="urn:xmpp:ping"/>' in result.stdout
    assert result.stdout.startswith("<iq") and 'type="result"' in result.stdout
    assert result.stderr == ""


def test_disco_info_of_an_unknown_node_is_an_error_reply(probe):
    result = probe("iq.localhost", "disco-info", "--node", "no-such-node")
    assert result.returncode == 1
    assert "item-not-found" in one_line(result)
    assert 'node="no-such-node"' in result.stdout  # the error stanza, echoing the query


def test_disco_items_of_the_component_is_a_result(probe):
    result = probe("iq.localhost", "disco-items")
    assert result.returncode == 0, result.stderr
    assert 'xmlns="http://jabber.org/protocol/disco#items"' in result.stdout


def test_version_names_iqresponder(probe):
    result = probe("iq.localhost", "version")
    assert result.returncode == 0, result.stderr
    assert "<name>iqresponder</name>" in result.stdout


def test_ping_exits_0(probe):
    result = probe("iq.localhost", "ping")
    assert result.returncode == 0, result.stderr
    assert 'from="iq.localhost"' in result.stdout


def test_password_from_the_environment_and_host_from_the_jid(server, component):
    command = probe_command("iq.localhost", "ping", port=server.c2s_port, password_file=None)
    command.remove("--host")
    command.remove("127.0.0.1")  # so the probe connects to the JID's domain, localhost
    result = run(command, env=environment(**{PASSWORD_VARIABLE: PASSWORD}))
    assert result.returncode == 0, result.stderr


def test_raw_payload_in_an_unknown_namespace_is_service_unavailable(probe):
    result = probe("iq.localhost", "raw", "--xml", "<query xmlns='urn:example:nobody'/>")
    assert result.returncode == 1
    assert "cancel service-unavailable" in one_line(result)
    assert 'type="error"' in result.stdout


def test_raw_whole_iq_set_then_payload_get(probe):
    stored = probe(
        "iq.localhost",
        "raw",
        "--xml",
        "<iq type='set'><query xmlns='custom-xep'><item key='colour'>blue</item></query></iq>",
    )
    assert stored.returncode == 0, stored.stderr
    fetched = probe("iq.localhost", "raw", "--xml", "<query xmlns='custom-xep'><item key='colour'/></query>")
    assert fetched.returncode == 0, fetched.stderr
    assert ">blue</item>" in fetched.stdout


def test_wrong_password_exits_2_with_one_line(probe, tmp_path):
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not-" + PASSWORD)
    result = probe("iq.localhost", "ping", password_file=wrong)
    assert result.returncode == 2
    assert "not-authorized" in one_line(result)
    assert result.stdout == ""


def test_tls_required_refuses_a_server_without_starttls(probe):
    result = probe("--tls", "required", "iq.localhost", "ping")
    assert result.returncode == 2
    assert "STARTTLS" in one_line(result)


def test_a_target_that_never_answers_exits_3_after_the_timeout(probe):
    result = probe("--timeout", "1", "iq.localhost", "raw", "--xml", "<query xmlns='urn:example:silent'/>")
    assert result.returncode == 3
    assert "no reply from iq.localhost within 1 s" in one_line(result)


def test_a_server_that_accepts_and_never_speaks_exits_3(password_file):
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        result = run(probe_command("--timeout", "0.5", "iq.localhost", "ping", port=port, password_file=password_file))
    assert result.returncode == 3
    assert "no login" in one_line(result)


def test_a_port_where_nothing_listens_exits_2(password_file):
    port = free_port()
    result = run(probe_command("iq.localhost", "ping", port=port, password_file=password_file))
    assert result.returncode == 2
    assert f"cannot connect to 127.0.0.1:{port}" in one_line(result)


def test_the_password_never_appears_in_the_process_arguments(password_file):
    with probe_on_a_silent_server(password_file, timeout="2") as process:
        arguments = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{process.pid}/environ").read_bytes()
        process.communicate(timeout=RUN_TIMEOUT)
    assert str(password_file).encode() in arguments
    assert not any(PASSWORD.encode() in argument for argument in arguments)
    assert PASSWORD.encode() not in environ
    assert process.returncode == 3


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_waiting_exits_3_not_0(signal_number, password_file):
    with probe_on_a_silent_server(password_file, timeout="20") as process:
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    assert process.returncode == 3
    assert stderr.decode().strip() == "interrupted"


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["iq.localhost", "raw"], "raw needs --xml"),
        (["iq.localhost", "ping", "--node", "x"], "--node is only for"),
        (["iq.localhost", "raw", "--xml", "<query"], "not well-formed"),
        (["iq.localhost", "raw", "--xml", "<iq type='result'/>"], "type='get' or type='set'"),
        (["iq.localhost", "ping", "--password", PASSWORD], "--password-file"),
    ],
)
def test_bad_usage_exits_2_with_one_line_before_connecting(arguments, complaint, password_file):
    command = probe_command(*arguments, port=free_port(), password_file=password_file)
    result = run(command)
    assert result.returncode == 2
    assert complaint in one_line(result)
    assert PASSWORD not in result.stderr


def test_no_password_at_all_exits_2(server):
    command = probe_command("iq.localhost", "ping", port=server.c2s_port, password_file=None)
    result = run(command)
    assert result.returncode == 2
    assert PASSWORD_VARIABLE in one_line(result)


@pytest.mark.parametrize("command", [[str(PROBE)], [sys.executable, "-m", "component.probe"]])
def test_help_names_the_console_script_and_exits_0(command):
    result = run([*command, "--help"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: iqresponder-probe ") and "TARGET_JID" in result.stdout
