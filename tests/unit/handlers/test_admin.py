"""handlers/admin.py: the operators' commands, through the test kit's command driver."""

from pathlib import Path

import pytest

from component.config import load
from component.testing import HandlerHarness, make_settings

HANDLERS = Path(__file__).parents[3] / "handlers"
ADMIN, USER = "ops@localhost/desk", "alice@localhost/phone"


@pytest.fixture
def harness():
    return HandlerHarness(HANDLERS, settings=make_settings(admins=("ops@localhost",)))


def test_status_tells_uptime_connections_requests_and_pending_queries(harness):
    harness.component.startService()
    harness.ask("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
    harness.ask("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>")
    harness.advance(3725)
    step = harness.command("admin-status", sender=ADMIN).execute()
    assert (step.status, step.form_type) == ("completed", "result")
    assert step.fields["uptime"] == ["0 d 01:02:05"]
    assert step.fields["connections"] == ["iq.localhost: connected"]
    assert "urn:xmpp:ping: 2" in step.fields["requests"]
    assert step.fields["pending_queries"] == ["0"]


def test_modules_lists_each_module_with_its_namespaces_and_the_commands(harness):
    step = harness.command("admin-modules", sender=ADMIN).execute()
    assert "ping: urn:xmpp:ping" in step.fields["modules"]
    assert "version: jabber:iq:version" in step.fields["modules"]
    assert step.fields["commands"] == ["admin-modules", "admin-reload", "admin-status"]


def test_reload_reloads_the_handler_modules_as_sighup_does(tmp_path):
    (tmp_path / "extra.py").write_text("")
    config = tmp_path / "iqresponder.toml"
    config.write_text(
        f'[component]\njid = "iq.localhost"\nsecret = "s"\n[handlers]\ndirectories = ["{HANDLERS}", "{tmp_path}"]\n'
        '[access]\nadmins = ["ops@localhost"]\n'
    )
    harness = HandlerHarness(HANDLERS, tmp_path, settings=load(config, environ={}))
    (tmp_path / "extra.py").write_text(
        "from component import responder\n\n@responder('urn:example:new', 'get')\ndef new(request):\n    return None\n"
    )
    assert "service-unavailable" in harness.ask("<iq type='get'><new xmlns='urn:example:new'/></iq>")
    step = harness.command("admin-reload", sender=ADMIN).execute()
    assert step.notes == [("info", "Reloaded the handler modules")]
    assert harness.ask("<iq type='get'><new xmlns='urn:example:new'/></iq>") == (
        "<iq type='result' id='3' from='iq.localhost' to='tester@localhost/test'/>"
    )


@pytest.mark.parametrize("node", ["admin-status", "admin-reload", "admin-modules"])
def test_only_admins_may_run_them(harness, node):
    assert harness.command(node, sender=USER).execute().error[:2] == ("auth", "forbidden")
