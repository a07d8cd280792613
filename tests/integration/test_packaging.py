"""`pip install .` into a fresh virtualenv gives a working `twistd iqresponder` (the editable
install that runs the rest of the suite shows `pip install -e .`); `python -m build` makes an sdist,
and a wheel from it, that pass `twine check --strict`, and that wheel works on the newest supported Python."""

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
NEWEST_PYTHON = "3.13"


def interpreter(version: str) -> str:
    """The path of a Python ``version`` interpreter: pyenv's newest of that version, else one on PATH.

    make versions (noxfile.py) has already failed, with one line, on a machine that has none.
    """
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installed = sorted(
        versions.glob(f"{version}.*/bin/python{version}"),
        key=lambda path: tuple(int(part) for part in path.parts[-3].split(".") if part.isdigit()),
    )
    found = str(installed[-1]) if installed else shutil.which(f"python{version}")
    assert found, f"no Python {version}: pyenv install {version}"
    return found


@pytest.fixture(scope="module")
def distributions(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel of ``python -m build``, which builds the wheel from the sdist."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], check=True, timeout=600)
    [sdist] = out.glob("iqresponder-*.tar.gz")
    [wheel] = out.glob("iqresponder-*.whl")
    return {"sdist": sdist, "wheel": wheel}


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


def test_build_makes_an_sdist_and_a_wheel_that_pass_twine_check_strict(distributions):
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(distributions["sdist"]), str(distributions["wheel"])],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 2 and "warning" not in checked.stdout.lower()


def test_the_wheel_says_which_pythons_are_tested_from_the_oldest_on(distributions):
    wheel = zipfile.ZipFile(distributions["wheel"])
    [name] = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    metadata = wheel.read(name).decode()
    headers = email.message_from_string(metadata)
    prefix = "Programming Language :: Python :: 3."
    tested = [f"3.{line.removeprefix(prefix)}" for line in headers.get_all("Classifier") if line.startswith(prefix)]
    assert tested == ["3.11", "3.12", NEWEST_PYTHON]
    assert headers["Requires-Python"] == f">={tested[0]}"
    assert headers["Description-Content-Type"] == "text/markdown"


def test_the_wheel_built_from_the_sdist_holds_the_files_of_one_built_from_the_checkout(distributions, tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    [from_checkout] = tmp_path.glob("iqresponder-*.whl")
    assert sorted(zipfile.ZipFile(distributions["wheel"]).namelist()) == sorted(
        zipfile.ZipFile(from_checkout).namelist()
    )


def test_the_wheel_installs_into_a_clean_virtualenv_of_the_newest_python_and_twistd_iqresponder_help_works(
    distributions, tmp_path
):
    venv = tmp_path / "venv"
    subprocess.run([interpreter(NEWEST_PYTHON), "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(distributions["wheel"])], check=True, timeout=600
    )
    shown = subprocess.run(
        [str(venv / "bin" / "twistd"), "iqresponder", "--help"],
        cwd=tmp_path,  # not the checkout, so nothing is imported from the source tree
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "--config=" in shown.stdout and "--handlers=" in shown.stdout
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys, component; print(sys.version_info[:2], component.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert where.startswith(f"({NEWEST_PYTHON.replace('.', ', ')})") and str(venv) in where
