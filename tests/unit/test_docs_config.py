"""The README's configuration reference lists exactly the keys the reader reads, with their defaults."""

from collections import Counter
from itertools import takewhile
from pathlib import Path

from component.config import KEYS, load, reference, shown_default

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = "| key | value | default | meaning |"


def readme_table() -> list[str]:
    """The lines of the table of keys in the README's "## Configuration" section."""
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines()
    assert HEADER in lines, 'the "## Configuration" section has no table of keys'
    return list(takewhile(lambda line: line.startswith("|"), lines[lines.index(HEADER) :]))


def readme_rows() -> list[list[str]]:
    rows = []
    for line in readme_table()[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 4, f"not a row of key, value, default, meaning: {line}"
        rows.append(cells)
    return rows


def test_every_key_is_listed_once_and_nothing_else():
    listed = Counter(row[0] for row in readme_rows())
    expected = Counter(f"`{key.path}`" for key in KEYS)
    assert listed - expected == Counter(), "listed in the README but not read (or listed twice)"
    assert expected - listed == Counter(), "read but not listed in the README"


def test_every_key_is_listed_with_its_default():
    defaults = {row[0]: row[2] for row in readme_rows()}
    for key in KEYS:
        assert defaults[f"`{key.path}`"] == shown_default(key), key.path


def test_the_readme_table_is_the_one_made_from_the_keys():
    made = reference()
    assert "\n".join(readme_table()) + "\n" == made, (
        "README.md's table of keys differs from component.config.reference(); replace it with:\n" + made
    )


def test_the_readme_example_file_is_read_as_it_stands(tmp_path):
    section = README.read_text(encoding="utf-8").split("\n## Configuration\n", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "conf").mkdir()
    (tmp_path / "handlers").mkdir()  # the example's directories = ["../handlers"]
    (tmp_path / "conf" / "secret.txt").write_text("s3cret")
    path = tmp_path / "conf" / "iqresponder.toml"
    path.write_text(example)
    settings = load(path, environ={})
    assert (settings.jid, settings.secret) == ("iq.localhost", "s3cret")
    assert settings.handler_directories == ((tmp_path / "handlers").resolve(),)
