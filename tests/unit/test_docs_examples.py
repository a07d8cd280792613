"""Every code example of the documentation (docs/) and of the README runs, so none can drift from the code.

Python blocks run with Sybil, a page at a time and in order, in one namespace
that holds the test kit's ``handler_harness``; a hidden block in a MyST comment
(``% invisible-code-block: python``) runs what a shown block only defines. A
TOML block that is a whole configuration (it has ``[component] jid``) is loaded
as the component loads one; a part of one must parse and name only keys the
reader reads. Handler modules are files that the pages include, and that tests
load. Shell, Lua, YAML, SQL, XML and plain-text blocks are not run: they are
another program's input or what travels on the wire, which the integration
tests check against real servers.
"""

import re
import tomllib
from pathlib import Path

import pytest
from sybil import Document
from sybil.parsers import markdown, myst

from component.config import KEYS, load

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.parts)
README = ROOT / "README.md"
KEY_PATHS = {key.path for key in KEYS}
INCLUDE = re.compile(r"^```\{literalinclude\} (\S+)$", re.MULTILINE)


def check_toml(example) -> None:
    """A whole configuration loads as the component loads it; a part of one parses and names known keys."""
    table = tomllib.loads(example.parsed)
    for section, keys in table.items():
        for name in keys:
            assert f"{section}.{name}" in KEY_PATHS, f"{section}.{name} is not a key the configuration reader reads"
    if "jid" not in table.get("component", {}):
        return
    base = example.namespace["tmp_path"] / f"line{example.line}"
    (base / "conf").mkdir(parents=True)
    path = base / "conf" / "iqresponder.toml"
    path.write_text(example.parsed)
    if "secret_file" in table["component"]:
        (path.parent / table["component"]["secret_file"]).write_text("s3cret")
    for directory in table.get("handlers", {}).get("directories", []):
        (path.parent / directory).mkdir(parents=True, exist_ok=True)
    settings = load(path, environ={})
    assert settings.jid == table["component"]["jid"]
    assert settings.handler_directories == tuple(
        (path.parent / directory).resolve() for directory in table.get("handlers", {}).get("directories", [])
    )


def parse(path: Path) -> Document:
    flavour = markdown if path == README else myst
    return Document.parse(str(path), flavour.PythonCodeBlockParser(), flavour.CodeBlockParser("toml", check_toml))


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_python_and_toml_example_runs(path, handler_harness, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name files as a checkout has them: examples/handlers/custom_xep.py
    document = parse(path)
    document.namespace.update(handler_harness=handler_harness, tmp_path=tmp_path)
    for example in document:
        example.evaluate()


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_python_and_toml_block_is_one_the_examples_run(path):
    """A block the parsers missed (an unusual fence, an indentation) would be an example that never runs."""
    fences = re.findall(r"^[ \t]*```(python|toml)[ \t]*$", path.read_text(encoding="utf-8"), re.MULTILINE)
    hidden = len(re.findall(r"^[ \t]*% invisible-code-block: python$", path.read_text(encoding="utf-8"), re.MULTILINE))
    assert len(list(parse(path))) == len(fences) + hidden


def test_every_example_module_is_shown_in_the_docs():
    included = {(page.parent / target).resolve() for page in PAGES for target in INCLUDE.findall(page.read_text())}
    examples = {*(ROOT / "examples" / "handlers").glob("*.py"), *(DOCS / "examples").glob("*.py")}
    assert examples - included == set(), "example modules that no page includes"
    assert included - examples == set(), "pages include files that are not example modules (or do not exist)"
