"""slixmpp's command workflow finds an error reply's session by the <command/> echoed in it, also when
the submitted form was too large to echo whole (the router then echoes the element with its attributes)."""

import pytest

from tests.integration.command_clients import CommandRefused, SlixmppCommands
from tests.integration.conftest import PASSWORD, USER
from tests.integration.test_commands_clients import (  # noqa: F401
    BAD_PAYLOAD,
    ME,
    extra_config,
    handler_directory,
)

pytestmark = [pytest.mark.integration, pytest.mark.servers("prosody-tcp")]


def test_a_refused_large_submission_reaches_slixmpps_workflow(server, component):
    client = SlixmppCommands(f"{USER}@localhost/echo", PASSWORD, server.c2s_port)
    try:
        session = client.execute(ME, "order")
        with pytest.raises(CommandRefused) as refused:
            session.next(drink="beer", cups=1, remark="x" * 400)
        assert refused.value.error == BAD_PAYLOAD
    finally:
        client.close()
