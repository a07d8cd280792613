"""The unit tests on every Python version the project supports: `make versions`, which `make test` runs.

The versions are pyproject.toml's classifiers, so what the package declares is what is tested.
Each session installs the project with its test extra into its own virtualenv in .nox/, kept
between runs (a fresh clone builds them). The integration tests run on .venv's Python in `make test`.
"""

import os
import subprocess
import sys
from pathlib import Path

import nox

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)

# A deprecation warning raised from the project's own modules fails the run. pytest's -W takes a
# literal module name, its ini option filterwarnings a regular expression, hence -o. Handler modules
# are loaded as iqresponder_handlers.<name> (component/loader.py).
OWN_MODULES = r"(component|handlers|iqresponder_handlers|private_servers)(\.|$)"
OWN_DEPRECATIONS_ARE_ERRORS = "\n".join(
    f"error::{category}:{OWN_MODULES}" for category in ("DeprecationWarning", "PendingDeprecationWarning")
)

nox.options.sessions = ["unit"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"


def activate_pyenv_versions() -> None:
    """Make one installed pyenv interpreter of each version active, so that nox finds it.

    pyenv's shims (python3.12, python3.13) run only the versions made active by PYENV_VERSION, a
    .python-version file or `pyenv global`; nox resolves the shims the same way.
    """
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installed = sorted(
        (path.name for path in versions.glob("3.*") if path.name.replace(".", "").isdigit()),
        key=lambda name: tuple(map(int, name.split("."))),
    )
    newest = [
        [name for name in installed if name.startswith(f"{version}.")][-1]
        for version in PYTHONS
        if any(name.startswith(f"{version}.") for name in installed)
    ]
    active = [name for name in os.environ.get("PYENV_VERSION", "").split(":") if name]
    if newest:
        os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(active + newest))


def require_interpreters() -> None:
    """Exit with one line naming the first supported version that has no interpreter (make versions)."""
    supported = ", ".join(PYTHONS)
    for version in PYTHONS:
        try:
            subprocess.run([f"python{version}", "-c", ""], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            sys.exit(f"make versions: no Python {version} (pyenv install {version}); the unit tests run on {supported}")


activate_pyenv_versions()


@nox.session(python=PYTHONS)
def unit(session: nox.Session) -> None:
    """The unit tests, with the checkout's code (python -m pytest puts it first on sys.path).

    Arguments after -- replace tests/unit: `.venv/bin/nox -s unit-3.13 -- tests/unit/test_router.py -x`.
    """
    session.install(".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        f"filterwarnings={OWN_DEPRECATIONS_ARE_ERRORS}",
        *(session.posargs or ["tests/unit"]),
    )
