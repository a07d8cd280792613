"""One TOML file in, one frozen ``Settings`` out, read through one table of keys.

``KEYS`` says, for every key of the file, where it lives, what its value must
be, what it is when absent and what it means. The reader, its unknown-key and
wrong-type errors, and the documentation's configuration reference
(``reference()``, which the documentation's build writes into
docs/reference/configuration.md) are all made from that table, so that a
key cannot be read without being documented, nor documented without being
read. What each kind of value must be is in ``component.config_values``.

Every problem is a ``ConfigError`` whose message names the file, the key and
what is wrong, on one line, so that an operator can fix it without reading a
traceback. Relative paths inside the file are relative to the file.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from component.config_values import (
    ACCESS_RULES,
    ADDRESSES,
    CLIENT_ENDPOINT,
    COMMAND_ACCESS,
    COUNT,
    DIRECTORIES,
    DOMAINS,
    FILE,
    FLAG,
    FORMS,
    IDENTITIES,
    ITEMS,
    NAMESPACES,
    POSITIVE,
    SECONDS,
    SERVER_ENDPOINT,
    STORE_URL,
    TABLES_BY_NAME,
    TEXT,
    AccessRule,
    ConfigError,
    Place,
    Value,
    bare_domain,
    kind,
    one_of,
)
from component.dataforms import Form
from component.discovery import Identity, Item

SECRET_VARIABLE = "IQRESPONDER_SECRET"
DEFAULT_STORE_FILE = "store.sqlite3"
"""The SQLite file of ``[store]`` when no ``url`` is given, beside the configuration file."""
DEFAULT_IDENTITY = {"category": "component", "type": "generic", "name": "iqresponder"}


@dataclass(frozen=True)
class Limits:
    """What one stream, one sender and the responders may cost (see docs/reference/limits.md)."""

    max_stanza_bytes: int = 2 * 1024 * 1024
    max_depth: int = 32
    handler_timeout: float = 10.0
    max_in_flight: int = 1000
    sender_rate: float = 50.0
    sender_burst: int = 100


@dataclass(frozen=True)
class Settings:
    """Everything the component reads from its configuration, validated.

    The defaults are those ``KEYS`` gives a file that does not set the key (a
    unit test holds the two equal); they are here too so that a component can be
    built in memory without a file.
    """

    path: Path
    jid: str
    secret: str = field(repr=False)
    instance_jid: str | None = None
    """This process's own name, for scaling out: see docs/howto/scaling.md."""
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
    admins: tuple[str, ...] = ()
    command_access: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    command_session_timeout: float = 600.0
    command_sessions_per_sender: int = 10
    store_url: str | None = None
    """None: SQLite in ``DEFAULT_STORE_FILE`` beside the configuration file (``Settings.store_location``)."""
    store_timeout: float = 5.0
    store_connections: int = 4
    delegated_namespaces: tuple[str, ...] = ()
    """Namespaces to ask servers to delegate (XEP-0355) besides those responders declare ``delegated=True``."""
    trusted_servers: tuple[str, ...] = ()
    """The servers trusted to forward delegated requests and grant privileges; empty: the server's own domain."""
    delegation_grant_wait: float = 10.0

    @property
    def store_location(self) -> str:
        """The store's URL, the default one filled in."""
        return self.store_url or f"sqlite:///{(self.path.parent / DEFAULT_STORE_FILE).resolve()}"


@dataclass(frozen=True)
class Overrides:
    """Command-line values that win over the file."""

    jid: str | None = None
    server: str | None = None
    secret_file: str | None = None
    handler_directories: Sequence[str] = ()
    instance_jid: str | None = None

    def given(self, option: str) -> Any:
        """The value given with ``option`` (such as ``--jid``), a sequence as a list (a TOML array); None if not given."""
        name = "handler_directories" if option == "--handlers" else option.removeprefix("--").replace("-", "_")
        value = getattr(self, name)
        if not value:
            return None
        return list(value) if isinstance(value, (list, tuple)) else value


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a key that must be given."""


@dataclass(frozen=True)
class Key:
    """One key of the file, and everything the reader and the reference need to know about it."""

    path: str
    """Section and name, as errors and the reference spell it: ``component.jid``."""
    value: Value
    default: Any
    """The TOML value an absent key stands for, checked like a given one; None for absent, or REQUIRED."""
    meaning: str
    """One line for the configuration reference."""
    setting: str | None = None
    """The ``Settings`` field it fills (``limits.NAME`` for ``Limits``); None when read by a combining step."""
    option: str | None = None
    """The command-line option that wins over the file."""
    shown: str | None = None
    """The reference's default when the TOML value would not say it."""

    @property
    def section(self) -> str:
        return self.path.partition(".")[0]

    @property
    def name(self) -> str:
        return self.path.partition(".")[2]


def _differs_from_jid(place: Place, instance: str) -> None:
    jid = place.read["component.jid"]
    if instance == jid:
        raise place.error(f"must differ from component.jid ({jid}): it is this instance's own name, such as iq-1.{jid}")


KEYS: tuple[Key, ...] = (
    Key(
        "component.jid",
        bare_domain("iq.example.org"),
        REQUIRED,
        "The component's domain, as the server knows it.",
        setting="jid",
        option="--jid",
    ),
    Key(
        "component.instance_jid",
        bare_domain("iq-1.example.org", _differs_from_jid),
        None,
        "This process's own name, another bare domain the server accepts with the same secret. The process then "
        "also connects under it and sends its outbound queries from it, so that their responses come back to it "
        'even when several processes share `jid`. See "Scaling out".',
        setting="instance_jid",
        option="--instance-jid",
    ),
    Key(
        "component.secret_file",
        FILE,
        None,
        "A file holding the shared secret (surrounding whitespace is stripped). Give `secret_file` or `secret`, "
        f"unless `--secret-file` or the `{SECRET_VARIABLE}` variable gives the secret.",
    ),
    Key("component.secret", TEXT, None, "The shared secret itself; give `secret` or `secret_file`, not both."),
    Key(
        "component.server",
        CLIENT_ENDPOINT,
        "tcp:host=127.0.0.1:port=5347",
        "Where the server listens for components. For direct TLS: `tls:host=xmpp.example.org:port=5270`.",
        setting="server",
        option="--server",
    ),
    Key(
        "component.server_domain",
        bare_domain("example.org"),
        None,
        "The server's own domain: the keepalive pings it, and only its responses may lack a `from`.",
        setting="server_domain",
        shown="the JID without its first label",
    ),
    Key(
        "component.response_timeout",
        SECONDS,
        30.0,
        "How long an outbound query waits for its response, unless the call says otherwise.",
        setting="response_timeout",
    ),
    Key("component.reconnect_max", SECONDS, 60.0, "The cap of the reconnection backoff.", setting="reconnect_max"),
    Key(
        "component.keepalive_interval",
        SECONDS,
        60.0,
        "Time between keepalive pings (XEP-0199) to the server while connected.",
        setting="keepalive_interval",
    ),
    Key(
        "component.keepalive_timeout",
        SECONDS,
        20.0,
        "A ping (or a handshake) unanswered for this long means the server is dead: the connection is dropped "
        "and remade.",
        setting="keepalive_timeout",
    ),
    Key(
        "component.shutdown_grace",
        SECONDS,
        10.0,
        "On SIGTERM, how long requests in progress may take to finish, and then the modules' `teardown()`.",
        setting="shutdown_grace",
    ),
    Key(
        "handlers.directories",
        DIRECTORIES,
        [],
        "Handler directories, loaded in this order.",
        setting="handler_directories",
        option="--handlers",
    ),
    Key(
        "handlers.options",
        TABLES_BY_NAME,
        {},
        "`[handlers.options.NAME]` is handed to the module `NAME.py`'s `setup(component, options)`; "
        "a table for a module that is not loaded is an error.",
        setting="handler_options",
    ),
    Key(
        "disco.identities",
        IDENTITIES,
        [DEFAULT_IDENTITY],
        "XEP-0030 identities: `category` and `type` required, `name` optional.",
        setting="identities",
    ),
    Key(
        "disco.items",
        ITEMS,
        [],
        "disco#items of the component: `jid` required, `node` and `name` optional.",
        setting="disco_items",
    ),
    Key(
        "disco.extended",
        FORMS,
        [],
        "XEP-0128 forms, one `[[disco.extended]]` each: `form_type` (the hidden FORM_TYPE) and fields, each a "
        "string or an array of strings.",
        setting="disco_forms",
    ),
    Key(
        "disco.provider_timeout",
        SECONDS,
        10.0,
        "How long a module's disco provider function may take before its query gets `internal-server-error`.",
        setting="disco_provider_timeout",
    ),
    Key(
        "limits.max_stanza_bytes",
        COUNT,
        2097152,
        "A larger stanza is read to its end and discarded; a get or set is answered with `policy-violation`, "
        "the stream stays up.",
        setting="limits.max_stanza_bytes",
    ),
    Key(
        "limits.max_depth",
        COUNT,
        32,
        "A stanza nested deeper is discarded and answered the same way.",
        setting="limits.max_depth",
    ),
    Key(
        "limits.handler_timeout",
        SECONDS,
        10.0,
        "A responder still running after this is no longer waited for (a coroutine is cancelled); the sender gets "
        "`internal-server-error`.",
        setting="limits.handler_timeout",
    ),
    Key(
        "limits.max_in_flight",
        COUNT,
        1000,
        "Responders running at once; beyond it, requests get `resource-constraint` (wait).",
        setting="limits.max_in_flight",
    ),
    Key(
        "limits.sender_rate",
        POSITIVE,
        50.0,
        "Requests a second each sender (bare JID) may send, on average: a token bucket per sender; beyond it, "
        "`resource-constraint` (wait).",
        setting="limits.sender_rate",
    ),
    Key(
        "limits.sender_burst",
        COUNT,
        100,
        "The requests a sender may send at once above `sender_rate`: the size of its bucket.",
        setting="limits.sender_burst",
    ),
    Key(
        "access.rules",
        ACCESS_RULES,
        [],
        "Allow lists: `[[access.rules]]` with `namespace`, optional `type` (`get` or `set`), and `allow`, a list "
        "of bare JIDs, full JIDs or domains; any other sender gets `forbidden` (auth).",
        setting="access",
        shown="none: everyone may ask",
    ),
    Key(
        "access.admins",
        ADDRESSES,
        [],
        "The operators: bare JIDs (every resource), full JIDs or domains. They may list and run the ad-hoc commands "
        'declared `access="admins"` (the default) or `"local"`.',
        setting="admins",
    ),
    Key(
        "access.commands",
        COMMAND_ACCESS,
        {},
        "`[access.commands]` `NODE = [...]`: who may list and run that ad-hoc command, instead of its declaration: "
        'JIDs, domains, `"admins"`, `"local"` (the server\'s own users) or `"everyone"`.',
        setting="command_access",
        shown="none: each command's declaration",
    ),
    Key(
        "commands.session_timeout",
        SECONDS,
        600.0,
        "An ad-hoc command session left this long without a next step expires (`session-expired`).",
        setting="command_session_timeout",
    ),
    Key(
        "commands.sessions_per_sender",
        COUNT,
        10,
        "Open command sessions per sender (bare JID); a new one ends the oldest.",
        setting="command_sessions_per_sender",
    ),
    Key(
        "delegation.namespaces",
        NAMESPACES,
        [],
        "Namespaces to ask the server to delegate to the component (XEP-0355), besides those of responders "
        'declared `delegated=True`. See "Answering for the server\'s users".',
        setting="delegated_namespaces",
    ),
    Key(
        "delegation.servers",
        DOMAINS,
        [],
        "The servers trusted to forward their users' requests (delegation) and to grant privileges (XEP-0356); "
        "anything else that claims to is refused.",
        setting="trusted_servers",
        shown="the server's domain (`component.server_domain`)",
    ),
    Key(
        "delegation.grant_wait",
        SECONDS,
        10.0,
        "How long after connecting the server may take to grant each namespace asked for before the component logs "
        "a warning saying what to configure on the server.",
        setting="delegation_grant_wait",
    ),
    Key(
        "metrics.endpoint",
        SERVER_ENDPOINT,
        None,
        "Where `/metrics` is served for Prometheus, such as `tcp:port=9108:interface=127.0.0.1`.",
        setting="metrics_endpoint",
        shown="none: off",
    ),
    Key(
        "logging.format",
        one_of("text", "json"),
        "text",
        '`"json"` makes twistd and twist write JSON lines (a `--logger` or `--log-format` on the command line wins).',
        setting="log_format",
    ),
    Key(
        "logging.requests",
        FLAG,
        False,
        "Log one debug event per request (type, namespace, sender, id, outcome, time taken).",
        setting="log_requests",
    ),
    Key(
        "store.url",
        STORE_URL,
        None,
        "Where handlers' state is kept (`component.store`): a SQLite file, created on first use, or a PostgreSQL "
        'database that several instances share. See "State for handlers".',
        setting="store_url",
        shown=f"the file `{DEFAULT_STORE_FILE}` beside the configuration file",
    ),
    Key(
        "store.timeout",
        SECONDS,
        5.0,
        "A store operation not done within this fails, and a request that needed it gets `internal-server-error` "
        "(wait).",
        setting="store_timeout",
    ),
    Key(
        "store.connections",
        COUNT,
        4,
        "PostgreSQL only: connections (and threads) of each instance's pool.",
        setting="store_connections",
    ),
)


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
    return _settings(path, document, overrides or Overrides(), environ)


def _settings(path: Path, document: Mapping[str, Any], overrides: Overrides, environ: Mapping[str, str]) -> Settings:
    sections = _sections(path, document)
    warnings: list[str] = []
    values: dict[str, Any] = {}
    for key in KEYS:
        value = overrides.given(key.option) if key.option else None
        if key.option and value is not None:
            place = Place(path, key.option, Path.cwd(), values, warnings)
        else:
            place = Place(path, key.path, path.parent, values, warnings)
            value = sections[key.section].get(key.name, key.default)
        values[key.path] = _read(place, key, value)
    fields: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for key in KEYS:
        if key.setting is not None:
            owner, _, name = key.setting.rpartition(".")
            (limits if owner == "limits" else fields)[name] = values[key.path]
    secret = _secret(path, values, overrides, environ, warnings)
    return Settings(path=path, secret=secret, limits=Limits(**limits), warnings=tuple(warnings), **fields)


def _sections(path: Path, document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Each section of ``KEYS`` as the document gives it (empty when absent), any other section or key an error."""
    allowed = sorted({key.section for key in KEYS})
    for name in document:
        if name not in allowed:
            raise ConfigError(path, name, f"unknown section (allowed: {', '.join(allowed)})")
    sections: dict[str, Mapping[str, Any]] = {}
    for section in allowed:
        table = document.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(path, section, f"expected a table, got {kind(table)}")
        names = sorted(key.name for key in KEYS if key.section == section)
        for name in table:
            if name not in names:
                raise ConfigError(path, f"{section}.{name}", f"unknown key (allowed: {', '.join(names)})")
        sections[section] = table
    return sections


def _read(place: Place, key: Key, value: Any) -> Any:
    """``value`` read as ``key``'s value; None stays None (an optional key that is absent)."""
    if value is REQUIRED:
        raise place.error(f"missing: expected {key.value.text}")
    return None if value is None else key.value.read(place, value)


def _secret(
    path: Path, values: dict[str, Any], overrides: Overrides, environ: Mapping[str, str], warnings: list[str]
) -> str:
    """The secret, from the first of: ``--secret-file``, the environment, ``secret_file`` or ``secret``."""
    if overrides.secret_file:
        place = Place(path, "--secret-file", Path.cwd(), values, warnings)
        return _read_secret(place, Path(overrides.secret_file))
    if environ.get(SECRET_VARIABLE):
        return environ[SECRET_VARIABLE]
    secret: str | None = values["component.secret"]
    secret_file: Path | None = values["component.secret_file"]
    if secret is not None and secret_file is not None:
        raise ConfigError(path, "component.secret", "give secret or secret_file, not both")
    if secret_file is not None:
        return _read_secret(Place(path, "component.secret_file", path.parent, values, warnings), secret_file)
    if not secret:
        raise ConfigError(
            path,
            "component.secret",
            f"missing: set secret_file (or secret) here, or the {SECRET_VARIABLE} environment variable",
        )
    return secret


def _read_secret(place: Place, path: Path) -> str:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        problem = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise place.error(f"cannot read the secret file {path}: {problem}") from None
    if not secret:
        raise place.error(f"the secret file {path} is empty")
    mode = path.stat().st_mode
    if mode & 0o077:
        place.warnings.append(
            f"{path}: the secret file is readable by group or others (mode {mode & 0o777:o}); chmod 600 it"
        )
    return secret


def reference() -> str:
    """The configuration reference's table of keys (docs/reference/configuration.md), made from ``KEYS``."""
    rows = ["| key | value | default | meaning |", "|---|---|---|---|"]
    for key in KEYS:
        meaning = key.meaning + (f" `{key.option}` on the command line wins." if key.option else "")
        rows.append(f"| `{key.path}` | {key.value.text} | {shown_default(key)} | {meaning} |")
    return "\n".join(rows) + "\n"


def shown_default(key: Key) -> str:
    """The default as the reference shows it: a TOML value in backquotes, ``required``, or words."""
    if key.default is REQUIRED:
        return "required"
    if key.shown is not None:
        return key.shown
    if key.default is None:
        return "none"
    return f"`{_toml(key.default)}`"


def _toml(value: Any) -> str:
    """``value`` written as a TOML value, inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{name} = {_toml(item)}" for name, item in value.items()) + " }" if value else "{}"
    return repr(value)
