"""How handler modules and their helpers are imported: from source, every time.

Files of a handler directory whose names start with ``_`` are helpers: a handler
module imports them by their plain names (``import _helpers``, ``from _lib import x``),
as it would a module beside a script. ``HelperFinder`` serves those names, and only
those: a handler directory that holds ``time.py`` leaves ``import time`` to the
standard library. Helpers and handler modules are compiled from the source on disk at
each load, and no bytecode cache is read or written, so a reload serves exactly the
files on disk even when a copy kept their sizes and modification times (``rsync -a``),
which is all that a ``__pycache__`` entry is checked against.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import linecache
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import CodeType, ModuleType


class HelperConflict(Exception):
    """A helper's name cannot be served; ``str()`` is one line naming the file(s)."""


class SourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the module's source each time it is executed; never touches ``__pycache__``."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        # Tracebacks then quote the lines that were compiled, not a cached older copy of the file
        # (linecache, like bytecode, trusts size and mtime; an entry without an mtime is kept as is).
        lines = importlib.util.decode_source(source).splitlines(keepends=True)
        linecache.cache[path] = (len(source), None, lines, path)
        return self.source_to_code(source, path)


def module_spec(name: str, path: Path, package: bool = False) -> ModuleSpec:
    """The spec of the module ``name`` in ``path`` (a package's ``__init__.py`` with ``package``)."""
    spec = importlib.util.spec_from_file_location(
        name,
        path,
        loader=SourceLoader(name, str(path)),
        submodule_search_locations=[str(path.parent)] if package else None,
    )
    assert spec is not None  # a .py path with an explicit loader always has a spec
    return spec


def find_helpers(directories: Sequence[Path]) -> dict[str, Path]:
    """The helpers of ``directories``, by module name: a ``_name.py`` file or a ``_name/__init__.py`` package.

    An entry of ``directories`` that is a file stands for the directory it is in.
    Raises ``HelperConflict`` for a helper named like a standard-library module
    (``_thread``), like an installed module, or present in two directories.
    """
    helpers: dict[str, Path] = {}
    for directory in dict.fromkeys(entry.parent if entry.is_file() else entry for entry in directories):
        for name, path in sorted(_helpers_in(directory).items()):
            if name in helpers:
                raise HelperConflict(f"{path}: a helper module named {name!r} is also in {helpers[name]}")
            _check_not_shadowing(name, path)
            helpers[name] = path
    return helpers


def _helpers_in(directory: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in directory.iterdir() if directory.is_dir() else ():
        name = entry.name.removesuffix(".py") if entry.is_file() else entry.name
        if not name.startswith("_") or name.startswith("__") or not name.isidentifier():
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            found[name] = entry / "__init__.py"  # a package wins over a module of its name, as in Python
        elif entry.is_file() and entry.suffix == ".py":
            found.setdefault(name, entry)
    return found


def _check_not_shadowing(name: str, path: Path) -> None:
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        raise HelperConflict(
            f"{path}: a helper module may not be named {name!r} like the standard library module; rename it"
        )
    loaded = sys.modules.get(name)
    if loaded is not None and not isinstance(getattr(loaded, "__loader__", None), SourceLoader):
        origin = getattr(loaded, "__file__", None) or "a module already imported"
        raise HelperConflict(f"{path}: a helper module may not be named {name!r} like {origin}; rename it")
    installed = importlib.machinery.PathFinder.find_spec(name)
    if installed is not None and installed.origin and not _same_file(installed.origin, path):
        raise HelperConflict(
            f"{path}: a helper module may not be named {name!r} like the installed {installed.origin}; rename it"
        )


def _same_file(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


class HelperFinder:
    """A ``sys.meta_path`` finder for the helpers of the handler directories, and nothing else.

    It serves top-level names in ``helpers`` and the submodules of helper
    packages; every other name goes on to the next finder. It stays in
    ``sys.meta_path`` so that a module may also import a helper lazily, inside
    a function; each load replaces the names it serves.
    """

    def __init__(self) -> None:
        self.helpers: Mapping[str, Path] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: object = None) -> ModuleSpec | None:
        top, _, rest = fullname.partition(".")
        if top not in self.helpers:
            return None
        if not rest:
            location = self.helpers[top]
            return module_spec(fullname, location, package=location.name == "__init__.py")
        tail = fullname.rpartition(".")[2]
        for entry in path or ():
            package = Path(entry, tail, "__init__.py")
            if package.is_file():
                return module_spec(fullname, package, package=True)
            module = Path(entry, f"{tail}.py")
            if module.is_file():
                return module_spec(fullname, module)
        return None

    def invalidate_caches(self) -> None:
        """Nothing is cached: each lookup reads the directory."""


FINDER = HelperFinder()


def _ours() -> dict[str, ModuleType]:
    return {
        name: module
        for name, module in list(sys.modules.items())
        if isinstance(getattr(module, "__loader__", None), SourceLoader)
    }


@contextmanager
def fresh_imports(helpers: Mapping[str, Path]) -> Iterator[None]:
    """Serve ``helpers`` and forget every module imported from source before, so that imports run again.

    When the body raises, the previous helpers and modules come back into
    ``sys.modules`` as they were: a failed reload leaves the set being served whole.
    """
    if FINDER not in sys.meta_path:
        sys.meta_path.insert(0, FINDER)
    previous, saved = FINDER.helpers, _ours()
    for name in saved:
        del sys.modules[name]
    FINDER.helpers = dict(helpers)
    try:
        yield
    except BaseException:
        for name in _ours():
            del sys.modules[name]
        sys.modules.update(saved)
        FINDER.helpers = previous
        raise
