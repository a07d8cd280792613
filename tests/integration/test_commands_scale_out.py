"""Ad-hoc command sessions shared by instances: three component processes under one name on ejabberd, one
PostgreSQL database.

Each instance also has its own name (``--instance-jid iq-N.localhost``), so the
client sends each stage of a session to the instance it picks: a session started
through one continues through the others, and one that ended, by cancel or by
idling out, is refused by every one. The commands are the client tests' own
(tests/integration/test_commands_clients.py); the client is slixmpp's ``xep_0050``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from tests.integration.command_clients import CommandRefused, SlixmppCommands
from tests.integration.conftest import BUNDLED, PASSWORD, USER
from tests.integration.processes import ComponentProcess, instances, write_config
from tests.integration.test_commands_clients import COMMANDS, EXPIRED, SESSION_TIMEOUT

pytestmark = [pytest.mark.integration, pytest.mark.servers("ejabberd-tcp")]

SHARED = "iq.localhost"
INSTANCES = ("iq-1.localhost", "iq-2.localhost", "iq-3.localhost")


@pytest.fixture(scope="module")
def component_names() -> tuple[str, ...]:
    return (SHARED, *INSTANCES)


@pytest.fixture
def running(tmp_path, server, secret_file, postgresql_url) -> Iterator[list[ComponentProcess]]:
    """Three instances under one name, each also under its own, keeping sessions in one PostgreSQL database."""
    (tmp_path / "orders.py").write_text(COMMANDS)
    extra = (
        f'[store]\nurl = "{postgresql_url}"\n\n[commands]\nsession_timeout = {SESSION_TIMEOUT}\n'
        "[limits]\nsender_rate = 100000.0\nsender_burst = 100000\n"  # the expiry probe asks as fast as replies come
    )
    config = write_config(tmp_path / "iqresponder.toml", server.endpoint, secret_file, [BUNDLED, tmp_path], extra)
    with instances(config, SHARED, INSTANCES) as processes:
        yield processes


@pytest.fixture
def client(running, server) -> Iterator[SlixmppCommands]:
    commands = SlixmppCommands(f"{USER}@localhost/orders", PASSWORD, server.c2s_port)
    yield commands
    commands.close()


def refused_everywhere(client: SlixmppCommands, sessionid: str) -> dict[str, tuple[str, str, str | None]]:
    """What each instance, and the shared name, answers to a valid next stage of the session."""
    answers = {}
    for name in (*INSTANCES, SHARED):
        with pytest.raises(CommandRefused) as refused:
            client.send(name, "order", sessionid, "next", drink="tea", cups=1)
        answers[name] = refused.value.error
    return answers


def test_each_stage_of_a_session_goes_to_another_instance_and_it_completes(client):
    for name in INSTANCES:
        assert (name, "order", "Order a drink") in client.commands(name), "each instance lists it under its own name"

    started = client.execute(INSTANCES[0], "order")
    sessionid = started.reply.sessionid
    address = client.send(INSTANCES[1], "order", sessionid, "next", drink="tea", cups=2)
    assert (address.fields["FORM_TYPE"], address.actions) == (["urn:example:order#address"], {"prev", "next"})
    back = client.send(INSTANCES[2], "order", sessionid, "prev")
    assert (back.fields["FORM_TYPE"], back.actions) == (["urn:example:order"], {"next"})
    client.send(INSTANCES[0], "order", sessionid, "next", drink="coffee", cups=4)
    confirm = client.send(INSTANCES[1], "order", sessionid, "next", city="Oslo")
    assert (confirm.fields["FORM_TYPE"], confirm.default) == (["urn:example:order#confirm"], "complete")
    done = client.send(INSTANCES[2], "order", sessionid, "complete", sure=True)

    assert (done.status, done.notes) == ("completed", (("info", "Ordered 4 coffee for Oslo"),))
    assert {address.sessionid, back.sessionid, confirm.sessionid, done.sessionid} == {sessionid}
    assert set(refused_everywhere(client, sessionid).values()) == {EXPIRED}


def test_a_session_canceled_through_one_instance_is_refused_by_every_instance(client):
    session = client.execute(INSTANCES[2], "order")
    session.next(drink="tea", cups=2)
    canceled = client.send(INSTANCES[0], "order", session.reply.sessionid, "cancel")
    assert canceled.status == "canceled"
    assert set(refused_everywhere(client, session.reply.sessionid).values()) == {EXPIRED}


def test_a_session_that_idled_out_is_refused_by_every_instance(client):
    """The probe, a form that does not validate, leaves the session as it is; it goes to each
    instance in turn, again as soon as each reply is in, until one says the session expired."""
    session = client.execute(INSTANCES[1], "order")
    last_step = time.monotonic()
    session.next(drink="tea", cups=2)
    sessionid = session.reply.sessionid
    deadline = last_step + 3 * SESSION_TIMEOUT
    for turn in itertools.count():
        with pytest.raises(CommandRefused) as refused:
            client.send(INSTANCES[turn % 3], "order", sessionid, "next", city="not a city")
        if refused.value.application != "bad-payload":
            break
        assert time.monotonic() < deadline, f"the session did not expire within {3 * SESSION_TIMEOUT} s"
    assert refused.value.error == EXPIRED
    assert time.monotonic() - last_step >= SESSION_TIMEOUT
    assert set(refused_everywhere(client, sessionid).values()) == {EXPIRED}
