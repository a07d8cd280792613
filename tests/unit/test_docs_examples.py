"""Every code example of the documentation (docs/) and of the README runs, so none can drift from the code.

Python blocks run with Sybil, a page at a time and in order, in one namespace
that holds the test kit's ``handler_harness``; a hidden block in a MyST comment
(``% invisible-code-block: python``) runs what a shown block only defines. A
TOML block that is a whole configuration (it has ``[component] jid``) is loaded
as the component loads one; a part of one must parse and name only keys the
reader reads. An XML block is a transcript: each request is sent, as in
``make run HANDLERS=examples/handlers``, and its reply must be what the comment
after it says. Handler modules are files that the pages include, and that tests
load. The SQL block is the store's own schema (the last test here); the Prosody
and ejabberd blocks are checked against the servers' configurations of the
suite (test_docs_server_configs.py); the probe's shell blocks run after a real
``make run`` (tests/integration/test_make_run.py). The other shell blocks
(make, pip, twistd command lines) and the plain-text usage line are not run.
"""

import re
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pytest
from sybil import Document
from sybil.parsers import markdown, myst

from component.config import KEYS, load
from component.store_sql import POSTGRESQL_SCHEMA, TABLE
from component.testing import canonical_tree

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.parts)
README = ROOT / "README.md"
KEY_PATHS = {key.path for key in KEYS}
INCLUDE = re.compile(r"^```\{literalinclude\} (\S+)$", re.MULTILINE)
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
EXCHANGE = re.compile(r"^(<iq .*</iq>)\n<!-- (.*) -->$", re.MULTILINE)
ERROR = re.compile(r'^error, (\w+): ([\w-]+)(?:, "(.*)")?$')


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
    if "secret_file" in table["component"]:
        assert settings.secret == "s3cret"
    assert settings.handler_directories == tuple(
        (path.parent / directory).resolve() for directory in table.get("handlers", {}).get("directories", [])
    )


def check_transcript(example) -> None:
    """Each request of the block, in order, gets the reply its comment describes (one harness per block).

    The comment is ``result, empty``; ``result: <payload/>``; or
    ``error, <type>: <condition>, "<text>"``, the text optional.
    """
    exchanges = EXCHANGE.findall(example.parsed)
    assert exchanges and len(exchanges) * 2 == len(example.parsed.strip().splitlines()), (
        "an XML block is requests, each followed by a comment saying its reply"
    )
    harness = example.namespace["handler_harness"]("handlers", "examples/handlers")
    for request, expected in exchanges:
        reply = ElementTree.fromstring(harness.ask(request))
        payloads = [child for child in reply if child.tag != "error"]
        if expected == "result, empty":
            assert (reply.get("type"), payloads) == ("result", []), request
        elif expected.startswith("result: "):
            assert reply.get("type") == "result", request
            assert [canonical_tree(payload) for payload in payloads] == [
                canonical_tree(ElementTree.fromstring(expected.removeprefix("result: ")))
            ], request
        else:
            described = ERROR.match(expected)
            assert described, f"not a reply this test reads: {expected!r}"
            error_type, condition, text = described.groups()
            error = reply.find("error")
            assert reply.get("type") == "error" and error is not None, request
            assert error.get("type") == error_type, request
            assert error.find(f"{{{STANZAS}}}{condition}") is not None, ElementTree.tostring(error)
            if text is not None:
                assert error.findtext(f"{{{STANZAS}}}text") == text, request


def parse(path: Path) -> Document:
    flavour = markdown if path == README else myst
    return Document.parse(
        str(path),
        flavour.PythonCodeBlockParser(),
        flavour.CodeBlockParser("toml", check_toml),
        flavour.CodeBlockParser("xml", check_transcript),
    )


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_python_toml_and_xml_example_runs(path, handler_harness, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples name files as a checkout has them: examples/handlers/custom_xep.py
    document = parse(path)
    document.namespace.update(handler_harness=handler_harness, tmp_path=tmp_path)
    for example in document:
        example.evaluate()


@pytest.mark.parametrize("path", [README, *PAGES], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_python_toml_and_xml_block_is_one_the_examples_run(path):
    """A block the parsers missed (an unusual fence, an indentation) would be an example that never runs."""
    fences = re.findall(r"^[ \t]*```(python|toml|xml)[ \t]*$", path.read_text(encoding="utf-8"), re.MULTILINE)
    hidden = len(re.findall(r"^[ \t]*% invisible-code-block: python$", path.read_text(encoding="utf-8"), re.MULTILINE))
    assert len(list(parse(path))) == len(fences) + hidden


def test_every_example_module_is_shown_in_the_docs():
    included = {(page.parent / target).resolve() for page in PAGES for target in INCLUDE.findall(page.read_text())}
    examples = {*(ROOT / "examples" / "handlers").glob("*.py"), *(DOCS / "examples").glob("*.py")}
    assert examples - included == set(), "example modules that no page includes"
    assert included - examples == set(), "pages include files that are not example modules (or do not exist)"


def test_the_table_the_store_guide_has_an_administrator_create_is_the_one_the_store_creates():
    """docs/howto/store.md gives the SQL for a database where the component may not create tables."""
    [block] = re.findall(r"```sql\n(.*?)```", (DOCS / "howto" / "store.md").read_text(), re.DOTALL)
    statements = [" ".join(statement.split()) for statement in block.split(";") if statement.strip()]
    created = [statement for statement in statements if statement.startswith("CREATE")]
    assert [statement.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1) for statement in created[:1]] + [
        statement.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS", 1) for statement in created[1:]
    ] == [" ".join(statement.split()) for statement in POSTGRESQL_SCHEMA]
    assert f"ON {TABLE} TO" in statements[-1]
