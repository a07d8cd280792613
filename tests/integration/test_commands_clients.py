"""Ad-hoc commands (XEP-0050) through Prosody and ejabberd, run by two independent client libraries.

Each test runs once per server and once per library: slixmpp's ``xep_0050``
plugin and aioxmpp's ``AdHocClient`` (tests/integration/command_clients.py), each
parsing our replies itself. The component runs a three-stage command (pick a
drink, give a city, confirm), an admins-only one, and one that the
configuration gives to another user, with sessions that expire after
``SESSION_TIMEOUT`` seconds idle.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.command_clients import CommandClient, CommandRefused, CommandSession
from tests.integration.conftest import PASSWORD, USER
from tests.integration.servers import EACH_SERVER

pytestmark = [
    pytest.mark.integration,
    pytest.mark.servers(*EACH_SERVER),
    # aioxmpp 0.13's ClientSession calls its own deprecated stream methods.
    pytest.mark.filterwarnings("ignore:send_iq_and_wait_for_reply is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:send\\(\\) on StanzaStream is deprecated:DeprecationWarning"),
]

ME = "iq.localhost"
OTHER_USER = "bob"
SESSION_TIMEOUT = 3.0
BAD_SESSION = ("modify", "bad-request", "bad-sessionid")
EXPIRED = ("cancel", "not-allowed", "session-expired")
BAD_PAYLOAD = ("modify", "bad-request", "bad-payload")

COMMANDS = '''
"""Commands for the client tests: a drink order in three stages, an admins-only wipe, and an audit for carol."""

from component import Done, Form, Last, Note, command
from component.dataforms import boolean, list_single, text_single


class Pick(Form, form_type="urn:example:order", title="Order a drink"):
    drink: str = list_single("Drink", options=["tea", "coffee"], required=True)
    cups: int = text_single("Cups", datatype="xs:int", range=(1, 10), required=True)


class Address(Form, form_type="urn:example:order#address"):
    city: str = text_single("City", regex="[A-Z][a-z]+", required=True)


class Confirm(Form, form_type="urn:example:order#confirm"):
    sure: bool = boolean("Place the order?", required=True)


class Receipt(Form, form_type="urn:example:order#receipt", title="Receipt"):
    drink: str | None = text_single("Drink")
    cups: int | None = text_single("Cups", datatype="xs:int")
    city: str | None = text_single("City")


@command("order", "Order a drink", access="local")
class Order:
    async def start(self, session):
        return Pick()

    async def pick(self, session, form: Pick):
        session.data.update(drink=form.drink, cups=form.cups)
        return Address()

    async def address(self, session, form: Address):
        session.data["city"] = form.city
        return Last(Confirm())

    async def confirm(self, session, form: Confirm):
        if not form.sure:
            return Done(Note("Nothing ordered", "warn"))
        order = session.data
        return Done(f"Ordered {order['cups']} {order['drink']} for {order['city']}", form=Receipt(**order))


@command("wipe", "Wipe the caches")
async def wipe(session):
    return Done("Wiped")


@command("audit", "Audit the books", access="everyone")
async def audit(session):
    return Done("Audited")
'''


@pytest.fixture(scope="module")
def handler_directory(tmp_path_factory):
    directory = tmp_path_factory.mktemp("command-handlers")
    (directory / "orders.py").write_text(COMMANDS)
    return directory


@pytest.fixture(scope="module")
def extra_config():
    return f"""
[access]
admins = ["{USER}@localhost"]

[access.commands]
audit = ["carol@localhost"]

[commands]
session_timeout = {SESSION_TIMEOUT}

[limits]
# The expiry test asks again and again, as fast as replies come, until the session has expired.
sender_rate = 100000.0
sender_burst = 100000
"""


@pytest.fixture(scope="module")
def other_user(server) -> str:
    server.register(OTHER_USER, PASSWORD)
    return OTHER_USER


def refusal(step, *args, **values) -> CommandRefused:
    """The error ``step(*args, **values)`` was answered with (the test fails if it was answered otherwise)."""
    with pytest.raises(CommandRefused) as refused:
        step(*args, **values)
    return refused.value


def form_type(reply) -> str:
    return reply.fields["FORM_TYPE"][0]


def to_the_address_stage(client: CommandClient) -> CommandSession:
    session = client.execute(ME, "order")
    assert form_type(session.next(drink="tea", cups=2)) == "urn:example:order#address"
    return session


def test_the_list_holds_the_commands_each_user_may_run_and_nothing_else_runs(connect, other_user):
    alice, bob = connect(), connect(other_user)
    ours = {"order", "wipe", "audit"}
    listed = {item for item in alice.commands(ME) if item[1] in ours}
    assert listed == {(ME, "order", "Order a drink"), (ME, "wipe", "Wipe the caches")}
    assert bob.commands(ME) == {(ME, "order", "Order a drink")}

    assert refusal(bob.execute, ME, "wipe").error == ("auth", "forbidden", None)
    assert refusal(alice.execute, ME, "audit").error == ("auth", "forbidden", None)
    assert alice.execute(ME, "wipe").reply.notes == (("info", "Wiped"),)


def test_a_multi_stage_command_goes_back_with_prev_and_ends_with_cancel(connect):
    client = connect()
    session = client.execute(ME, "order")
    first = session.reply
    assert (first.status, first.actions, first.default, first.form) == ("executing", {"next"}, "next", "form")
    assert form_type(first) == "urn:example:order"
    assert {"drink", "cups"} <= set(first.fields)

    second = session.next(drink="tea", cups=2)
    assert (second.status, second.actions, second.default) == ("executing", {"prev", "next"}, "next")
    assert form_type(second) == "urn:example:order#address"

    back = session.prev()
    assert (back.actions, back.default, form_type(back)) == ({"next"}, "next", "urn:example:order")

    assert form_type(session.next(drink="coffee", cups=3)) == "urn:example:order#address"
    last = session.next(city="Oslo")
    assert (last.actions, last.default, form_type(last)) == (
        {"prev", "complete"},
        "complete",
        "urn:example:order#confirm",
    )

    canceled = session.cancel()
    assert canceled.status == "canceled"
    assert {first.sessionid, second.sessionid, back.sessionid, last.sessionid, canceled.sessionid} == {first.sessionid}
    refused = refusal(client.send, ME, "order", first.sessionid, "complete", sure=True)
    assert refused.error == EXPIRED


def test_a_command_completes_with_what_every_stage_gathered(connect):
    client = connect()
    session = to_the_address_stage(client)
    session.next(city="Oslo")
    done = session.complete(sure=True)
    assert (done.status, done.sessionid, done.actions) == ("completed", session.reply.sessionid, frozenset())
    assert done.notes == (("info", "Ordered 2 tea for Oslo"),)
    assert done.form == "result"
    assert {var: done.fields[var] for var in ("drink", "cups", "city")} == {
        "drink": ["tea"],
        "cups": ["2"],
        "city": ["Oslo"],
    }
    refused = refusal(client.send, ME, "order", done.sessionid, "next", city="Oslo")
    assert refused.error == EXPIRED


def test_an_idle_session_expires(connect):
    """Left alone for SESSION_TIMEOUT, a session is answered session-expired: until then, the probe
    (a form that does not validate, which leaves the session as it is) is refused for its form.

    The probe goes again as soon as its reply is in (the sender's rate limit is raised for it).
    """
    client = connect()
    session = client.execute(ME, "order")
    last_step = time.monotonic()
    session.next(drink="tea", cups=2)
    deadline = last_step + 3 * SESSION_TIMEOUT
    while True:
        refused = refusal(session.next, city="not a city")
        if refused.error != BAD_PAYLOAD:
            break
        assert time.monotonic() < deadline, f"the session did not expire within {3 * SESSION_TIMEOUT} s"
    idle = time.monotonic() - last_step
    assert refused.error == EXPIRED
    assert idle >= SESSION_TIMEOUT, f"expired after {idle:.2f} s idle"

    refused = refusal(client.send, ME, "order", session.reply.sessionid, "next", city="Oslo")
    assert refused.error == EXPIRED, "a valid form does not revive it"
    assert client.execute(ME, "order").reply.status == "executing"


def test_another_jids_session_is_refused_as_if_it_did_not_exist(connect, other_user):
    owner = connect(resource="owner")
    session = to_the_address_stage(owner)
    sessionid = session.reply.sessionid
    for intruder in (connect(resource="intruder"), connect(other_user)):
        unknown = refusal(intruder.send, ME, "order", "no-such-session", "next", city="Oslo")
        assert unknown.error == BAD_SESSION
        for action, values in (("next", {"city": "Oslo"}), ("prev", {}), ("cancel", {})):
            refused = refusal(intruder.send, ME, "order", sessionid, action, **values)
            assert (refused.error, refused.text) == (unknown.error, unknown.text), action

    last = session.next(city="Bergen")
    assert form_type(last) == "urn:example:order#confirm"
    assert session.complete(sure=True).notes == (("info", "Ordered 2 tea for Bergen"),)


@pytest.mark.parametrize(
    ("values", "field", "reason"),
    [
        ({"drink": "tea", "cups": 11}, "cups", "above the maximum"),
        ({"drink": "tea", "cups": "two"}, "cups", "'two'"),
        ({"drink": "beer", "cups": 1}, "drink", "not one of the options"),
        ({"cups": 1}, "drink", "required"),
    ],
)
def test_an_invalid_form_is_refused_naming_the_field_and_the_corrected_one_is_taken(connect, values, field, reason):
    client = connect()
    session = client.execute(ME, "order")
    refused = refusal(session.next, **values)
    assert refused.error == BAD_PAYLOAD
    assert refused.text.startswith(f"{field} (") and reason in refused.text, refused.text

    assert form_type(session.next(drink="coffee", cups=10)) == "urn:example:order#address"
    assert refusal(session.next, city="oslo").text.startswith("city (City): ")
    session.next(city="Oslo")
    assert refusal(session.complete, sure="maybe").text.startswith("sure (Place the order?): ")
    assert session.complete(sure="1").notes == (("info", "Ordered 10 coffee for Oslo"),)
