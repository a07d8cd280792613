"""The options a handler module declares, checked before its ``setup()`` sees them.

A module declares its ``[handlers.options.<module>]`` table once, at module level::

    OPTIONS = {
        "os": False,          # optional: a default value, whose type the option must have
        "api_key": str,       # required: a type
        "proxy": str | None,  # optional without a default: absent means None
    }

Types are TOML's: ``bool``, ``int``, ``float`` (an integer is accepted and made a float),
``str``, ``list`` and ``dict``. The loader (component/loader.py) checks the table against the
declaration, so a module never validates by hand and an operator's mistake is reported like any
other configuration error, one line naming the file and the key; ``setup()`` then receives
every declared key, defaults filled in.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
}
REQUIRED = object()


class DeclarationError(Exception):
    """A module's ``OPTIONS`` makes no sense: ``str()`` says which entry and why."""


class OptionError(Exception):
    """A configured table does not fit the declaration: ``key`` is the option, ``problem`` says how."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Option:
    """One declared option: its TOML type and its default (``REQUIRED`` when it has none)."""

    kind: type
    default: Any = REQUIRED


def declared_options(declaration: Any) -> dict[str, Option]:
    """The schema a module's ``OPTIONS`` declares; a declaration that makes no sense is a ``DeclarationError``."""
    if not isinstance(declaration, Mapping):
        raise DeclarationError(
            f"expected a dict of option names to types or defaults, got {type(declaration).__name__}"
        )
    return {_name(key): _option(key, value) for key, value in declaration.items()}


def check_options(schema: Mapping[str, Option], table: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` checked against ``schema``, with every default filled in; the first misfit is an ``OptionError``."""
    for key in table:
        if key not in schema:
            raise OptionError(key, f"unknown key (allowed: {', '.join(sorted(schema)) or 'none'})")
    options = {}
    for key, option in schema.items():
        if key not in table:
            if option.default is REQUIRED:
                raise OptionError(key, f"missing: expected {KINDS[option.kind]}")
            options[key] = copy.deepcopy(option.default)  # setup() may change a list without changing the default
            continue
        value = table[key]
        if not _fits(value, option.kind):
            raise OptionError(key, f"expected {KINDS[option.kind]}, got {_kind(value)}")
        options[key] = float(value) if option.kind is float else value
    return options


def _name(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise DeclarationError(f"option names are non-empty strings, not {key!r}")
    return key


def _option(key: str, value: Any) -> Option:
    if isinstance(value, type) and value in KINDS:
        return Option(value)
    if typing.get_origin(value) in (types.UnionType, typing.Union):
        kinds = [kind for kind in typing.get_args(value) if kind is not type(None)]
        if len(kinds) == 1 and len(typing.get_args(value)) == 2 and kinds[0] in KINDS:
            return Option(kinds[0], None)
    elif type(value) in KINDS:
        return Option(type(value), value)
    allowed = ", ".join(kind.__name__ for kind in KINDS)
    raise DeclarationError(
        f"{key!r}: expected a type ({allowed}), one of them | None, or a default value, got {value!r}"
    )


def _fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # a bool is an int to Python, never to TOML
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _kind(value: Any) -> str:
    """The TOML name of a value's type, for error messages."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)
