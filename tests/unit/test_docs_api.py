"""The API reference documents every name the package ``component`` exports, each once.

docs/reference/api.md names what it documents in autodoc directives, by the module that
defines each name; a name added to ``component.__all__`` and forgotten there would be
missing from the site without a warning from Sphinx.
"""

import importlib
import inspect
import re
from collections import Counter
from pathlib import Path

import component

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "api.md"
TARGET = re.compile(r"^\.\. auto(?:function|class|exception|interface|data):: (\S+)$", re.MULTILINE)
MODULE = re.compile(r"^\.\. automodule:: (\S+)\n((?:   :.*\n)*)", re.MULTILINE)


def documented() -> Counter[str]:
    """The dotted paths the page's directives document: named ones, and the members of whole modules."""
    page = API_PAGE.read_text()
    paths = Counter(TARGET.findall(page))
    for name, options in MODULE.findall(page):
        if ":no-members:" in options:
            continue
        module = importlib.import_module(name)
        listed = re.search(r":members: (.+)", options)
        members = (
            [member.strip() for member in listed.group(1).split(",")]
            if listed
            else getattr(module, "__all__", None)
            or [
                member
                for member, value in vars(module).items()
                if not member.startswith("_") and getattr(value, "__module__", None) == name
            ]
        )
        paths.update(f"{name}.{member}" for member in members)
    return paths


def defined_at(name: str) -> str:
    value = getattr(component, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        return f"{value.__module__}.{value.__qualname__}"
    return {"NO_TIMEOUT": "component.tracker.NO_TIMEOUT"}[name]


def test_every_exported_name_is_documented_once_where_it_is_defined():
    paths = documented()
    exported = {defined_at(name) for name in component.__all__}
    assert {path for path in exported if paths[path] == 0} == set()
    assert {path for path in exported if paths[path] > 1} == set()


def test_what_the_page_names_exists():
    for path in documented():
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path
