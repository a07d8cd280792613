"""The probe is a client tool beside the framework, not part of it: no framework module imports it."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]

IMPORT_THE_FRAMEWORK = """
import importlib, json, pkgutil, sys
import component
names = [module.name for module in pkgutil.iter_modules(component.__path__)]
for name in names:
    if name != "probe":
        importlib.import_module("component." + name)
import twisted.plugins.iqresponder_plugin
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def test_no_framework_module_imports_the_probe():
    # A fresh interpreter, so that nothing this test session imported earlier counts.
    output = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_FRAMEWORK], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found = json.loads(output)
    assert "probe" in found["modules"]  # the probe is where this test looks for it
    assert "component.router" in found["loaded"] and "twisted.plugins.iqresponder_plugin" in found["loaded"]
    assert "component.probe" not in found["loaded"]
