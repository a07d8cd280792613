"""The server configuration the documentation shows is made of settings the suite runs its servers with.

A page's Prosody (Lua) or ejabberd (YAML) block is an excerpt for the reader's own domain, so it
cannot be run as it stands. What can drift is its vocabulary: an option renamed, a module
misspelt, a level of nesting lost. So each block must parse as its server parses it, and every
setting it names (by its path of keys, with the names the reader chooses, such as domains and
namespaces, as ``*``) must be one that the suite's own configuration, which the integration
tests start Prosody and ejabberd with, also sets.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from private_servers.ejabberd import PrivateEjabberd

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted(path for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")] if "_build" not in path.parts)
PROSODY_CONFIG = ROOT / "conf" / "prosody" / "prosody.cfg.lua"


def blocks(language: str) -> list[tuple[str, str]]:
    """Every fenced block of ``language`` in the README and the documentation: (where, text)."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(rf"^([ \t]*)```{language}[ \t]*\n(.*?)^\1```[ \t]*$", text, re.MULTILINE | re.DOTALL):
            line = text.count("\n", 0, match.start()) + 1
            block = "\n".join(row.removeprefix(match.group(1)) for row in match.group(2).splitlines())
            found.append((f"{page.relative_to(ROOT)}:{line}", block))
    return found


def chosen(key: object) -> str:
    """A key as a setting's path names it: ``*`` for a name the reader chooses (a domain, a namespace)."""
    return "*" if isinstance(key, str) and re.search(r"[.:]", key) else str(key)


# Reads a Prosody configuration as Prosody's configmanager does (a Lua chunk whose global
# assignments are options of the section the last VirtualHost or Component call opened) and
# prints one line per setting: the section's kind, then the option's path of string keys, the
# keys that name a domain or a namespace as "*"; and each enabled module by name.
PROSODY_READER = r"""
local section = "global"
local function opens(kind) return function() section = kind; return function() end end end
local function chosen(key) if key:find("[.:]") then return "*" end return key end
local function walk(prefix, value)
  if type(value) ~= "table" then print(section .. " " .. prefix) return end
  print(section .. " " .. prefix)
  for key, item in pairs(value) do
    if type(key) == "string" then walk(prefix .. "." .. chosen(key), item) end
  end
end
local environment = setmetatable(
  {VirtualHost = opens("VirtualHost"), Component = opens("Component"),
   table = table, tonumber = tonumber, error = error},
  {__index = function(_, name) if name:match("^ENV_") then return os.getenv(name:sub(5)) end end,
   __newindex = function(_, name, value)
     walk(name, value)
     if name == "modules_enabled" then
       for _, module in ipairs(value) do print(section .. " modules_enabled=" .. module) end
     end
   end})
local chunk, problem = load(io.read("a"), "=config", "t", environment)
if not chunk then io.stderr:write(problem, "\n") os.exit(1) end
chunk()
"""


def prosody_settings(config: str, environment: dict[str, str] | None = None) -> set[str]:
    """The settings of a Prosody configuration, read with the Lua Prosody runs on (Debian's lua5.4)."""
    lua = shutil.which("lua5.4")
    assert lua, "lua5.4 is missing: Debian's prosody package brings it (make test installs Prosody)"
    result = subprocess.run(
        [lua, "-e", PROSODY_READER],
        check=False,
        input=config,
        capture_output=True,
        text=True,
        env=environment or {},
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.splitlines())


def ejabberd_settings(value: object, prefix: str = "") -> set[str]:
    """The paths of keys of an ejabberd configuration (a list's items under ``[]``)."""
    if isinstance(value, dict):
        return {prefix} | {
            path
            for key, item in value.items()
            for path in ejabberd_settings(item, f"{prefix}.{chosen(key)}" if prefix else chosen(key))
        }
    if isinstance(value, list):
        return {prefix} | {path for item in value for path in ejabberd_settings(item, f"{prefix}[]")}
    return {prefix}


@pytest.fixture(scope="module")
def suite_prosody() -> set[str]:
    environment = {
        "IQR_PROSODY_DIR": "/nonexistent",
        "IQR_C2S_PORT": "5222",
        "IQR_COMPONENT_PORT": "5347",
        "IQRESPONDER_SECRET": "s3cret",
        "IQR_TLS_PORT": "5223",
        "IQR_TLS_CERT": "cert.pem",
        "IQR_TLS_KEY": "key.pem",
    }
    return prosody_settings(PROSODY_CONFIG.read_text(), environment)


@pytest.fixture(scope="module")
def suite_ejabberd(tmp_path_factory) -> set[str]:
    server = PrivateEjabberd(
        tmp_path_factory.mktemp("ejabberd"),
        5222,
        5347,
        "s3cret",
        tls_port=5223,
        tls_certfile=Path("server.pem"),
        api_port=5280,
    )
    return ejabberd_settings(yaml.safe_load(server.render_config()))


def test_the_pages_show_server_configuration():
    assert blocks("lua") and blocks("yaml")


@pytest.mark.parametrize(("where", "block"), blocks("lua"), ids=[where for where, _ in blocks("lua")])
def test_each_prosody_block_parses_and_sets_only_what_the_suites_prosody_sets(where, block, suite_prosody):
    settings = prosody_settings(block)
    assert settings, f"{where}: sets nothing"
    assert settings - suite_prosody == set(), f"{where}: not set in {PROSODY_CONFIG.relative_to(ROOT)}"


@pytest.mark.parametrize(("where", "block"), blocks("yaml"), ids=[where for where, _ in blocks("yaml")])
def test_each_ejabberd_block_parses_and_sets_only_what_the_suites_ejabberd_sets(where, block, suite_ejabberd):
    settings = ejabberd_settings(yaml.safe_load(block))
    assert settings - suite_ejabberd == set(), f"{where}: not set in conf/ejabberd/ejabberd.yml.template"


def test_a_misspelt_option_or_module_and_a_lost_level_of_nesting_are_found(suite_prosody, suite_ejabberd):
    prosody = 'Component "iq.example.org"\n    component_secrett = "x"\n    modules_enabled = { "delegashun" }\n'
    assert prosody_settings(prosody) - suite_prosody == {
        "Component component_secrett",
        "Component modules_enabled=delegashun",
    }
    ejabberd = yaml.safe_load("modules:\n  mod_privilege:\n    both: iqresponder_only\n")
    assert ejabberd_settings(ejabberd) - suite_ejabberd == {"modules.mod_privilege.both"}
