"""The wheel users install: it says that the package is typed (PEP 561), so that their type checker reads its hints,
and carries the license its metadata names."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_the_py_typed_marker(tmp_path):
    # hatchling comes with the test extra, so the build needs no network (about half a second).
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check"]
        + ["--quiet", "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
    )
    [wheel] = tmp_path.glob("iqresponder-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "component/py.typed" in names
    assert "component/__init__.py" in names
    assert [name for name in names if name.endswith(".dist-info/licenses/LICENSE")] != []
