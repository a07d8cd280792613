"""The kinds of value a configuration key may have: a TOML type, a check and a conversion, and their words.

``component.config`` names one of these for each key of its table. A value's
``text`` is what the documentation's configuration reference says the key takes, and
what the error says was expected when the check fails, so the two read alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from component.dataforms import Form
from component.discovery import Identity, Item
from component.request import InvalidFormat, parse_jid


class ConfigError(Exception):
    """A configuration problem: ``str()`` is the one line shown to the operator."""

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        where = f"{path}: {key}" if key else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class AccessRule:
    """Only ``allow`` (bare JIDs, full JIDs or domains) may send ``type`` requests in ``namespace``."""

    namespace: str
    types: tuple[str, ...]
    allow: frozenset[str]


@dataclass(frozen=True)
class Place:
    """Where a value is being read: what its errors call it, and what its relative paths start from.

    ``name`` is the key path, or the command-line option when the value came
    from the command line (whose paths are relative to the current directory).
    ``read`` holds the values of the keys read before this one, for checks
    across keys; ``warnings`` collects what is worth saying but not fatal.
    """

    file: Path
    name: str
    base: Path
    read: Mapping[str, Any]
    warnings: list[str]

    def error(self, problem: str) -> ConfigError:
        return ConfigError(self.file, self.name, problem)

    def inside(self, suffix: str) -> Place:
        """The same place one level down, such as ``[0]`` or ``.type``."""
        return replace(self, name=self.name + suffix)


_EXPECTED = {str: "a string", int: "an integer", (int, float): "a number", bool: "true or false"}
_EXPECTED.update({list: "an array", dict: "a table"})


@dataclass(frozen=True)
class Value:
    """What a key's value must be: a TOML type, then a check and conversion."""

    text: str
    """The value in words, for the reference and for the error when the check fails."""
    toml: type | tuple[type, ...]
    convert: Callable[[Place, Any], Any] = lambda place, value: value

    def read(self, place: Place, value: Any) -> Any:
        """``value`` checked for its TOML type (a boolean is no number), then checked and converted."""
        if not isinstance(value, self.toml) or (isinstance(value, bool) and self.toml is not bool):
            raise place.error(f"expected {_EXPECTED[self.toml]}, got {kind(value)}")
        return self.convert(place, value)


def kind(value: Any) -> str:
    """The TOML name of a value's type, for error messages."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def bare_domain(example: str, check: Callable[[Place, str], None] = lambda place, domain: None) -> Value:
    """A bare domain, such as ``example``, in its prepared form; ``check`` may refuse it further."""
    text = f"a bare domain, such as {example}"

    def convert(place: Place, value: str) -> str:
        try:
            parsed = parse_jid(value)
        except InvalidFormat as e:
            raise place.error(f"not a valid JID: {value!r} ({e})") from None
        if parsed.user is not None or parsed.resource is not None:
            raise place.error(f"expected {text}, got {value!r}")
        domain: str = parsed.full()
        check(place, domain)
        return domain

    return Value(text, str, convert)


def positive(number: type, text: str) -> Value:
    """A number above zero, converted to ``number`` (int or float)."""

    def convert(place: Place, value: float) -> Any:
        value = number(value)
        if not value > 0:
            raise place.error(f"expected {text}, got {value}")
        return value

    return Value(text, (int, float) if number is float else int, convert)


def one_of(*choices: str) -> Value:
    text = " or ".join(f'"{choice}"' for choice in choices)

    def convert(place: Place, value: str) -> str:
        if value not in choices:
            raise place.error(f"expected {text}, got {value!r}")
        return value

    return Value(text, str, convert)


def _client_endpoint(place: Place, value: str) -> str:
    from twisted.internet import endpoints, reactor

    try:
        endpoints.clientFromString(reactor, value)
    except Exception as e:  # noqa: BLE001 - a missing trustRoots directory raises Twisted's own errors
        raise place.error(f"not a usable Twisted client endpoint: {value!r} ({e})") from None
    return value


def _server_endpoint(place: Place, value: str) -> str:
    from twisted.internet import endpoints, reactor

    try:
        endpoints.serverFromString(reactor, value)
    except (ValueError, TypeError, KeyError) as e:
        raise place.error(f"not a Twisted server endpoint string: {value!r} ({e})") from None
    return value


def _directories(place: Place, names: list[Any]) -> tuple[Path, ...]:
    if not all(isinstance(name, str) for name in names):
        raise place.error("expected a list of directory paths (strings)")
    directories = []
    for name in names:
        directory = (place.base / name).resolve()
        if not directory.is_dir():
            raise place.error(f"no such directory: {directory}")
        directories.append(directory)
    return tuple(directories)


def _tables_by_name(place: Place, tables: dict[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise place.inside(f".{name}").error(f"expected a table, got {kind(table)}")
    return tables


def _tables(place: Place, tables: list[Any], allowed: set[str] | None = None) -> list[tuple[Place, dict[str, Any]]]:
    """The tables of an array of tables, each with its place; keys other than ``allowed`` are errors."""
    entries = []
    for index, table in enumerate(tables):
        entry = place.inside(f"[{index}]")
        if not isinstance(table, dict):
            raise entry.error(f"expected a table, got {kind(table)}")
        for name in table:
            if allowed is not None and name not in allowed:
                raise entry.inside(f".{name}").error(f"unknown key (allowed: {', '.join(sorted(allowed))})")
        entries.append((entry, table))
    return entries


def _identities(place: Place, tables: list[Any]) -> tuple[Identity, ...]:
    identities = []
    for entry, table in _tables(place, tables, {"category", "type", "name"}):
        for name in ("category", "type"):
            if not isinstance(table.get(name), str) or not table[name]:
                raise entry.inside(f".{name}").error("missing or not a non-empty string")
        if "name" in table and not isinstance(table["name"], str):
            raise entry.inside(".name").error(f"expected a string, got {kind(table['name'])}")
        identities.append(Identity(table["category"], table["type"], table.get("name")))
    if not identities:
        raise place.error("at least one identity is required (XEP-0030)")
    return tuple(identities)


def _items(place: Place, tables: list[Any]) -> tuple[Item, ...]:
    items = []
    for entry, table in _tables(place, tables, {"jid", "node", "name"}):
        for name, value in table.items():
            if not isinstance(value, str):
                raise entry.inside(f".{name}").error(f"expected a string, got {kind(value)}")
        if "jid" not in table:
            raise entry.inside(".jid").error("missing: the address the item points to")
        try:
            jid = parse_jid(table["jid"]).full()
        except InvalidFormat as e:
            raise entry.inside(".jid").error(f"not a valid JID: {table['jid']!r} ({e})") from None
        items.append(Item(jid, table.get("node"), table.get("name")))
    return tuple(items)


def _forms(place: Place, tables: list[Any]) -> tuple[Form, ...]:
    forms: dict[str, Form] = {}
    for entry, table in _tables(place, tables):
        form_type = table.get("form_type")
        if not isinstance(form_type, str) or not form_type:
            raise entry.inside(".form_type").error("missing or not a string: the form's FORM_TYPE")
        if form_type in forms:
            raise entry.inside(".form_type").error(f"{form_type!r} is given twice (XEP-0128 allows one form each)")
        fields = {name: value for name, value in table.items() if name != "form_type"}
        for name, value in fields.items():
            if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
                raise entry.inside(f".{name}").error(f"expected a string or an array of strings, got {kind(value)}")
        forms[form_type] = Form.of(form_type, fields)
    return tuple(forms.values())


def _access_rules(place: Place, tables: list[Any]) -> tuple[AccessRule, ...]:
    rules = []
    for entry, table in _tables(place, tables, {"namespace", "type", "allow"}):
        if not isinstance(table.get("namespace"), str) or not table["namespace"]:
            raise entry.inside(".namespace").error("missing or not a string")
        request_type = table.get("type")
        if request_type not in (None, "get", "set"):
            raise entry.inside(".type").error(f"expected get or set (or no type for both), got {request_type!r}")
        allow = table.get("allow")
        if not isinstance(allow, list) or not all(isinstance(address, str) for address in allow):
            raise entry.inside(".allow").error("missing or not an array of JIDs and domains")
        normalized = set()
        for address in allow:
            try:
                normalized.add(parse_jid(address).full())
            except InvalidFormat as e:
                raise entry.inside(".allow").error(f"not a valid JID or domain: {address!r} ({e})") from None
        types = ("get", "set") if request_type is None else (request_type,)
        rules.append(AccessRule(table["namespace"], types, frozenset(normalized)))
    return tuple(rules)


def _addresses(place: Place, addresses: list[Any], words: tuple[str, ...] = ()) -> tuple[str, ...]:
    """JIDs and domains, prepared (``alice@Example.org`` reads as ``alice@example.org``), or one of ``words``."""
    normalized = []
    for index, address in enumerate(addresses):
        entry = place.inside(f"[{index}]")
        if not isinstance(address, str):
            raise entry.error(f"expected a JID or domain, got {kind(address)}")
        if address in words:
            normalized.append(address)
            continue
        try:
            normalized.append(parse_jid(address).full())
        except InvalidFormat as e:
            raise entry.error(f"not a valid JID or domain: {address!r} ({e})") from None
    return tuple(normalized)


def _domains(place: Place, domains: list[Any]) -> tuple[str, ...]:
    """Bare domains, prepared."""
    domain = bare_domain("example.org")
    return tuple(domain.read(place.inside(f"[{index}]"), value) for index, value in enumerate(domains))


def _namespaces(place: Place, namespaces: list[Any]) -> tuple[str, ...]:
    """XML namespace names, each once."""
    for index, namespace in enumerate(namespaces):
        entry = place.inside(f"[{index}]")
        if not isinstance(namespace, str):
            raise entry.error(f"expected a namespace string, got {kind(namespace)}")
        if not namespace or any(character in namespace for character in "&<>'\" \t\n"):
            raise entry.error(f"not a namespace name: {namespace!r}")
    return tuple(dict.fromkeys(namespaces))


def _command_access(place: Place, table: dict[str, Any]) -> Mapping[str, tuple[str, ...]]:
    access = {}
    for node, allowed in table.items():
        entry = place.inside(f".{node}")
        if isinstance(allowed, str):
            allowed = [allowed]
        if not isinstance(allowed, list):
            raise entry.error(
                f'expected an array of JIDs, domains, "admins", "local" or "everyone", got {kind(allowed)}'
            )
        access[node] = _addresses(entry, allowed, ("admins", "local", "everyone"))
    return access


def _store_url(place: Place, url: str) -> str:
    """``sqlite:///PATH`` (relative to the configuration file; ``sqlite:////abs/path``) or ``postgresql://...``.

    A SQLite URL comes back with its path made absolute; its directory must
    exist (the file itself is created on first use). A PostgreSQL URL is
    checked by psycopg, which must be installed for it.
    """
    scheme, separator, rest = url.partition("://")
    if scheme == "sqlite" and separator:
        if not rest.startswith("/") or rest == "/":
            raise place.error(f"expected sqlite:///PATH (three slashes, then the file), got {url!r}")
        path = place.base / rest[1:]
        if not path.parent.is_dir():
            raise place.error(f"the directory {path.parent} does not exist")
        if path.is_dir():
            raise place.error(f"{path} is a directory, not a database file")
        return f"sqlite:///{path.resolve()}"
    if scheme in ("postgresql", "postgres") and separator:
        try:
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise place.error("PostgreSQL needs psycopg: pip install 'iqresponder[postgresql]'") from None
        try:
            conninfo_to_dict(url)
        except Exception as e:  # noqa: BLE001 - psycopg's own words say what is wrong with the URL
            raise place.error(f"not a valid PostgreSQL URL: {' '.join(str(e).split())}") from None
        return url
    # Only the scheme is repeated: the rest may hold a password.
    raise place.error(f'expected "sqlite:///PATH" or "postgresql://...", got a URL starting {scheme + separator!r}')


TEXT = Value("a string", str)
FLAG = Value("true or false", bool)
FILE = Value("a file path, relative to the configuration file", str, lambda place, name: place.base / name)
SECONDS = positive(float, "a positive number of seconds")
POSITIVE = positive(float, "a positive number")
COUNT = positive(int, "a positive integer")
CLIENT_ENDPOINT = Value("a Twisted client endpoint string", str, _client_endpoint)
SERVER_ENDPOINT = Value("a Twisted server endpoint string", str, _server_endpoint)
DIRECTORIES = Value("an array of directory paths, relative to the configuration file", list, _directories)
TABLES_BY_NAME = Value("a table of tables", dict, _tables_by_name)
IDENTITIES = Value("an array of tables", list, _identities)
ITEMS = Value("an array of tables", list, _items)
FORMS = Value("an array of tables", list, _forms)
ADDRESSES = Value("an array of JIDs and domains", list, _addresses)
DOMAINS = Value("an array of domains", list, _domains)
NAMESPACES = Value("an array of namespace names", list, _namespaces)
COMMAND_ACCESS = Value("a table of arrays", dict, _command_access)
STORE_URL = Value('a URL: "sqlite:///PATH" or "postgresql://USER@HOST/DATABASE"', str, _store_url)
ACCESS_RULES = Value("an array of tables", list, _access_rules)
