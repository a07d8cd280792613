"""Loading handler directories: order, registration, setup, and every way it can fail."""

import textwrap
from pathlib import Path

import pytest

from component.loader import HandlerLoadError, load_handlers
from component.registry import Registry

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
    assert {module.name for module in loaded} == {"disco", "ping", "time", "version"}
