"""The README stays true: its handler example is the file the tests load, and its links lead somewhere."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_readme_shows_the_custom_xep_example_exactly_as_the_tested_file():
    example = (ROOT / "examples" / "handlers" / "custom_xep.py").read_text().rstrip("\n")
    assert f"```python\n{example}\n```" in (ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    two_commands = readme.index("## Two commands")
    assert readme.index("## ") == two_commands  # the first section
    assert "make run" in readme[two_commands : two_commands + 400]
    assert "make test" in readme[two_commands : two_commands + 400]


def test_every_link_of_the_readme_into_the_checkout_leads_to_a_file():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (ROOT / "README.md").read_text())
    local = [link for link in links if "://" not in link]
    assert local, "the README links into the documentation"
    assert [link for link in local if not (ROOT / link).is_file()] == []


def test_the_readme_links_to_every_page_of_the_documentation():
    readme = (ROOT / "README.md").read_text()
    pages = {str(page.relative_to(ROOT)) for page in (ROOT / "docs").rglob("*.md") if "_build" not in page.parts}
    assert {page for page in pages if f"]({page})" not in readme} == set()
