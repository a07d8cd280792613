"""The wheel users install: it says that the package is typed (PEP 561), so that their type checker reads its hints;
it carries the license its metadata names, and the bundled handlers and the sample configuration for a deployment."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def names(tmp_path_factory) -> list[str]:
    """The files of a wheel built from the checkout."""
    out = tmp_path_factory.mktemp("wheel")
    # hatchling comes with the test extra, so the build needs no network (about half a second).
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check"]
        + ["--quiet", "--wheel-dir", str(out), str(ROOT)],
        check=True,
    )
    [wheel] = out.glob("iqresponder-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_ships_the_py_typed_marker(names):
    assert "component/py.typed" in names
    assert "component/__init__.py" in names


def test_the_wheel_carries_the_license(names):
    assert [name for name in names if name.endswith(".dist-info/licenses/LICENSE")] != []


def test_the_wheel_installs_the_bundled_handlers_and_the_sample_configuration_under_share(names):
    shared = {name.split("/data/", 1)[1] for name in names if ".data/data/" in name}
    bundled = {f"share/iqresponder/handlers/{path.name}" for path in (ROOT / "handlers").glob("*.py")}
    assert shared == bundled | {"share/iqresponder/conf/iqresponder.toml", "share/iqresponder/conf/iqresponder.service"}
