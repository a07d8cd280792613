"""The configuration reference lists exactly the keys the reader reads, with their defaults.

The page (docs/reference/configuration.md) holds no table of its own: the
``configuration-keys`` directive of docs/conf.py writes ``component.config.reference()``
there when the site is built, a table made from ``component.config.KEYS``. The page's
example file is loaded as the component loads it by tests/unit/test_docs_examples.py, as
every whole configuration in the documentation is.
"""

import importlib.util
from collections import Counter
from itertools import takewhile
from pathlib import Path

from component.config import KEYS, reference, shown_default

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "reference" / "configuration.md"
HEADER = "| key | value | default | meaning |"


def docs_conf():
    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table() -> list[str]:
    """The lines of the table of keys the configuration reference shows."""
    lines = docs_conf().keys_table().splitlines()
    assert lines[0] == HEADER, "the table of keys has another header"
    return list(takewhile(lambda line: line.startswith("|"), lines))


def rows() -> list[list[str]]:
    rows = []
    for line in table()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"not a row of key, value, default, meaning: {line}"
        rows.append(cells)
    return rows


def test_the_configuration_page_shows_the_table_made_from_the_keys():
    section = PAGE.read_text(encoding="utf-8").split("\n## Every key\n", 1)[1].split("\n## ", 1)[0]
    assert section.count("```{configuration-keys}\n```") == 1
    assert "\n".join(table()) + "\n" == reference()


def test_every_key_is_listed_once_and_nothing_else():
    listed = Counter(row[0] for row in rows())
    expected = Counter(f"`{key.path}`" for key in KEYS)
    assert listed - expected == Counter(), "listed in the reference but not read (or listed twice)"
    assert expected - listed == Counter(), "read but not listed in the reference"


def test_every_key_is_listed_with_its_default():
    defaults = {row[0]: row[2] for row in rows()}
    for key in KEYS:
        assert defaults[f"`{key.path}`"] == shown_default(key), key.path
