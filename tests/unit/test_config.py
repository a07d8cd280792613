"""Configuration: what a valid file gives, and the one-line error for each way it can be wrong."""

import textwrap
from collections import Counter
from dataclasses import fields
from pathlib import Path

import pytest

from component import Identity, Item
from component.config import KEYS, ConfigError, Limits, Overrides, Settings, load, shown_default

MINIMAL = """
[component]
jid = "iq.example.org"
secret = "s3cret"
"""


def config(tmp_path: Path, text: str, name: str = "iqresponder.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_for(path: Path, overrides: Overrides | None = None, environ=None) -> str:
    with pytest.raises(ConfigError) as raised:
        load(path, overrides or Overrides(), environ={} if environ is None else environ)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith((str(path), str(path.parent)))
    return message


def test_minimal_file_gets_the_documented_defaults(tmp_path):
    settings = load(config(tmp_path, MINIMAL), environ={})
    assert settings.jid == "iq.example.org"
    assert settings.server == "tcp:host=127.0.0.1:port=5347"
    assert settings.response_timeout == 30.0
    assert settings.reconnect_max == 60.0
    assert settings.handler_directories == ()
    assert settings.identities == (Identity("component", "generic", "iqresponder"),)


def test_every_documented_key_is_read(tmp_path):
    (tmp_path / "handlers").mkdir()
    (tmp_path / "secret.txt").write_text("from-file\n")
    path = config(
        tmp_path,
        """
        [component]
        jid = "iq.example.org"
        secret_file = "secret.txt"
        server = "tcp:host=192.0.2.1:port=5275"
        response_timeout = 5
        reconnect_max = 12.5

        [handlers]
        directories = ["handlers"]

        [handlers.options.example]
        colour = "blue"

        [disco]
        identities = [{ category = "automation", type = "rpc" }, { category = "component", type = "generic", name = "x" }]
        items = [{ jid = "pubsub.example.org", name = "Publish-Subscribe" }, { jid = "iq.example.org", node = "n" }]
        provider_timeout = 2.5

        [[disco.extended]]
        form_type = "http://jabber.org/network/serverinfo"
        abuse-addresses = ["mailto:abuse@example.org", "xmpp:abuse@example.org"]
        support-addresses = "https://example.org/support"
        """,
    )
    settings = load(path, environ={})
    assert settings.secret == "from-file"
    assert settings.server == "tcp:host=192.0.2.1:port=5275"
    assert (settings.response_timeout, settings.reconnect_max) == (5.0, 12.5)
    assert settings.handler_directories == ((tmp_path / "handlers").resolve(),)
    assert settings.handler_options == {"example": {"colour": "blue"}}
    assert settings.identities == (Identity("automation", "rpc"), Identity("component", "generic", "x"))
    assert settings.disco_items == (Item("pubsub.example.org", name="Publish-Subscribe"), Item("iq.example.org", "n"))
    assert settings.disco_provider_timeout == 2.5
    [form] = settings.disco_forms
    assert form.form_type == "http://jabber.org/network/serverinfo"
    assert form.values("abuse-addresses") == ("mailto:abuse@example.org", "xmpp:abuse@example.org")
    assert form.values("support-addresses") == ("https://example.org/support",)


def test_secret_never_appears_in_the_settings_repr(tmp_path):
    assert "s3cret" not in repr(load(config(tmp_path, MINIMAL), environ={}))


def test_environment_variable_supplies_the_secret(tmp_path):
    path = config(tmp_path, '[component]\njid = "iq.example.org"\n')
    assert load(path, environ={"IQRESPONDER_SECRET": "from-env"}).secret == "from-env"


def test_command_line_overrides_the_file(tmp_path):
    (tmp_path / "other-handlers").mkdir()
    (tmp_path / "cli-secret").write_text("from-cli")
    overrides = Overrides(
        jid="other.example.org",
        server="tcp:host=127.0.0.1:port=6000",
        secret_file=str(tmp_path / "cli-secret"),
        handler_directories=(str(tmp_path / "other-handlers"),),
    )
    settings = load(config(tmp_path, MINIMAL), overrides, environ={"IQRESPONDER_SECRET": "env"})
    assert settings.jid == "other.example.org"
    assert settings.server == "tcp:host=127.0.0.1:port=6000"
    assert settings.secret == "from-cli"
    assert settings.handler_directories == ((tmp_path / "other-handlers").resolve(),)


@pytest.mark.parametrize(
    "text, key, problem",
    [
        (MINIMAL + "colour = 'blue'\n", "component.colour", "unknown key"),
        (MINIMAL + "[extra]\n", "extra", "unknown section"),
        (MINIMAL + "[handlers]\ndirectory = ['x']\n", "handlers.directory", "unknown key"),
        ('[component]\njid = 42\nsecret = "s"\n', "component.jid", "expected a string, got an integer"),
        (MINIMAL + "response_timeout = 'soon'\n", "component.response_timeout", "expected a number"),
        (MINIMAL + "response_timeout = -1\n", "component.response_timeout", "positive"),
        (MINIMAL + "reconnect_max = true\n", "component.reconnect_max", "expected a number, got a boolean"),
        (MINIMAL + "server = 'nonsense:endpoint'\n", "component.server", "not a usable Twisted client endpoint"),
        ('[component]\njid = "user@iq.example.org"\nsecret = "s"\n', "component.jid", "bare domain"),
        ('[component]\njid = "bad..jid"\nsecret = "s"\n', "component.jid", "not a valid JID"),
        ('[component]\nsecret = "s"\n', "component.jid", "missing"),
        ('[component]\njid = "iq.example.org"\n', "component.secret", "missing"),
        (MINIMAL + 'secret_file = "x"\n', "component.secret", "not both"),
        ('[component]\njid = "iq.example.org"\nsecret_file = "absent.txt"\n', "component.secret_file", "absent.txt"),
        (MINIMAL + "[handlers]\ndirectories = ['nowhere']\n", "handlers.directories", "no such directory"),
        (MINIMAL + "[handlers]\ndirectories = 'handlers'\n", "handlers.directories", "expected an array"),
        (MINIMAL + "[handlers]\ndirectories = [1]\n", "handlers.directories", "list of directory paths"),
        (MINIMAL + "[handlers.options]\nexample = 3\n", "handlers.options.example", "expected a table"),
        (MINIMAL + "[disco]\nidentities = [{ category = 'x' }]\n", "disco.identities[0].type", "missing"),
        (MINIMAL + "[disco]\nidentities = [{ category = 'x', type = 'y', nom = 'z' }]\n", "identities[0].nom", ""),
        (MINIMAL + "[disco]\nidentities = []\n", "disco.identities", "at least one"),
        (MINIMAL + "[[disco.items]]\nname = 'x'\n", "disco.items[0].jid", "missing"),
        (MINIMAL + "[[disco.items]]\njid = '@@'\n", "disco.items[0].jid", "not a valid JID"),
        (MINIMAL + "[[disco.items]]\njid = 'a.b'\nnodes = 'x'\n", "disco.items[0].nodes", "unknown key"),
        (MINIMAL + "[[disco.items]]\njid = 'a.b'\nname = 3\n", "disco.items[0].name", "expected a string"),
        (MINIMAL + "[disco]\nitems = ['a.b']\n", "disco.items[0]", "expected a table"),
        (MINIMAL + "[[disco.extended]]\nabuse = 'x'\n", "disco.extended[0].form_type", "missing"),
        (MINIMAL + "[[disco.extended]]\nform_type = 'u'\nabuse = 3\n", "disco.extended[0].abuse", "string"),
        (
            MINIMAL + "[[disco.extended]]\nform_type = 'u'\n[[disco.extended]]\nform_type = 'u'\n",
            "disco.extended[1].form_type",
            "twice",
        ),
        (MINIMAL + "[disco]\nprovider_timeout = 0\n", "disco.provider_timeout", "positive"),
        (MINIMAL + "[component.jid]\n", "", "TOML"),
        ("[component\n", "", "not valid TOML"),
    ],
)
def test_each_mistake_is_one_line_naming_file_key_and_problem(tmp_path, text, key, problem):
    path = config(tmp_path, text)
    message = error_for(path)
    assert key in message and problem in message, message


def test_empty_secret_file_is_an_error(tmp_path):
    (tmp_path / "secret.txt").write_text("\n")
    path = config(tmp_path, '[component]\njid = "iq.example.org"\nsecret_file = "secret.txt"\n')
    assert "empty" in error_for(path)


def test_missing_file_is_an_error(tmp_path):
    message = error_for(tmp_path / "absent.toml")
    assert "cannot read" in message


def test_unreadable_file_is_an_error(tmp_path):
    (tmp_path / "a-directory.toml").mkdir()  # unreadable as a file, even for root
    assert "cannot read" in error_for(tmp_path / "a-directory.toml")


def test_bad_command_line_secret_file_names_the_option(tmp_path):
    message = error_for(config(tmp_path, MINIMAL), Overrides(secret_file=str(tmp_path / "nope")))
    assert "--secret-file" in message


def test_bad_command_line_handler_directory_names_the_option(tmp_path):
    message = error_for(config(tmp_path, MINIMAL), Overrides(handler_directories=(str(tmp_path / "nope"),)))
    assert "--handlers" in message and "no such directory" in message


def test_secret_file_readable_by_others_gives_a_warning_naming_the_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    secret.chmod(0o644)
    path = config(tmp_path, '[component]\njid = "iq.example.org"\nsecret_file = "secret.txt"\n')
    [warning] = load(path, environ={}).warnings
    assert str(secret) in warning and "644" in warning and "s3cret" not in warning
    secret.chmod(0o600)
    assert load(path, environ={}).warnings == ()


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ("[limits]\nmax_stanza_bytes = 0\n", "limits.max_stanza_bytes", "positive integer"),
        ("[limits]\nhandler_timeout = 'x'\n", "limits.handler_timeout", "expected a number"),
        ("[limits]\nburst = 3\n", "limits.burst", "unknown key"),
        ("[[access.rules]]\nallow = ['a@b']\n", "access.rules[0].namespace", "missing"),
        ("[[access.rules]]\nnamespace = 'n'\n", "access.rules[0].allow", "missing"),
        ("[[access.rules]]\nnamespace = 'n'\ntype = 'result'\nallow = []\n", "access.rules[0].type", "get or set"),
        ("[[access.rules]]\nnamespace = 'n'\nallow = ['@@']\n", "access.rules[0].allow", "not a valid JID"),
        ("keepalive_interval = -5\n", "component.keepalive_interval", "positive"),
    ],
)
def test_limits_and_access_mistakes_name_the_key(tmp_path, text, key, problem):
    message = error_for(config(tmp_path, MINIMAL + text))
    assert key in message and problem in message, message


def test_limits_access_and_keepalive_are_read(tmp_path):
    path = config(
        tmp_path,
        MINIMAL
        + "keepalive_interval = 15\nkeepalive_timeout = 5\nshutdown_grace = 3\nserver_domain = 'example.org'\n"
        + "[limits]\nmax_stanza_bytes = 65536\nmax_depth = 10\nhandler_timeout = 2\nmax_in_flight = 50\n"
        + "sender_rate = 5\nsender_burst = 20\n"
        + "[[access.rules]]\nnamespace = 'urn:x'\ntype = 'set'\nallow = ['Admin@Example.org', 'example.net']\n",
    )
    settings = load(path, environ={})
    assert (settings.keepalive_interval, settings.keepalive_timeout, settings.shutdown_grace) == (15, 5, 3)
    assert settings.server_domain == "example.org"
    assert settings.limits == Limits(65536, 10, 2.0, 50, 5.0, 20)
    [rule] = settings.access
    assert (rule.namespace, rule.types, rule.allow) == ("urn:x", ("set",), {"admin@example.org", "example.net"})


def test_a_tls_server_whose_trust_roots_directory_is_missing_is_a_config_error(tmp_path):
    path = config(tmp_path, MINIMAL + f"server = 'tls:host=localhost:port=5270:trustRoots={tmp_path}/nowhere/'\n")
    assert "component.server" in error_for(path)


def test_instance_jid_is_optional_and_read_as_a_bare_domain(tmp_path):
    assert load(config(tmp_path, MINIMAL), environ={}).instance_jid is None
    text = MINIMAL.replace('jid = "iq.example.org"', 'jid = "iq.example.org"\ninstance_jid = "IQ-1.example.org"')
    assert load(config(tmp_path, text), environ={}).instance_jid == "iq-1.example.org"


def test_instance_jid_from_the_command_line_wins(tmp_path):
    text = MINIMAL.replace('jid = "iq.example.org"', 'jid = "iq.example.org"\ninstance_jid = "iq-1.example.org"')
    settings = load(config(tmp_path, text), Overrides(instance_jid="iq-2.example.org"), environ={})
    assert settings.instance_jid == "iq-2.example.org"


@pytest.mark.parametrize(
    "value, problem",
    [
        ('"iq.example.org"', "must differ from component.jid"),
        ('"node@iq-1.example.org"', "expected a bare domain"),
        ('"iq-1.example.org/res"', "expected a bare domain"),
        ("7", "expected a string"),
    ],
)
def test_a_bad_instance_jid_is_one_line_naming_the_key(tmp_path, value, problem):
    text = MINIMAL.replace('jid = "iq.example.org"', f'jid = "iq.example.org"\ninstance_jid = {value}')
    message = error_for(config(tmp_path, text))
    assert "component.instance_jid" in message and problem in message


def file_with(tmp_path: Path, values: dict[str, str]) -> Path:
    """A file with the minimal keys, and ``values`` (key path to TOML text) added or replacing them."""
    values = {"component.jid": '"iq.example.org"', "component.secret": '"s3cret"', **values}
    sections: dict[str, list[str]] = {}
    for path, text in values.items():
        section, _, name = path.partition(".")
        sections.setdefault(section, []).append(f"{name} = {text}")
    return config(tmp_path, "".join(f"[{section}]\n" + "\n".join(lines) + "\n" for section, lines in sections.items()))


def test_a_minimal_file_gives_exactly_the_settings_defaults(tmp_path):
    path = config(tmp_path, MINIMAL)
    assert load(path, environ={}) == Settings(path=path, jid="iq.example.org", secret="s3cret")


def test_the_defaults_the_readme_shows_read_as_leaving_the_keys_out(tmp_path):
    shown = {key.path: shown_default(key).strip("`") for key in KEYS if shown_default(key).startswith("`")}
    assert "component.server" in shown and "disco.identities" in shown and "limits.max_depth" in shown
    path = file_with(tmp_path, shown)
    assert load(path, environ={}) == Settings(path=path, jid="iq.example.org", secret="s3cret")


def test_each_setting_is_filled_by_one_key():
    filled = Counter(key.setting for key in KEYS if key.setting is not None)
    assert max(filled.values()) == 1
    read_otherwise = {"path", "secret", "limits", "warnings"}
    assert set(filled) == {f.name for f in fields(Settings)} - read_otherwise | {
        f"limits.{f.name}" for f in fields(Limits)
    }


WRONG_TYPE = {str: ("7", "a string"), bool: ('"yes"', "true or false"), list: ('"x"', "an array")}
WRONG_TYPE.update({dict: ("3", "a table"), int: ("1.5", "an integer"), (int, float): ("true", "a number")})


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.path)
def test_a_value_of_the_wrong_type_is_one_line_naming_the_key(tmp_path, key):
    value, expected = WRONG_TYPE[key.value.toml]
    message = error_for(file_with(tmp_path, {key.path: value}))
    assert f"{key.path}: expected {expected}, got " in message, message


@pytest.mark.parametrize("section", sorted({key.section for key in KEYS}))
def test_an_unknown_key_names_the_keys_its_section_allows(tmp_path, section):
    message = error_for(file_with(tmp_path, {f"{section}.colour": '"blue"'}))
    allowed = ", ".join(sorted(key.name for key in KEYS if key.section == section))
    assert message.endswith(f"{section}.colour: unknown key (allowed: {allowed})"), message


def test_a_section_that_is_not_a_table_is_an_error(tmp_path):
    assert "limits: expected a table, got an integer" in error_for(
        config(tmp_path, MINIMAL.replace("[component]", "limits = 3\n[component]"))
    )


@pytest.mark.parametrize(
    "key, value, problem",
    [
        ("metrics.endpoint", '"nonsense:x"', "not a Twisted server endpoint string"),
        ("logging.format", '"xml"', 'expected "text" or "json", got \'xml\''),
        ("limits.sender_rate", "0", "expected a positive number, got 0.0"),
        ("limits.sender_burst", "-1", "expected a positive integer, got -1"),
        ("component.server_domain", '"admin@example.org"', "expected a bare domain, such as example.org"),
        ("component.keepalive_timeout", "nan", "expected a positive number of seconds, got nan"),
        (
            "access.rules",
            "[{ namespace = 'n', allow = [], colour = 'x' }]",
            "unknown key (allowed: allow, namespace, type)",
        ),
    ],
)
def test_each_check_of_the_table_names_the_key(tmp_path, key, value, problem):
    message = error_for(file_with(tmp_path, {key: value}))
    assert key in message and problem in message, message


def test_logging_and_metrics_are_read(tmp_path):
    path = file_with(
        tmp_path,
        {
            "logging.format": '"json"',
            "logging.requests": "true",
            "metrics.endpoint": '"tcp:port=9108:interface=127.0.0.1"',
        },
    )
    settings = load(path, environ={})
    assert (settings.log_format, settings.log_requests) == ("json", True)
    assert settings.metrics_endpoint == "tcp:port=9108:interface=127.0.0.1"


@pytest.mark.parametrize(
    "overrides, option, problem",
    [
        (Overrides(jid="user@iq.example.org"), "--jid", "expected a bare domain"),
        (Overrides(server="nonsense:x"), "--server", "not a usable Twisted client endpoint"),
        (Overrides(instance_jid="iq.example.org"), "--instance-jid", "must differ from component.jid"),
    ],
)
def test_a_bad_command_line_value_names_the_option(tmp_path, overrides, option, problem):
    message = error_for(config(tmp_path, MINIMAL), overrides)
    assert f"{option}: {problem}" in message, message


def test_a_missing_jid_says_what_is_expected(tmp_path):
    message = error_for(config(tmp_path, '[component]\nsecret = "s"\n'))
    assert message.endswith("component.jid: missing: expected a bare domain, such as iq.example.org")


def test_the_secret_from_the_command_line_or_environment_leaves_the_files_secret_keys_unread(tmp_path):
    path = config(tmp_path, '[component]\njid = "iq.example.org"\nsecret = "s"\nsecret_file = "absent"\n')
    assert load(path, environ={"IQRESPONDER_SECRET": "from-env"}).secret == "from-env"


def test_the_delegation_section_is_read(tmp_path):
    settings = load(
        config(
            tmp_path,
            MINIMAL
            + '[delegation]\nnamespaces = ["jabber:iq:private", "jabber:iq:private", "urn:example:a"]\n'
            + 'servers = ["Example.org", "localhost"]\ngrant_wait = 3\n',
        )
    )
    assert settings.delegated_namespaces == ("jabber:iq:private", "urn:example:a")
    assert settings.trusted_servers == ("example.org", "localhost")
    assert settings.delegation_grant_wait == 3.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('servers = ["alice@example.org"]', "delegation.servers[0]: expected a bare domain, such as example.org"),
        ('servers = ["bad domain"]', "delegation.servers[0]: not a valid JID"),
        ("servers = [3]", "delegation.servers[0]: expected a string, got an integer"),
        ('namespaces = ["urn:a", ""]', "delegation.namespaces[1]: not a namespace name"),
        ("namespaces = [true]", "delegation.namespaces[0]: expected a namespace string, got a boolean"),
        ('namespaces = "urn:a"', "delegation.namespaces: expected an array, got a string"),
        ("grant_wait = 0", "delegation.grant_wait: expected a positive number of seconds"),
    ],
)
def test_a_bad_delegation_value_names_its_key(tmp_path, text, message):
    assert message in error_for(config(tmp_path, MINIMAL + f"[delegation]\n{text}\n"))
