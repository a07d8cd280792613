"""Ad-hoc commands (component/commands.py) as a client meets them, through the test kit's command driver."""

import textwrap
from pathlib import Path

import pytest

from component.testing import HandlerHarness, make_settings

DISCO = Path(__file__).parents[2] / "handlers" / "disco.py"
ADMIN = "ops@localhost/desk"
USER = "alice@localhost/phone"

MODULE = (
    (Path(__file__).parents[2] / "examples" / "handlers" / "reboot.py").read_text()
    + """

@command("uptime", "Uptime", access="everyone")
async def uptime(session):
    return Done("Up for a while")
"""
)


@pytest.fixture
def harness(tmp_path):
    (tmp_path / "ops.py").write_text(textwrap.dedent(MODULE))
    return HandlerHarness(DISCO, tmp_path / "ops.py", settings=make_settings(admins=("ops@localhost",)))


def test_a_multi_stage_command_runs_to_completion(harness):
    run = harness.command("reboot", sender=ADMIN)
    first = run.execute()
    assert (first.status, first.actions, first.default) == ("executing", ("next",), "next")
    assert first.fields["FORM_TYPE"] == ["urn:example:reboot"]
    assert first.field_types["host"] == "list-single"
    second = run.next(host="web2", delay="30")
    assert (second.status, second.actions, second.default) == ("executing", ("prev", "complete"), "complete")
    assert second.fields["FORM_TYPE"] == ["urn:example:reboot#confirm"]
    done = run.complete(sure=True)
    assert (done.status, done.notes) == ("completed", [("info", "Rebooting web2")])
    assert done.sessionid == first.sessionid


def test_execute_takes_the_stages_default_action(harness):
    run = harness.command("reboot", sender=ADMIN)
    run.execute()
    assert run.execute(host="web1").default == "complete"
    assert run.execute(sure=False).notes == [("warn", "Nothing done")]


def test_prev_goes_back_to_the_previous_form_and_next_goes_on_again(harness):
    run = harness.command("reboot", sender=ADMIN)
    first = run.execute()
    run.next(host="web1")
    back = run.prev()
    assert (back.status, back.actions) == ("executing", ("next",))
    assert back.fields == first.fields
    assert run.next(host="web2").default == "complete"
    assert "web2" in run.complete(sure=True).notes[0][1]


def test_cancel_ends_the_session_and_its_id_is_then_expired(harness):
    run = harness.command("reboot", sender=ADMIN)
    run.execute()
    assert run.cancel().status == "canceled"
    assert run.next(host="web1").error == ("cancel", "not-allowed", "session-expired", "This session has ended")


def test_a_single_stage_command_completes_at_once_with_a_session_id(harness):
    step = harness.command("uptime", sender=USER).execute()
    assert (step.status, step.notes) == ("completed", [("info", "Up for a while")])
    assert step.sessionid


@pytest.mark.parametrize(
    ("send", "error"),
    [
        (lambda run: run.send("dance"), ("modify", "bad-request", "malformed-action")),
        (lambda run: run.send("next"), ("modify", "bad-request", "bad-action")),
        (lambda run: run.send("prev"), ("modify", "bad-request", "bad-action")),
        (lambda run: run.send("cancel"), ("modify", "bad-request", "bad-sessionid")),
        (
            lambda run: run.send("next", {"host": "web1"}, sessionid="forged"),
            ("modify", "bad-request", "bad-sessionid"),
        ),
    ],
)
def test_wrong_actions_and_ids_get_xep_0050s_errors(harness, send, error):
    assert send(harness.command("reboot", sender=ADMIN)).error[:3] == error


def test_a_stage_refuses_an_action_it_does_not_offer(harness):
    run = harness.command("reboot", sender=ADMIN)
    run.execute()
    assert run.complete(host="web1").error[:3] == ("modify", "bad-request", "bad-action")
    assert run.prev().error[:3] == ("modify", "bad-request", "bad-action")


def test_an_invalid_form_is_bad_payload_naming_the_field_and_the_stage_stays(harness):
    run = harness.command("reboot", sender=ADMIN)
    run.execute()
    refused = run.next(host="web3")
    assert refused.error[:3] == ("modify", "bad-request", "bad-payload")
    assert "host" in refused.error[3]
    assert "delay" in run.next(host="web1", delay="4000").error[3]
    assert run.next().error[:3] == ("modify", "bad-request", "bad-payload")
    assert run.next(host="web1", delay="10").default == "complete"


def test_another_sender_cannot_continue_or_cancel_a_session(harness):
    run = harness.command("reboot", sender=ADMIN)
    run.execute()
    other_resource = harness.command("reboot", sender="ops@localhost/laptop")
    assert other_resource.send("next", {"host": "web1"}, sessionid=run.sessionid).error[2] == "bad-sessionid"
    assert other_resource.send("cancel", sessionid=run.sessionid).error[2] == "bad-sessionid"
    assert run.next(host="web1").status == "executing", "the owner's session is untouched"


def test_a_session_expires_after_its_idle_time(harness):
    run = harness.command("reboot", sender=ADMIN)
    run.execute()
    harness.advance(601)
    assert run.next(host="web1").error[:3] == ("cancel", "not-allowed", "session-expired")


def test_only_the_allowed_may_run_a_command(harness):
    assert harness.command("reboot", sender=USER).execute().error[:2] == ("auth", "forbidden")
    assert harness.command("uptime", sender=USER).execute().status == "completed"


def test_an_unknown_node_is_item_not_found(harness):
    assert harness.command("nothing", sender=ADMIN).execute().error[:2] == ("cancel", "item-not-found")


def test_disco_lists_exactly_the_commands_the_asker_may_run(harness):
    query = "<iq type='get'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>"
    admin = harness.ask(query, sender=ADMIN)
    user = harness.ask(query, sender=USER)
    assert "node='reboot'" in admin.replace('"', "'") and "node='uptime'" in admin.replace('"', "'")
    assert "node='reboot'" not in user.replace('"', "'") and "node='uptime'" in user.replace('"', "'")
    info = harness.ask("<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>", sender=USER)
    assert "http://jabber.org/protocol/commands" in info


def test_a_command_node_answers_disco_info_as_a_command_node(harness):
    reply = harness.ask(
        "<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='uptime'/></iq>", sender=USER
    )
    assert "category='automation'" in reply.replace('"', "'") and "type='command-node'" in reply.replace('"', "'")
    hidden = harness.ask(
        "<iq type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='reboot'/></iq>", sender=USER
    )
    assert "<forbidden" in hidden


def test_a_sender_holds_a_bounded_number_of_sessions_the_oldest_ends_first(tmp_path):
    (tmp_path / "ops.py").write_text(textwrap.dedent(MODULE))
    harness = HandlerHarness(
        tmp_path / "ops.py", settings=make_settings(admins=("ops@localhost",), command_sessions_per_sender=2)
    )
    runs = [harness.command("reboot", sender=ADMIN) for _ in range(3)]
    for n, run in enumerate(runs):
        run.execute()
        harness.advance(1 + n)
    assert runs[0].next(host="web1").error[2] == "session-expired"
    assert runs[1].next(host="web1").status == "executing"
    assert runs[2].next(host="web1").status == "executing"


def test_the_configuration_overrides_who_may_run_a_command(tmp_path):
    (tmp_path / "ops.py").write_text(MODULE)
    settings = make_settings(
        admins=("ops@localhost",), command_access={"reboot": ("alice@localhost",), "uptime": ("admins",)}
    )
    harness = HandlerHarness(tmp_path / "ops.py", settings=settings)
    assert harness.command("reboot", sender=USER).execute().status == "executing"
    assert harness.command("reboot", sender=ADMIN).execute().error[:2] == ("auth", "forbidden")
    assert harness.command("uptime", sender=USER).execute().error[:2] == ("auth", "forbidden")
    assert harness.command("uptime", sender=ADMIN).execute().status == "completed"


def test_local_means_the_servers_own_users_and_the_admins(tmp_path):
    (tmp_path / "ops.py").write_text(MODULE)
    settings = make_settings(admins=("ops@elsewhere.example",), command_access={"uptime": ("local",)})
    harness = HandlerHarness(tmp_path / "ops.py", settings=settings)
    assert harness.command("uptime", sender="bob@localhost/x").execute().status == "completed"
    assert harness.command("uptime", sender="ops@elsewhere.example/x").execute().status == "completed"
    assert harness.command("uptime", sender="eve@elsewhere.example/x").execute().error[1] == "forbidden"


def test_a_node_declared_by_two_modules_stops_start_up_naming_both_files(tmp_path):
    from component.loader import HandlerLoadError

    for name in ("one", "two"):
        (tmp_path / f"{name}.py").write_text(
            "from component import Done, command\n\n@command('same', 'Same')\nasync def same(session):\n"
            "    return Done('x')\n"
        )
    with pytest.raises(HandlerLoadError, match=r"'same' is declared by both .*one\.py and .*two\.py"):
        HandlerHarness(tmp_path)


def test_two_stages_taking_the_same_form_are_refused_at_import(tmp_path):
    from component.loader import HandlerLoadError

    (tmp_path / "twice.py").write_text(
        MODULE
        + "\n\n@command('twice', 'Twice')\nclass Twice:\n    async def start(self, session):\n        return Target()\n\n"
        "    async def a(self, session, form: Target):\n        return Done()\n\n"
        "    async def b(self, session, form: Target):\n        return Done()\n"
    )
    with pytest.raises(HandlerLoadError, match="two stages take the form Target"):
        HandlerHarness(tmp_path / "twice.py")


def test_session_ids_are_144_random_bits_never_repeated(harness):
    ids = {harness.command("uptime", sender=f"user{n}@localhost/r").execute().sessionid for n in range(50)}
    assert len(ids) == 50
    assert all(len(sessionid) == 24 and sessionid.replace("-", "").replace("_", "").isalnum() for sessionid in ids)


def test_a_session_whose_stage_a_reload_removed_is_expired(tmp_path):
    from component.config import load

    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "ops.py").write_text(MODULE)
    config = tmp_path / "iqresponder.toml"
    config.write_text(
        f'[component]\njid = "iq.localhost"\nsecret = "s"\n[handlers]\ndirectories = ["{handlers}"]\n'
        '[access]\nadmins = ["ops@localhost"]\n'
    )
    harness = HandlerHarness(handlers, settings=load(config, environ={}))
    run = harness.command("reboot", sender=ADMIN)
    run.execute()
    (handlers / "ops.py").write_text(MODULE.replace("class Target(", "class Choice(").replace("Target", "Choice"))
    assert harness.component.reload()
    assert run.next(host="web1").error[:3] == ("cancel", "not-allowed", "session-expired")
