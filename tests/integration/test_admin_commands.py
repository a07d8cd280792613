"""The bundled admin commands (handlers/admin.py) through Prosody and ejabberd, with both client libraries.

The component runs with the bundled handlers and the README's example directory;
``[access] admins`` lists the test user, so it sees and runs the three admin
commands, and another user sees none and is refused.
"""

from __future__ import annotations

import pytest

from tests.integration.command_clients import CommandRefused
from tests.integration.conftest import PASSWORD, USER
from tests.integration.servers import EACH_SERVER

pytestmark = [
    pytest.mark.integration,
    pytest.mark.servers(*EACH_SERVER),
    pytest.mark.filterwarnings("ignore:send_iq_and_wait_for_reply is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:send\\(\\) on StanzaStream is deprecated:DeprecationWarning"),
]

ME = "iq.localhost"
ADMIN_COMMANDS = {"admin-status", "admin-reload", "admin-modules"}


@pytest.fixture(scope="module")
def extra_config():
    return f'[access]\nadmins = ["{USER}@localhost"]\n'


@pytest.fixture(scope="module")
def other_user(server) -> str:
    server.register("dave", PASSWORD)
    return "dave"


def test_an_admin_sees_and_runs_status_and_modules(connect):
    admin = connect()
    assert ADMIN_COMMANDS <= {node for _, node, _ in admin.commands(ME)}
    status = admin.execute(ME, "admin-status").reply
    assert (status.status, status.form) == ("completed", "result")
    assert status.fields["connections"] == ["iq.localhost: connected"]
    assert any(line.startswith("http://jabber.org/protocol/commands: ") for line in status.fields["requests"])
    assert status.fields["pending_queries"] == ["0"]
    modules = admin.execute(ME, "admin-modules").reply
    assert "ping: urn:xmpp:ping" in modules.fields["modules"]
    assert "custom_xep: custom-xep" in modules.fields["modules"]
    assert ADMIN_COMMANDS <= set(modules.fields["commands"])


def test_an_admin_reloads_the_handler_modules(connect, component):
    reply = connect().execute(ME, "admin-reload").reply
    assert (reply.status, reply.notes) == ("completed", (("info", "Reloaded the handler modules"),))
    component.wait_for_log("Reloaded")


def test_another_user_sees_none_and_may_run_none(connect, other_user):
    assert not ADMIN_COMMANDS & {node for _, node, _ in connect(other_user).commands(ME)}
    for node in sorted(ADMIN_COMMANDS):
        # A client each: slixmpp's workflow files an error without a sessionid under the empty id, and hands
        # the next such error to the first session's handler.
        with pytest.raises(CommandRefused) as refused:
            connect(other_user, node).execute(ME, node)
        assert refused.value.error[:2] == ("auth", "forbidden")
