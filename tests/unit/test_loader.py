"""Loading handler directories: order, registration, setup, helpers, reload, teardown, and every way they can fail."""

import os
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
from twisted.logger import formatEvent

from component.config import load
from component.loader import HandlerLoadError, load_handlers
from component.registry import Registry
from component.testing import HandlerHarness, parse_stanzas

PING_LIKE = """
from component import responder

@responder("urn:example:{name}", "get")
def answer(request):
    return None
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


class Recorder:
    """Stands in for the component: records what setup() saw."""

    def __init__(self):
        self.calls = []


def test_modules_load_in_name_order_and_their_responders_register(tmp_path, caplog_twisted):
    for name in ["b_second", "a_first"]:
        write(tmp_path, f"{name}.py", PING_LIKE.format(name=name))
    registry = Registry()
    loaded = load_handlers([tmp_path], registry, Recorder(), {})
    assert [module.name for module in loaded] == ["a_first", "b_second"]
    assert registry.lookup("get", "urn:example:a_first", "q") is not None
    log = caplog_twisted.text()
    assert "a_first" in log and "urn:example:a_first" in log and "b_second" in log


def test_files_starting_with_underscore_and_non_python_files_are_skipped(tmp_path):
    write(tmp_path, "_private.py", "raise RuntimeError('must not be imported')")
    write(tmp_path, "notes.txt", "not python")
    assert load_handlers([tmp_path], Registry(), Recorder(), {}) == []


def test_directories_load_in_the_configured_order(tmp_path):
    write(tmp_path / "one", "zeta.py", PING_LIKE.format(name="zeta"))
    write(tmp_path / "two", "alpha.py", PING_LIKE.format(name="alpha"))
    loaded = load_handlers([tmp_path / "one", tmp_path / "two"], Registry(), Recorder(), {})
    assert [module.name for module in loaded] == ["zeta", "alpha"]


def test_setup_receives_the_component_and_its_own_options(tmp_path):
    write(
        tmp_path,
        "configured.py",
        """
        def setup(component, options):
            component.calls.append(options)
        """,
    )
    component = Recorder()
    load_handlers([tmp_path], Registry(), component, {"configured": {"colour": "blue"}})
    assert component.calls == [{"colour": "blue"}]


def test_setup_without_options_gets_an_empty_table(tmp_path):
    write(tmp_path, "configured.py", "def setup(component, options):\n    component.calls.append(options)\n")
    component = Recorder()
    load_handlers([tmp_path], Registry(), component, {})
    assert component.calls == [{}]


def test_two_modules_claiming_the_same_key_name_both_files(tmp_path):
    write(tmp_path, "first.py", PING_LIKE.format(name="same"))
    write(tmp_path, "second.py", PING_LIKE.format(name="same"))
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path], Registry(), Recorder(), {})
    message = str(raised.value)
    assert "first.py" in message and "second.py" in message and "\n" not in message


def test_module_that_fails_to_import_names_the_file_and_the_exception(tmp_path):
    path = write(tmp_path, "broken.py", "import no_such_module_anywhere\n")
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path], Registry(), Recorder(), {})
    message = str(raised.value)
    assert str(path) in message and "ModuleNotFoundError" in message and "no_such_module_anywhere" in message


def test_module_with_a_syntax_error_names_the_file_and_line(tmp_path):
    write(tmp_path, "typo.py", "x = 1\ndef broken(:\n")
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path], Registry(), Recorder(), {})
    assert "typo.py" in str(raised.value) and "SyntaxError" in str(raised.value) and ":2" in str(raised.value)


def test_setup_that_raises_names_the_file(tmp_path):
    write(tmp_path, "picky.py", "def setup(component, options):\n    raise ValueError('unknown option colour')\n")
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path], Registry(), Recorder(), {})
    assert "picky.py" in str(raised.value) and "unknown option colour" in str(raised.value)


def test_options_for_a_module_that_is_not_loaded_are_an_error(tmp_path):
    write(tmp_path, "present.py", PING_LIKE.format(name="present"))
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path], Registry(), Recorder(), {"absent": {}})
    assert "handlers.options.absent" in str(raised.value)


# Declared options: OPTIONS checked by the loader before setup() (component/options.py).

DECLARING = """
OPTIONS = {
    "colour": "blue",
    "size": 3,
    "ratio": 1.5,
    "tags": [],
    "proxy": str | None,
    "key": str,
}

def setup(component, options):
    component.calls.append(options)
"""


def load_declaring(tmp_path: Path, table: dict, config_path: Path | None = Path("conf/iq.toml")) -> Recorder:
    write(tmp_path / "handlers", "declaring.py", DECLARING)
    component = Recorder()
    load_handlers([tmp_path / "handlers"], Registry(), component, {"declaring": table}, config_path=config_path)
    return component


def load_error(tmp_path: Path, table: dict, config_path: Path | None = Path("conf/iq.toml")) -> str:
    with pytest.raises(HandlerLoadError) as raised:
        load_declaring(tmp_path, table, config_path)
    return str(raised.value)


def test_setup_receives_declared_options_with_defaults_filled_in(tmp_path):
    component = load_declaring(tmp_path, {"key": "k", "ratio": 2, "tags": ["a"]})
    assert component.calls == [{"colour": "blue", "size": 3, "ratio": 2.0, "tags": ["a"], "proxy": None, "key": "k"}]
    assert isinstance(component.calls[0]["ratio"], float)  # an integer where a float is declared


def test_a_default_list_is_each_setups_own(tmp_path):
    first = load_declaring(tmp_path, {"key": "k"})
    first.calls[0]["tags"].append("changed by setup()")
    assert load_declaring(tmp_path, {"key": "k"}).calls[0]["tags"] == []


def test_an_unknown_option_names_the_config_file_and_key_and_setup_is_not_called(tmp_path):
    component = Recorder()
    write(tmp_path, "declaring.py", DECLARING)
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers(
            [tmp_path], Registry(), component, {"declaring": {"key": "k", "colur": "red"}}, config_path="conf/iq.toml"
        )
    assert str(raised.value) == (
        "conf/iq.toml: handlers.options.declaring.colur: unknown key (allowed: colour, key, proxy, ratio, size, tags)"
    )
    assert component.calls == []


def test_a_missing_required_option_names_the_config_file_and_key(tmp_path):
    assert load_error(tmp_path, {}) == "conf/iq.toml: handlers.options.declaring.key: missing: expected a string"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"key": 1}, "handlers.options.declaring.key: expected a string, got an integer"),
        ({"key": "k", "size": True}, "handlers.options.declaring.size: expected an integer, got a boolean"),
        ({"key": "k", "size": 2.5}, "handlers.options.declaring.size: expected an integer, got a float"),
        ({"key": "k", "ratio": "1.5"}, "handlers.options.declaring.ratio: expected a number, got a string"),
        ({"key": "k", "tags": "a"}, "handlers.options.declaring.tags: expected an array, got a string"),
        ({"key": "k", "proxy": 8080}, "handlers.options.declaring.proxy: expected a string, got an integer"),
    ],
)
def test_an_option_of_the_wrong_type_names_the_config_file_and_key(tmp_path, table, message):
    assert load_error(tmp_path, table) == f"conf/iq.toml: {message}"


def test_without_a_config_file_the_error_starts_with_the_key(tmp_path):
    # as for options of a module that is not loaded: twistd puts its configuration file in front
    assert load_error(tmp_path, {}, config_path=None) == "handlers.options.declaring.key: missing: expected a string"


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ("['os']", "expected a dict of option names"),
        ("{'when': object}", "'when': expected a type (bool, int, float, str, list, dict)"),
        ("{'when': int | str}", "'when': expected a type"),
        ("{1: bool}", "option names are non-empty strings"),
    ],
)
def test_a_declaration_that_makes_no_sense_names_the_module_file(tmp_path, declaration, problem):
    path = write(tmp_path, "odd.py", f"OPTIONS = {declaration}\n")
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path], Registry(), Recorder(), {}, config_path="conf/iq.toml")
    assert str(raised.value).startswith(f"{path}: OPTIONS: ") and problem in str(raised.value)


def test_the_bundled_version_module_checks_its_os_option_against_the_configuration(tmp_path):
    config = tmp_path / "iqresponder.toml"
    config.write_text('[component]\njid = "iq.localhost"\nsecret = "s"\n\n[handlers.options.version]\nos = "yes"\n')
    settings = load(config)
    bundled = Path(__file__).parents[2] / "handlers" / "version.py"
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([bundled], Registry(), Recorder(), settings.handler_options, config_path=settings.path)
    assert str(raised.value) == f"{config}: handlers.options.version.os: expected true or false, got a string"


def test_same_module_name_in_two_directories_is_an_error(tmp_path):
    write(tmp_path / "one", "dup.py", PING_LIKE.format(name="one"))
    write(tmp_path / "two", "dup.py", PING_LIKE.format(name="two"))
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path / "one", tmp_path / "two"], Registry(), Recorder(), {})
    assert str(tmp_path / "one" / "dup.py") in str(raised.value) and str(tmp_path / "two" / "dup.py") in str(
        raised.value
    )


def test_bundled_handlers_load_together(tmp_path):
    bundled = Path(__file__).parents[2] / "handlers"
    loaded = load_handlers([bundled], Registry(), Recorder(), {})
    assert {module.name for module in loaded} == {"admin", "disco", "ping", "time", "version"}


# Helpers: files starting with "_" that handler modules import by their plain names.

ANSWERING = """
from twisted.words.xish import domish

from component import responder
{imports}


@responder("urn:example:{name}", "get")
def answer(request):
    element = domish.Element(("urn:example:{name}", "answer"))
    element.addContent({answer})
    return element
"""


def answering(name: str, answer: str, imports: str = "") -> str:
    return ANSWERING.format(name=name, answer=answer, imports=imports)


def ask(harness: HandlerHarness, name: str) -> str:
    """The text of the answer the module serving ``urn:example:{name}`` gives, or the whole reply if it failed."""
    reply = harness.ask(f"<iq type='get'><query xmlns='urn:example:{name}'/></iq>")
    [stanza] = parse_stanzas(reply)
    if stanza["type"] != "result":
        return reply
    return str(next(stanza.elements(f"urn:example:{name}", "answer")))


def test_a_module_imports_helpers_from_its_own_directory(tmp_path):
    write(tmp_path, "_helpers.py", "GREETING = 'hello'\n\ndef shout(text):\n    return text.upper()\n")
    write(tmp_path, "plain.py", answering("plain", "_helpers.GREETING", "import _helpers"))
    write(tmp_path, "named.py", answering("named", "shout('hi')", "from _helpers import shout"))
    harness = HandlerHarness(tmp_path)
    assert [module.name for module in harness.memory.modules] == ["named", "plain"]  # _helpers is no handler
    assert ask(harness, "plain") == "hello"
    assert ask(harness, "named") == "HI"


def test_a_helper_package_and_a_helper_importing_another_helper(tmp_path):
    write(tmp_path / "_lib", "__init__.py", "from _lib.words import WORD\n")
    write(tmp_path / "_lib", "words.py", "from _base import BASE\n\nWORD = BASE + ' from a package'\n")
    write(tmp_path, "_base.py", "BASE = 'built'\n")
    write(tmp_path, "user.py", answering("user", "WORD", "from _lib import WORD"))
    harness = HandlerHarness(tmp_path)
    assert ask(harness, "user") == "built from a package"


def test_a_helper_may_be_imported_lazily_inside_a_responder(tmp_path):
    write(tmp_path, "_late.py", "VALUE = 'imported when first asked'\n")
    module = answering("lazy", "__import__('_late').VALUE")
    write(tmp_path, "lazy.py", module)
    harness = HandlerHarness(tmp_path)
    assert "_late" not in sys.modules
    assert ask(harness, "lazy") == "imported when first asked"


def test_only_helper_names_are_served_so_the_standard_library_stays_itself(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)  # make `import colorsys` look it up
    write(tmp_path, "colorsys.py", "# a handler module that happens to share a standard library name\n")
    write(tmp_path, "painter.py", "import colorsys\n\nCONVERT = colorsys.rgb_to_hls\n")
    [painter] = [module for module in load_handlers([tmp_path], Registry(), Recorder(), {}) if module.name == "painter"]
    assert Path(painter.module.colorsys.__file__).parent == Path(sysconfig.get_paths()["stdlib"])


def test_a_helper_named_like_a_standard_library_module_is_a_load_error(tmp_path):
    write(tmp_path, "_thread.py", "x = 1\n")
    write(tmp_path, "user.py", PING_LIKE.format(name="user"))
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path], Registry(), Recorder(), {})
    message = str(raised.value)
    assert str(tmp_path / "_thread.py") in message and "standard library" in message and "\n" not in message


def test_a_helper_in_two_directories_is_a_load_error_naming_both(tmp_path):
    write(tmp_path / "one", "_shared.py", "x = 1\n")
    write(tmp_path / "two", "_shared.py", "x = 2\n")
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path / "one", tmp_path / "two"], Registry(), Recorder(), {})
    message = str(raised.value)
    assert str(tmp_path / "one" / "_shared.py") in message and str(tmp_path / "two" / "_shared.py") in message
    assert "\n" not in message


def test_a_broken_helper_names_the_module_and_the_helpers_line(tmp_path):
    write(tmp_path, "_broken.py", "x = 1\nraise RuntimeError('no database')\n")
    write(tmp_path, "user.py", "import _broken\n")
    with pytest.raises(HandlerLoadError) as raised:
        load_handlers([tmp_path], Registry(), Recorder(), {})
    message = str(raised.value)
    assert str(tmp_path / "user.py") in message and "no database" in message and "_broken.py:2" in message


# Reload: exactly the code on disk.


def reloadable(tmp_path: Path, directory: Path, grace: float = 10.0) -> HandlerHarness:
    """An in-memory component whose configuration file lists ``directory``, so that reload() reads it again."""
    config = tmp_path / "iqresponder.toml"
    config.write_text(
        f'[component]\njid = "iq.localhost"\nsecret = "in-memory"\nshutdown_grace = {grace}\n\n'
        f'[handlers]\ndirectories = ["{directory}"]\n'
    )
    return HandlerHarness(directory, settings=load(config))


def rewrite_keeping_size_and_mtime(path: Path, text: str) -> None:
    """Change ``path`` as ``rsync -a`` can: new bytes, same size, same modification time."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_reload_serves_a_module_and_a_helper_changed_with_the_same_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as in a deployment, whatever this shell says
    hot = tmp_path / "hot"
    write(hot, "_word.py", "WORD = 'first'\n")
    module = write(hot, "hot.py", answering("hot", "WORD + ' v1'", "from _word import WORD"))
    harness = reloadable(tmp_path, hot)
    assert ask(harness, "hot") == "first v1"

    rewrite_keeping_size_and_mtime(hot / "_word.py", "WORD = 'other'\n")
    rewrite_keeping_size_and_mtime(module, module.read_text().replace("v1", "v2"))
    assert harness.component.reload()
    assert ask(harness, "hot") == "other v2"
    assert not (hot / "__pycache__").exists()  # nothing cached that a later load could trust


def test_reload_forgets_a_helper_that_was_deleted(tmp_path):
    hot = tmp_path / "hot"
    write(hot, "_gone.py", "WORD = 'here'\n")
    write(hot, "hot.py", answering("hot", "WORD", "from _gone import WORD"))
    harness = reloadable(tmp_path, hot)
    (hot / "_gone.py").unlink()
    assert not harness.component.reload()  # a stale module in sys.modules would have hidden the deletion
    assert ask(harness, "hot") == "here"


def test_a_failed_reload_keeps_the_previous_modules_helpers_and_sys_modules(tmp_path, caplog_twisted):
    hot = tmp_path / "hot"
    write(hot, "_word.py", "WORD = 'first'\n")
    write(hot, "a_hot.py", answering("hot", "WORD", "from _word import WORD"))
    harness = reloadable(tmp_path, hot)
    helper = sys.modules["_word"]

    write(hot, "_word.py", "WORD = 'second'\n")
    write(hot, "b_broken.py", "import no_such_dependency\n")
    assert not harness.component.reload()
    assert "b_broken.py" in caplog_twisted.text() and "no_such_dependency" in caplog_twisted.text()
    assert ask(harness, "hot") == "first"
    assert sys.modules["_word"] is helper


def test_a_reload_with_a_misfit_option_names_the_config_file_and_key_and_keeps_serving(tmp_path, caplog_twisted):
    hot = tmp_path / "hot"
    write(hot, "hot.py", answering("hot", "'serving'") + 'OPTIONS = {"colour": "blue"}\n')
    harness = reloadable(tmp_path, hot)
    config = harness.component.settings.path
    config.write_text(config.read_text() + "\n[handlers.options.hot]\ncolour = 7\n")
    assert not harness.component.reload()
    assert f"{config}: handlers.options.hot.colour: expected a string, got an integer" in caplog_twisted.text()
    assert ask(harness, "hot") == "serving"


def test_a_reload_applies_the_access_rules_of_the_configuration_file(tmp_path):
    hot = tmp_path / "hot"
    write(hot, "hot.py", answering("hot", "'served'"))
    harness = reloadable(tmp_path, hot)
    assert ask(harness, "hot") == "served"
    config = harness.component.settings.path
    config.write_text(
        config.read_text() + '\n[[access.rules]]\nnamespace = "urn:example:hot"\nallow = ["ops@localhost"]\n'
    )
    assert harness.component.reload()
    assert "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" in ask(harness, "hot")  # from tester@localhost
    assert harness.ask("<iq type='get'><query xmlns='urn:example:hot'/></iq>", sender="ops@localhost/desk") == (
        "<iq type='result' id='3' to='ops@localhost/desk' from='iq.localhost'>"
        "<answer xmlns='urn:example:hot'>served</answer></iq>"
    )


# teardown(component): before a reload replaces a module, and at shutdown.

RECORDING = """
from twisted.logger import Logger

VERSION = {version!r}

def setup(component, options):
    Logger().info("setup {{name}} {{version}}", name=__name__.rpartition(".")[2], version=VERSION)

def teardown(component):
    Logger().info("teardown {{name}} {{version}}", name=__name__.rpartition(".")[2], version=VERSION)
"""


def lifecycle(events) -> list[str]:
    return [
        event["log_format"].format(**event)
        for event in events
        if event.get("log_format", "").startswith(("setup", "teardown"))
    ]


def test_reload_sets_up_the_new_set_before_tearing_down_the_old_one(tmp_path, caplog_twisted):
    hot = tmp_path / "hot"
    write(hot, "a_one.py", RECORDING.format(version=1))
    write(hot, "b_two.py", RECORDING.format(version=1))
    harness = reloadable(tmp_path, hot)
    write(hot, "a_one.py", RECORDING.format(version=2))
    write(hot, "b_two.py", RECORDING.format(version=2))
    assert harness.component.reload()
    assert lifecycle(caplog_twisted) == [
        "setup a_one 1",
        "setup b_two 1",
        "setup a_one 2",
        "setup b_two 2",
        "teardown b_two 1",
        "teardown a_one 1",
    ]


def test_a_failed_reload_tears_down_what_it_set_up_and_leaves_the_serving_set_alone(tmp_path, caplog_twisted):
    hot = tmp_path / "hot"
    write(hot, "a_one.py", RECORDING.format(version=1))
    harness = reloadable(tmp_path, hot)
    write(hot, "a_one.py", RECORDING.format(version=2))
    write(hot, "b_broken.py", "def setup(component, options):\n    raise OSError('port taken')\n")
    assert not harness.component.reload()
    assert lifecycle(caplog_twisted) == ["setup a_one 1", "setup a_one 2", "teardown a_one 2"]
    assert [module.module.VERSION for module in harness.component.modules] == [1]


def test_a_teardown_that_raises_is_logged_with_its_file_and_stops_nothing(tmp_path, caplog_twisted):
    hot = tmp_path / "hot"
    write(hot, "a_one.py", RECORDING.format(version=1))
    clumsy = write(hot, "b_clumsy.py", "def teardown(component):\n    raise RuntimeError('already closed')\n")
    harness = reloadable(tmp_path, hot)
    assert harness.component.reload()  # the reload goes on
    harness.component.running = True
    done = []
    harness.component.stopService().addCallback(done.append)
    assert len(done) == 1  # and so does the shutdown
    failures = [event for event in caplog_twisted if "log_failure" in event]
    assert len(failures) == 2
    assert all(str(clumsy) in formatEvent(event) for event in failures)
    assert all("already closed" in event["log_failure"].getErrorMessage() for event in failures)
    assert lifecycle(caplog_twisted).count("teardown a_one 1") == 2  # its neighbour is torn down both times


def test_shutdown_tears_down_the_modules_after_the_requests_and_before_closing_the_stream(tmp_path, caplog_twisted):
    hot = tmp_path / "hot"
    write(hot, "a_one.py", RECORDING.format(version=1))
    write(hot, "b_two.py", RECORDING.format(version=1))
    harness = reloadable(tmp_path, hot)
    harness.component.running = True
    harness.component.stopService()
    assert lifecycle(caplog_twisted)[-2:] == ["teardown b_two 1", "teardown a_one 1"]
    assert harness.memory.transport.value().endswith(b"</stream:stream>")
    assert harness.component.modules == []


WAITING = """
from twisted.internet.defer import Deferred

pending = Deferred()

async def teardown(component):
    await pending
"""


def test_shutdown_waits_for_an_asynchronous_teardown(tmp_path):
    hot = tmp_path / "hot"
    write(hot, "slow.py", WAITING)
    harness = reloadable(tmp_path, hot, grace=5.0)
    [slow] = harness.component.modules
    harness.component.running = True
    done = []
    harness.component.stopService().addCallback(done.append)
    harness.advance(4.9)
    assert done == [] and not harness.memory.transport.value().endswith(b"</stream:stream>")
    slow.module.pending.callback(None)
    assert len(done) == 1 and harness.memory.transport.value().endswith(b"</stream:stream>")


def test_shutdown_waits_for_a_teardown_at_most_shutdown_grace(tmp_path, caplog_twisted):
    hot = tmp_path / "hot"
    hung = write(
        hot,
        "hung.py",
        "from twisted.internet.defer import Deferred\n\ndef teardown(component):\n    return Deferred()\n",
    )
    harness = reloadable(tmp_path, hot, grace=5.0)
    harness.component.running = True
    done = []
    harness.component.stopService().addCallback(done.append)
    harness.advance(4.9)
    assert done == []
    harness.advance(0.2)
    assert len(done) == 1
    assert f"teardown() of handler module hung ({hung}) did not finish within 5 s" in caplog_twisted.text()
