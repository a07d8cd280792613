"""`pip install .` into a fresh virtualenv gives a working `twistd iqresponder` (the editable
install that runs the rest of the suite shows `pip install -e .`); `python -m build` makes an sdist,
and a wheel from it, that pass `twine check --strict`, and that wheel works on the newest supported Python."""

import email
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.integration.conftest import PASSWORD, USER
from tests.integration.processes import ComponentProcess
from tests.integration.servers import EACH_SERVER
from tests.integration.xmpp_client import XmppClient

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


def installed(python: str, requirement: Path, directory: Path) -> Path:
    """A clean virtualenv of ``python`` in ``directory``, with ``requirement`` (a checkout or a wheel) installed."""
    venv = directory / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(requirement)], check=True, timeout=600)
    return venv


def run_outside_the_checkout(venv: Path, command: str, *arguments: str) -> subprocess.CompletedProcess:
    """A command of the virtualenv, run where nothing can be imported from the source tree."""
    return subprocess.run(
        [str(venv / "bin" / command), *arguments],
        cwd=venv.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_pip_install_dot_makes_twistd_iqresponder_available(tmp_path):
    venv = installed(sys.executable, ROOT, tmp_path)
    shown = run_outside_the_checkout(venv, "twistd", "iqresponder", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--config=" in shown.stdout and "--handlers=" in shown.stdout
    where = run_outside_the_checkout(
        venv, "python", "-c", "import component; print(component.__file__, component.__version__)"
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


@pytest.fixture(scope="module")
def newest_install(distributions, tmp_path_factory) -> Path:
    """The wheel installed into a clean virtualenv of the newest supported Python."""
    return installed(interpreter(NEWEST_PYTHON), distributions["wheel"], tmp_path_factory.mktemp("newest"))


def test_the_wheel_installs_into_a_clean_virtualenv_of_the_newest_python_and_twistd_iqresponder_help_works(
    newest_install,
):
    shown = run_outside_the_checkout(newest_install, "twistd", "iqresponder", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--config=" in shown.stdout and "--handlers=" in shown.stdout
    where = run_outside_the_checkout(
        newest_install, "python", "-c", "import sys, component; print(sys.version_info[:2], component.__file__)"
    ).stdout
    assert where.startswith(f"({NEWEST_PYTHON.replace('.', ', ')})") and str(newest_install) in where


@pytest.mark.servers(*EACH_SERVER)
def test_deployed_from_the_wheel_as_the_systemd_guide_says_the_component_answers_with_the_bundled_handlers(
    newest_install, server, secret_file, tmp_path
):
    """docs/howto/systemd.md: the sample configuration from share/, its handlers directory pointed at the
    installed bundled handlers, the store in a state directory; then a user's client asks."""
    shared = newest_install / "share" / "iqresponder"
    sample = (shared / "conf" / "iqresponder.toml").read_text()
    config = tmp_path / "etc" / "iqresponder.toml"
    config.parent.mkdir()
    config.write_text(
        sample.replace('directories = ["../handlers"]', f'directories = ["{shared / "handlers"}"]')
        .replace('secret_file = "secret.txt"', f'secret_file = "{secret_file}"')
        .replace('server = "tcp:host=127.0.0.1:port=5347"', f'server = "{server.endpoint}"')
        .replace('url = "sqlite:///store.sqlite3"', f'url = "sqlite:///{tmp_path / "state" / "store.sqlite3"}"')
    )
    (tmp_path / "state").mkdir()
    assert tomllib.loads(config.read_text())["handlers"]["directories"] == [str(shared / "handlers")]
    process = ComponentProcess(config, twistd=newest_install / "bin" / "twistd")
    client = None
    try:
        process.wait_for_log("Authenticated as iq.localhost")
        client = XmppClient(f"{USER}@localhost/deployed", PASSWORD, server.c2s_port)
        features = client.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>")
        assert {"urn:xmpp:ping", "jabber:iq:version", "urn:xmpp:time"} <= {
            feature.get("var") for feature in features.iter("{http://jabber.org/protocol/disco#info}feature")
        }
        version = client.iq("<query xmlns='jabber:iq:version'/>")
        assert version.findtext("{jabber:iq:version}query/{jabber:iq:version}name") == "iqresponder"
        assert process.failures() == []
    finally:
        if client is not None:
            client.close()
        assert process.stop() is not None
