"""`pip install .` into a fresh virtualenv gives a working `twistd iqresponder` (the editable
install that runs the rest of the suite shows `pip install -e .`)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def test_wheel_holds_the_package_and_the_plugin_but_no_twisted_package_files(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("iqresponder-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/iqresponder_plugin.py" in names
    assert "component/router.py" in names
    assert not [name for name in names if name.startswith("twisted/") and name.endswith("__init__.py")]


def test_pip_install_dot_makes_twistd_iqresponder_available(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT)], check=True, timeout=600)
    help_text = subprocess.run(
        [str(venv / "bin" / "twistd"), "iqresponder", "--help"],
        cwd=tmp_path,  # not the checkout, so nothing is imported from the source tree
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "--config=" in help_text and "--handlers=" in help_text
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import component; print(component.__file__, component.__version__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert str(venv) in where and "0+unknown" not in where
