"""The project's own modules import without a deprecation warning on the Python running the tests.

noxfile.py's unit sessions, on every supported version, make a deprecation warning raised from
these modules an error while the tests run. Most of component/ is imported before that filter
applies (pytest loads component.testing as a plugin first), hence a fresh interpreter here.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

IMPORT_EVERY_MODULE = """
import importlib, pathlib, pkgutil, warnings

own = [pathlib.Path(name).resolve() for name in ("component", "handlers", "private_servers", "twisted/plugins")]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for package in ("component", "private_servers"):
        for module in pkgutil.iter_modules(importlib.import_module(package).__path__, package + "."):
            if not module.name.endswith(".__main__"):
                importlib.import_module(module.name)
    for path in sorted(pathlib.Path("handlers").glob("*.py")):
        importlib.import_module("handlers." + path.stem)
    importlib.import_module("twisted.plugins.iqresponder_plugin")
for warning in caught:
    where = pathlib.Path(warning.filename).resolve()
    if issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning)) and any(
        where.is_relative_to(directory) for directory in own
    ):
        print(warnings.formatwarning(warning.message, warning.category, warning.filename, warning.lineno), end="")
"""


def test_importing_every_module_of_the_project_warns_of_no_deprecation():
    imported = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == ""
