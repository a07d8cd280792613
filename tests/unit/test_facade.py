"""What a handler sees of the component (component/facade.py): the IComponent role, and nothing of the service."""

import textwrap

from zope.interface.verify import verifyObject

from component.interfaces import IComponent
from component.testing import HandlerHarness, make_settings

SEEN = """
from component import responder

seen = []


def setup(component, options):
    seen.append(("setup", component))


@responder("urn:example:face", "get")
def face(request):
    seen.append(("request", request.component))
    return None
"""


def harness(tmp_path, settings=None):
    (tmp_path / "face.py").write_text(textwrap.dedent(SEEN))
    return HandlerHarness(tmp_path / "face.py", settings=settings)


def seen_by(harness):
    harness.ask("<iq type='get'><face xmlns='urn:example:face'/></iq>")
    return dict(harness.component.modules[0].module.seen)


def test_the_facade_a_module_gets_provides_every_member_of_the_role():
    facade = HandlerHarness().component.facade.for_module("example")
    assert verifyObject(IComponent, facade)


def test_responders_and_setup_get_their_modules_facade_and_nothing_of_the_service(tmp_path):
    h = harness(tmp_path)
    seen = seen_by(h)
    assert seen["request"] is seen["setup"]
    assert seen["request"].module == "face" and seen["request"].jid == h.component.facade.jid
    for machinery in ("link", "links", "router", "tracker", "registry", "stopService", "send"):
        assert not hasattr(seen["request"], machinery), machinery


def test_the_facade_offers_the_documented_members(tmp_path):
    h = harness(tmp_path, settings=make_settings(response_timeout=7.0))
    component = seen_by(h)["request"]
    assert component.jid == "iq.localhost"
    assert component.settings.response_timeout == 7.0
    assert component.disco is h.component.disco
    assert component.clock is h.clock


def test_settings_and_disco_are_read_from_the_running_service_so_a_reload_shows_through(tmp_path):
    h = harness(tmp_path)
    component = seen_by(h)["request"]
    before = component.disco
    config = tmp_path / "iqresponder.toml"
    config.write_text(
        f'[component]\njid = "iq.localhost"\nsecret = "s"\n\n[handlers]\ndirectories = ["{tmp_path}"]\n'
        "\n[disco]\nprovider_timeout = 3.5\n"
    )
    h.component.settings = make_settings(path=config)
    assert h.component.reload()
    assert component.disco is h.component.disco is not before
    assert component.settings.disco_provider_timeout == 3.5
