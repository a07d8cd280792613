"""component.store as handlers meet it: a store per module, its errors as replies, and its configuration.

The behaviour of the store itself (values, compare-and-set, listing, expiry) is
held equal on the memory, SQLite and PostgreSQL backends by
tests/integration/test_store_backends.py.
"""

import textwrap

import pytest

from component.config import ConfigError, load
from component.store import StoreUnavailable
from component.store_sql import successor
from component.testing import HandlerHarness, LoggedFailures

NOTES = """
from twisted.words.xish import domish

from component import responder

NS = "urn:example:{name}"


def setup(component, options):
    component.store.set("written-by-setup", "{name}")


@responder(NS, "set")
async def keep(request):
    await request.component.store.set("note", request.element.children[0])


@responder(NS, "get")
async def show(request):
    note = await request.component.store.get("note", "none")
    by_setup = await request.component.store.get("written-by-setup")
    answer = domish.Element((NS, "note"))
    answer["by-setup"] = by_setup
    answer.addContent(note)
    return answer
"""


def two_modules(tmp_path):
    for name in ("first", "second"):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(NOTES.format(name=name)))
    return HandlerHarness(tmp_path)


def test_each_module_keeps_its_own_keys(tmp_path):
    harness = two_modules(tmp_path)
    harness.ask("<iq type='set'><note xmlns='urn:example:first'>one</note></iq>")
    harness.ask("<iq type='set'><note xmlns='urn:example:second'>two</note></iq>")
    assert harness.ask("<iq type='get'><note xmlns='urn:example:first'/></iq>") == (
        "<iq type='result' id='3' from='iq.localhost' to='tester@localhost/test'>"
        "<note xmlns='urn:example:first' by-setup='first'>one</note></iq>"
    )
    assert harness.ask("<iq type='get'><note xmlns='urn:example:second'/></iq>") == (
        "<iq type='result' id='4' from='iq.localhost' to='tester@localhost/test'>"
        "<note xmlns='urn:example:second' by-setup='second'>two</note></iq>"
    )


def test_a_responder_that_finds_the_store_down_answers_wait_and_logs_no_traceback(tmp_path):
    harness = two_modules(tmp_path)
    harness.store.fail_with = StoreUnavailable("database down")
    with LoggedFailures():
        reply = harness.ask("<iq type='get'><note xmlns='urn:example:first'/></iq>")
    assert reply == (
        "<iq type='error' id='1' from='iq.localhost' to='tester@localhost/test'>"
        "<note xmlns='urn:example:first'/>"
        "<error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>The service's storage is unavailable; try again later</text>"
        "</error></iq>"
    )


def test_the_readme_example_counts_with_compare_and_set(handler_harness):
    harness = handler_harness("examples/handlers/custom_xep.py")
    for expected in (1, 2, 3):
        assert harness.ask("<iq type='set'><count xmlns='custom-xep' key='visits'/></iq>") == (
            f"<iq type='result' id='{expected}' from='iq.localhost' to='tester@localhost/test'>"
            f"<count xmlns='custom-xep' key='visits' value='{expected}'/></iq>"
        )


def test_the_component_itself_has_no_store_only_its_modules_do():
    with pytest.raises(AttributeError, match="handler module"):
        HandlerHarness().component.facade.store  # noqa: B018 - the access is the test


@pytest.mark.parametrize(
    ("prefix", "following"),
    [("a", "b"), ("user/", "user0"), ("a\U0010ffff", "b"), ("\U0010ffff", None), ("x\ud7ff", "x\ue000")],
)
def test_the_successor_of_a_prefix_bounds_every_key_that_starts_with_it(prefix, following):
    assert successor(prefix) == following


def config(tmp_path, store):
    path = tmp_path / "iqresponder.toml"
    path.write_text(f'[component]\njid = "iq.example.org"\nsecret = "s"\n\n[store]\n{store}\n')
    return path


def test_by_default_the_store_is_a_sqlite_file_beside_the_configuration(tmp_path):
    settings = load(config(tmp_path, ""), environ={})
    assert settings.store_location == f"sqlite:///{(tmp_path / 'store.sqlite3').resolve()}"


def test_a_relative_sqlite_path_is_relative_to_the_configuration_file(tmp_path):
    (tmp_path / "state").mkdir()
    settings = load(config(tmp_path, 'url = "sqlite:///state/handlers.db"'), environ={})
    assert settings.store_location == f"sqlite:///{(tmp_path / 'state' / 'handlers.db').resolve()}"


def test_an_absolute_sqlite_path_has_four_slashes(tmp_path):
    settings = load(config(tmp_path, f'url = "sqlite:///{tmp_path}/abs.db"'), environ={})
    assert settings.store_location == f"sqlite:///{tmp_path.resolve()}/abs.db"


def test_a_postgresql_url_is_kept_as_given(tmp_path):
    url = "postgresql://iq@db.example.org:5433/iqresponder?sslmode=require"
    assert load(config(tmp_path, f'url = "{url}"'), environ={}).store_location == url


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        (
            'url = "mysql://db/x"',
            'store.url: expected "sqlite:///PATH" or "postgresql://...", got a URL starting \'mysql://\'',
        ),
        ('url = "postgresql+psycopg://u:hunter2@h/db"', "got a URL starting 'postgresql+psycopg://'"),
        ('url = "sqlite://relative.db"', "store.url: expected sqlite:///PATH (three slashes, then the file)"),
        ('url = "sqlite:///missing/store.db"', "store.url: the directory"),
        ('url = "sqlite:///."', "is a directory, not a database file"),
        ('url = "postgresql://host/db?nonsense=1"', "store.url: not a valid PostgreSQL URL"),
        ("url = 5", "store.url: expected a string, got an integer"),
        ("timeout = 0", "store.timeout: expected a positive number of seconds, got 0.0"),
        ("connections = 0", "store.connections: expected a positive integer, got 0"),
        ("pool = 3", "store.pool: unknown key (allowed: connections, timeout, url)"),
    ],
)
def test_a_misfit_store_setting_is_one_line_naming_the_file_and_key(tmp_path, store, problem):
    path = config(tmp_path, store)
    with pytest.raises(ConfigError) as raised:
        load(path, environ={})
    message = str(raised.value)
    assert message.startswith(f"{path}: store.") and problem in message and "\n" not in message
    assert "hunter2" not in message


def test_at_start_the_component_says_where_state_is_kept_and_warns_when_sqlite_cannot_create_its_file(tmp_path):
    from twisted.internet import reactor
    from twisted.internet.task import Clock
    from twisted.logger import formatEvent, globalLogPublisher

    from component.store import Store
    from component.store_sql import SQLiteBackend

    said = []
    globalLogPublisher.addObserver(said.append)
    store = Store(SQLiteBackend(tmp_path / "gone" / "store.sqlite3", reactor), Clock())
    try:
        store.start()
    finally:
        globalLogPublisher.removeObserver(said.append)
        store.close()
    lines = [formatEvent(event) for event in said]
    assert f"Handlers' state is kept in SQLite {tmp_path}/gone/store.sqlite3" in lines
    assert any(f"its directory {tmp_path}/gone does not exist; set [store] url" in line for line in lines), lines
