"""The README stays true: its handler example is the file the tests load."""

from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_readme_shows_the_custom_xep_example_exactly_as_the_tested_file():
    example = (ROOT / "examples" / "handlers" / "custom_xep.py").read_text().rstrip("\n")
    assert f"```python\n{example}\n```" in (ROOT / "README.md").read_text()


def test_readme_shows_the_command_example_exactly_as_the_tested_file():
    example = (ROOT / "examples" / "handlers" / "reboot.py").read_text().rstrip("\n")
    assert f"```python\n{example}\n```" in (ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    two_commands = readme.index("## Two commands")
    assert readme.index("## ") == two_commands  # the first section
    assert "make run" in readme[two_commands : two_commands + 400]
    assert "make test" in readme[two_commands : two_commands + 400]


def test_readme_shows_the_delegation_example_exactly_as_the_tested_file():
    example = (ROOT / "examples" / "handlers" / "private_storage.py").read_text().rstrip("\n")
    assert f"```python\n{example}\n```" in (ROOT / "README.md").read_text()
