"""conf/iqresponder.service: what it runs and how it is hardened, and systemd's own verdict on it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

UNIT = Path(__file__).parents[2] / "conf" / "iqresponder.service"
HARDENING = [
    "NoNewPrivileges=true",
    "ProtectSystem=strict",
    "ProtectHome=true",
    "PrivateTmp=true",
    "PrivateDevices=true",
    "ProtectKernelTunables=true",
    "ProtectKernelModules=true",
    "ProtectControlGroups=true",
    "RestrictNamespaces=true",
    "LockPersonality=true",
    "MemoryDenyWriteExecute=true",
]


def settings() -> dict[str, str]:
    lines = [line.strip() for line in UNIT.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_unit_runs_twistd_in_the_foreground_with_the_config_and_restarts_on_failure():
    unit = settings()
    assert unit["ExecStart"].split()[1:3] == ["--nodaemon", "--pidfile="]
    assert "iqresponder --config /etc/iqresponder/iqresponder.toml" in unit["ExecStart"]
    assert unit["Restart"] == "on-failure"
    assert unit["RestartPreventExitStatus"] == "78"  # a configuration error is not retried
    assert unit["User"] != "root"


def test_unit_uses_systemds_hardening_options():
    text = UNIT.read_text()
    missing = [option for option in HARDENING if option not in text]
    assert missing == []


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
