"""conf/iqresponder.service: what it runs and how it is hardened, and systemd's own verdict on it."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

UNIT = Path(__file__).parents[2] / "conf" / "iqresponder.service"
HARDENING = {
    "NoNewPrivileges": "true",
    "ProtectSystem": "strict",
    "ProtectHome": "true",
    "PrivateTmp": "true",
    "PrivateDevices": "true",
    "ProtectKernelTunables": "true",
    "ProtectKernelModules": "true",
    "ProtectControlGroups": "true",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "true",
    "LockPersonality": "true",
    "MemoryDenyWriteExecute": "true",
    "SystemCallArchitectures": "native",
}


def service_section(text: str) -> dict[str, str]:
    """The [Service] settings as systemd reads them: comments skipped, names case-sensitive, a repeated name's last value.

    A continuation line (systemd's trailing backslash) would fail to parse here, loudly.
    """
    parser = configparser.ConfigParser(
        strict=False, interpolation=None, delimiters=("=",), comment_prefixes=("#", ";"), inline_comment_prefixes=None
    )
    parser.optionxform = str
    parser.read_string(text)
    return dict(parser["Service"])


def hardening_differences(text: str) -> dict[str, str | None]:
    """Each hardening option whose value differs from HARDENING: option -> the value found (None when absent)."""
    service = service_section(text)
    return {option: service.get(option) for option, value in HARDENING.items() if service.get(option) != value}


def test_unit_runs_twistd_in_the_foreground_with_the_config_and_restarts_on_failure():
    unit = service_section(UNIT.read_text())
    assert unit["ExecStart"].split()[1:3] == ["--nodaemon", "--pidfile="]
    assert "iqresponder --config /etc/iqresponder/iqresponder.toml" in unit["ExecStart"]
    assert unit["Restart"] == "on-failure"
    assert unit["RestartPreventExitStatus"] == "78"  # a configuration error is not retried
    assert unit["User"] != "root"


def test_unit_gives_the_store_a_writable_state_directory_under_its_read_only_system():
    unit = service_section(UNIT.read_text())
    assert unit["StateDirectory"] == "iqresponder" and unit["ProtectSystem"] == "strict"
    assert "/var/lib/iqresponder/store.sqlite3" in (UNIT.parents[1] / "docs" / "howto" / "systemd.md").read_text()


def test_unit_sets_each_of_systemds_hardening_options_to_its_value():
    assert hardening_differences(UNIT.read_text()) == {}


def test_a_commented_out_or_weakened_hardening_option_is_reported():
    text = UNIT.read_text()
    assert "\nNoNewPrivileges=true\n" in text and "\nProtectSystem=strict\n" in text
    weakened = text.replace("\nNoNewPrivileges=true\n", "\n#NoNewPrivileges=true\n").replace(
        "\nProtectSystem=strict\n", "\nProtectSystem=true\n"
    )
    assert hardening_differences(weakened) == {"NoNewPrivileges": None, "ProtectSystem": "true"}


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path):
    # verify checks that ExecStart exists, so point it at this checkout's twistd.
    twistd = Path(sys.executable).parent / "twistd"
    unit = tmp_path / "iqresponder.service"
    unit.write_text(UNIT.read_text().replace("/opt/iqresponder/bin/twistd", str(twistd)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in (result.stdout + result.stderr).splitlines() if "iqresponder.service" in line] == []
