"""One TOML file in, one frozen ``Settings`` out.

Every problem is a ``ConfigError`` whose message names the file, the key and
what is wrong, on one line, so that an operator can fix it without reading a
traceback. Relative paths inside the file are relative to the file.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from component.dataforms import Form
from component.discovery import Identity, Item
from component.request import InvalidFormat, parse_jid

SECRET_VARIABLE = "IQRESPONDER_SECRET"
DEFAULT_IDENTITY = {"category": "component", "type": "generic", "name": "iqresponder"}


class ConfigError(Exception):
    """A configuration problem: ``str()`` is the one line shown to the operator."""

    def __init__(self, path: Path | str, key: str | None, problem: str) -> None:
        where = f"{path}: {key}" if key else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Limits:
    """What one stream, one sender and the responders may cost (see README, "Limits")."""

    max_stanza_bytes: int = 2 * 1024 * 1024
    max_depth: int = 32
    handler_timeout: float = 10.0
    max_in_flight: int = 1000
    sender_rate: float = 50.0
    sender_burst: int = 100


@dataclass(frozen=True)
class AccessRule:
    """Only ``allow`` (bare JIDs, full JIDs or domains) may send ``type`` requests in ``namespace``."""

    namespace: str
    types: tuple[str, ...]
    allow: frozenset[str]


@dataclass(frozen=True)
class Settings:
    """Everything the component reads from its configuration, validated."""

    path: Path
    jid: str
    secret: str = field(repr=False)
    instance_jid: str | None = None
    """This process's own name, for scaling out: see README, "Scaling out"."""
    server: str = "tcp:host=127.0.0.1:port=5347"
    response_timeout: float = 30.0
    reconnect_max: float = 60.0
    handler_directories: tuple[Path, ...] = ()
    handler_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    identities: tuple[Identity, ...] = (Identity(**DEFAULT_IDENTITY),)
    disco_items: tuple[Item, ...] = ()
    disco_forms: tuple[Form, ...] = ()
    disco_provider_timeout: float = 10.0
    server_domain: str | None = None
    keepalive_interval: float = 60.0
    keepalive_timeout: float = 20.0
    shutdown_grace: float = 10.0
    limits: Limits = Limits()
    access: tuple[AccessRule, ...] = ()
    warnings: tuple[str, ...] = ()
    metrics_endpoint: str | None = None
    log_requests: bool = False
    log_format: str = "text"


@dataclass(frozen=True)
class Overrides:
    """Command-line values that win over the file."""

    jid: str | None = None
    server: str | None = None
    secret_file: str | None = None
    handler_directories: Sequence[str] = ()
    instance_jid: str | None = None


def load(path: str | Path, overrides: Overrides | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read and validate the configuration file at ``path``.

    The secret comes from, in order: ``--secret-file``, the
    ``IQRESPONDER_SECRET`` environment variable, then ``secret_file`` or
    ``secret`` in the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            document = tomllib.load(f)
    except OSError as e:
        raise ConfigError(path, None, f"cannot read the file: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, None, f"not valid TOML: {e}") from None
    return _Reader(path).settings(document, overrides or Overrides(), environ)


class _Reader:
    """Walks the parsed document, checking each key against what is allowed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        self.warnings: list[str] = []

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.path, key, problem)

    def table(self, document: Mapping[str, Any], key: str, allowed: set[str]) -> Mapping[str, Any]:
        value = document.get(key.rpartition(".")[2], {})
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {_kind(value)}")
        for name in value:
            if name not in allowed:
                raise self.error(f"{key}.{name}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return value

    def value(
        self, table: Mapping[str, Any], section: str, key: str, kind: type | tuple[type, ...], default: Any = None
    ) -> Any:
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            expected = "a number" if kind == (int, float) else _kind(kind())
            raise self.error(f"{section}.{key}", f"expected {expected}, got {_kind(value)}")
        return value

    def seconds(self, table: Mapping[str, Any], section: str, key: str, default: float) -> float:
        value = float(self.value(table, section, key, (int, float), default))
        if not (value > 0) or math.isnan(value):
            raise self.error(f"{section}.{key}", f"expected a positive number of seconds, got {value}")
        return value

    def settings(self, document: Mapping[str, Any], overrides: Overrides, environ: Mapping[str, str]) -> Settings:
        for name in document:
            if name not in {"component", "handlers", "disco", "limits", "access", "metrics", "logging"}:
                raise self.error(
                    name, "unknown section (allowed: access, component, disco, handlers, limits, logging, metrics)"
                )
        component = self.table(
            document,
            "component",
            {
                "jid",
                "instance_jid",
                "secret",
                "secret_file",
                "server",
                "server_domain",
                "response_timeout",
                "reconnect_max",
                "keepalive_interval",
                "keepalive_timeout",
                "shutdown_grace",
            },
        )
        limits = self.table(
            document,
            "limits",
            {"max_stanza_bytes", "max_depth", "handler_timeout", "max_in_flight", "sender_rate", "sender_burst"},
        )
        access = self.table(document, "access", {"rules"})
        metrics = self.table(document, "metrics", {"endpoint"})
        logging = self.table(document, "logging", {"requests", "format"})
        handlers = self.table(document, "handlers", {"directories", "options"})
        disco = self.table(document, "disco", {"identities", "items", "extended", "provider_timeout"})

        jid = self.jid(overrides.jid or self.value(component, "component", "jid", str))
        return Settings(
            path=self.path,
            jid=jid,
            instance_jid=self.instance_jid(
                overrides.instance_jid or self.value(component, "component", "instance_jid", str), jid
            ),
            secret=self.secret(component, overrides, environ),
            server=self.server(overrides.server or self.value(component, "component", "server", str, Settings.server)),
            response_timeout=self.seconds(component, "component", "response_timeout", Settings.response_timeout),
            reconnect_max=self.seconds(component, "component", "reconnect_max", Settings.reconnect_max),
            handler_directories=self.directories(handlers, overrides),
            handler_options=self.handler_options(handlers),
            identities=self.identities(disco),
            disco_items=self.items(disco),
            disco_forms=self.forms(disco),
            disco_provider_timeout=self.seconds(disco, "disco", "provider_timeout", Settings.disco_provider_timeout),
            server_domain=self.domain(component, "server_domain"),
            keepalive_interval=self.seconds(component, "component", "keepalive_interval", Settings.keepalive_interval),
            keepalive_timeout=self.seconds(component, "component", "keepalive_timeout", Settings.keepalive_timeout),
            shutdown_grace=self.seconds(component, "component", "shutdown_grace", Settings.shutdown_grace),
            limits=Limits(
                max_stanza_bytes=self.count(limits, "max_stanza_bytes", Limits.max_stanza_bytes),
                max_depth=self.count(limits, "max_depth", Limits.max_depth),
                handler_timeout=self.seconds(limits, "limits", "handler_timeout", Limits.handler_timeout),
                max_in_flight=self.count(limits, "max_in_flight", Limits.max_in_flight),
                sender_rate=self.seconds(limits, "limits", "sender_rate", Limits.sender_rate),
                sender_burst=self.count(limits, "sender_burst", Limits.sender_burst),
            ),
            access=self.access_rules(access),
            warnings=tuple(self.warnings),
            metrics_endpoint=self.server_endpoint(metrics, "endpoint"),
            log_requests=self.flag(logging, "logging", "requests"),
            log_format=self.choice(logging, "logging", "format", ("text", "json")),
        )

    def choice(self, table: Mapping[str, Any], section: str, key: str, choices: tuple[str, ...]) -> str:
        value = self.value(table, section, key, str, choices[0])
        if value not in choices:
            raise self.error(f"{section}.{key}", f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def flag(self, table: Mapping[str, Any], section: str, key: str, default: bool = False) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"{section}.{key}", f"expected true or false, got {_kind(value)}")
        return value

    def server_endpoint(self, table: Mapping[str, Any], key: str) -> str | None:
        value = self.value(table, "metrics", key, str)
        if value is None:
            return None
        from twisted.internet import endpoints, reactor

        try:
            endpoints.serverFromString(reactor, value)
        except (ValueError, TypeError, KeyError) as e:
            raise self.error(f"metrics.{key}", f"not a Twisted server endpoint string: {value!r} ({e})") from None
        return value

    def count(self, table: Mapping[str, Any], key: str, default: int) -> int:
        value = self.value(table, "limits", key, int, default)
        if value < 1:
            raise self.error(f"limits.{key}", f"expected a positive integer, got {value}")
        return value

    def domain(self, table: Mapping[str, Any], key: str) -> str | None:
        value = self.value(table, "component", key, str)
        if value is None:
            return None
        try:
            parsed = parse_jid(value)
        except InvalidFormat as e:
            raise self.error(f"component.{key}", f"not a valid domain: {value!r} ({e})") from None
        if parsed.user is not None or parsed.resource is not None:
            raise self.error(f"component.{key}", f"expected a bare domain, got {value!r}")
        return parsed.host

    def access_rules(self, access: Mapping[str, Any]) -> tuple[AccessRule, ...]:
        rules = []
        for index, table in enumerate(self.value(access, "access", "rules", list, [])):
            key = f"access.rules[{index}]"
            if not isinstance(table, dict):
                raise self.error(key, f"expected a table, got {_kind(table)}")
            for name in table:
                if name not in {"namespace", "type", "allow"}:
                    raise self.error(f"{key}.{name}", "unknown key (allowed: allow, namespace, type)")
            if not isinstance(table.get("namespace"), str) or not table["namespace"]:
                raise self.error(f"{key}.namespace", "missing or not a string")
            kind = table.get("type")
            if kind not in (None, "get", "set"):
                raise self.error(f"{key}.type", f"expected get or set (or no type for both), got {kind!r}")
            allow = table.get("allow")
            if not isinstance(allow, list) or not all(isinstance(entry, str) for entry in allow):
                raise self.error(f"{key}.allow", "missing or not an array of JIDs and domains")
            normalized = set()
            for entry in allow:
                try:
                    normalized.add(parse_jid(entry).full())
                except InvalidFormat as e:
                    raise self.error(f"{key}.allow", f"not a valid JID or domain: {entry!r} ({e})") from None
            types = ("get", "set") if kind is None else (kind,)
            rules.append(AccessRule(table["namespace"], types, frozenset(normalized)))
        return tuple(rules)

    def jid(self, value: str | None, key: str = "component.jid") -> str:
        if value is None:
            raise self.error(key, "missing: the component's domain, such as iq.example.org")
        try:
            parsed = parse_jid(value)
        except InvalidFormat as e:
            raise self.error(key, f"not a valid JID: {value!r} ({e})") from None
        if parsed.user is not None or parsed.resource is not None:
            raise self.error(key, f"expected a bare domain such as iq.example.org, got {value!r}")
        return parsed.full()

    def instance_jid(self, value: str | None, jid: str) -> str | None:
        if value is None:
            return None
        instance = self.jid(value, "component.instance_jid")
        if instance == jid:
            raise self.error(
                "component.instance_jid",
                f"must differ from component.jid ({jid}): it is this instance's own name, such as iq-1.{jid}",
            )
        return instance

    def secret(self, component: Mapping[str, Any], overrides: Overrides, environ: Mapping[str, str]) -> str:
        if overrides.secret_file:
            return self.read_secret("--secret-file", Path(overrides.secret_file))
        if environ.get(SECRET_VARIABLE):
            return environ[SECRET_VARIABLE]
        secret = self.value(component, "component", "secret", str)
        secret_file = self.value(component, "component", "secret_file", str)
        if secret is not None and secret_file is not None:
            raise self.error("component.secret", "give secret or secret_file, not both")
        if secret_file is not None:
            return self.read_secret("component.secret_file", self.base / secret_file)
        if not secret:
            raise self.error(
                "component.secret",
                f"missing: set secret_file (or secret) here, or the {SECRET_VARIABLE} environment variable",
            )
        return secret

    def read_secret(self, key: str, path: Path) -> str:
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            problem = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise self.error(key, f"cannot read the secret file {path}: {problem}") from None
        if not secret:
            raise self.error(key, f"the secret file {path} is empty")
        mode = path.stat().st_mode
        if mode & 0o077:
            self.warnings.append(
                f"{path}: the secret file is readable by group or others (mode {mode & 0o777:o}); chmod 600 it"
            )
        return secret

    def server(self, value: str) -> str:
        from twisted.internet import endpoints, reactor

        try:
            endpoints.clientFromString(reactor, value)
        except Exception as e:  # noqa: BLE001 - a missing trustRoots directory raises Twisted's own errors
            raise self.error("component.server", f"not a usable Twisted client endpoint: {value!r} ({e})") from None
        return value

    def directories(self, handlers: Mapping[str, Any], overrides: Overrides) -> tuple[Path, ...]:
        if overrides.handler_directories:
            key, base, names = "--handlers", Path.cwd(), list(overrides.handler_directories)
        else:
            key, base = "handlers.directories", self.base
            names = self.value(handlers, "handlers", "directories", list, [])
            if not all(isinstance(name, str) for name in names):
                raise self.error(key, "expected a list of directory paths (strings)")
        directories = []
        for name in names:
            directory = (base / name).resolve()
            if not directory.is_dir():
                raise self.error(key, f"no such directory: {directory}")
            directories.append(directory)
        return tuple(directories)

    def handler_options(self, handlers: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
        options = self.value(handlers, "handlers", "options", dict, {})
        for name, table in options.items():
            if not isinstance(table, dict):
                raise self.error(f"handlers.options.{name}", f"expected a table, got {_kind(table)}")
        return options

    def identities(self, disco: Mapping[str, Any]) -> tuple[Identity, ...]:
        tables = self.value(disco, "disco", "identities", list, [DEFAULT_IDENTITY])
        identities = []
        for index, table in enumerate(tables):
            key = f"disco.identities[{index}]"
            if not isinstance(table, dict):
                raise self.error(key, f"expected a table like {{ category = ..., type = ... }}, got {_kind(table)}")
            for name in table:
                if name not in {"category", "type", "name"}:
                    raise self.error(f"{key}.{name}", "unknown key (allowed: category, name, type)")
            for name in ("category", "type"):
                if not isinstance(table.get(name), str) or not table[name]:
                    raise self.error(f"{key}.{name}", "missing or not a non-empty string")
            if "name" in table and not isinstance(table["name"], str):
                raise self.error(f"{key}.name", f"expected a string, got {_kind(table['name'])}")
            identities.append(Identity(table["category"], table["type"], table.get("name")))
        if not identities:
            raise self.error("disco.identities", "at least one identity is required (XEP-0030)")
        return tuple(identities)

    def tables(self, disco: Mapping[str, Any], key: str) -> list[tuple[str, dict[str, Any]]]:
        """The array of tables ``disco.key``, each with its key path for messages."""
        tables = self.value(disco, "disco", key, list, [])
        for index, table in enumerate(tables):
            if not isinstance(table, dict):
                raise self.error(f"disco.{key}[{index}]", f"expected a table, got {_kind(table)}")
        return [(f"disco.{key}[{index}]", table) for index, table in enumerate(tables)]

    def items(self, disco: Mapping[str, Any]) -> tuple[Item, ...]:
        items = []
        for key, table in self.tables(disco, "items"):
            for name, value in table.items():
                if name not in {"jid", "node", "name"}:
                    raise self.error(f"{key}.{name}", "unknown key (allowed: jid, name, node)")
                if not isinstance(value, str):
                    raise self.error(f"{key}.{name}", f"expected a string, got {_kind(value)}")
            if "jid" not in table:
                raise self.error(f"{key}.jid", "missing: the address the item points to")
            try:
                jid = parse_jid(table["jid"]).full()
            except InvalidFormat as e:
                raise self.error(f"{key}.jid", f"not a valid JID: {table['jid']!r} ({e})") from None
            items.append(Item(jid, table.get("node"), table.get("name")))
        return tuple(items)

    def forms(self, disco: Mapping[str, Any]) -> tuple[Form, ...]:
        forms: dict[str, Form] = {}
        for key, table in self.tables(disco, "extended"):
            form_type = table.get("form_type")
            if not isinstance(form_type, str) or not form_type:
                raise self.error(f"{key}.form_type", "missing or not a string: the form's FORM_TYPE")
            if form_type in forms:
                raise self.error(f"{key}.form_type", f"{form_type!r} is given twice (XEP-0128 allows one form each)")
            fields = {name: value for name, value in table.items() if name != "form_type"}
            for name, value in fields.items():
                if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
                    raise self.error(f"{key}.{name}", f"expected a string or an array of strings, got {_kind(value)}")
            forms[form_type] = Form.of(form_type, fields)
        return tuple(forms.values())


def _kind(value: Any) -> str:
    """The TOML name of a value's type, for error messages."""
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)
