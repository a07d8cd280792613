"""Load drop-in handler modules from directories.

Each ``*.py`` file not starting with ``_`` is imported as its own module, in
name order, directory by directory. Its responders are registered and its
``setup(component, options)`` is called with its own options table. Any
problem stops start-up with a ``HandlerLoadError`` that names the file.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from twisted.logger import Logger

from component.registry import RegistrationConflict, Registry

MODULE_PREFIX = "iqresponder_handlers."

log = Logger()


class HandlerLoadError(Exception):
    """A handler module could not be loaded; ``str()`` is one line naming the file."""


@dataclass(frozen=True)
class HandlerModule:
    """A loaded handler module and the namespaces its responders serve."""

    name: str
    path: Path
    module: ModuleType
    namespaces: tuple[str, ...]


def handler_files(directories: Sequence[Path]) -> list[Path]:
    """The module files of ``directories``, in load order; a name may appear only once.

    An entry may also be a single ``.py`` file (the test kit loads one module that way).
    """
    files: dict[str, Path] = {}
    for directory in directories:
        candidates = [directory] if directory.is_file() else sorted(directory.glob("*.py"))
        for path in candidates:
            if path.name.startswith("_"):
                continue
            if path.stem in files:
                raise HandlerLoadError(
                    f"{path}: a handler module named {path.stem!r} is already loaded from {files[path.stem]}"
                )
            files[path.stem] = path
    return list(files.values())


def load_handlers(
    directories: Sequence[Path],
    registry: Registry,
    component: Any,
    options: Mapping[str, Mapping[str, Any]],
) -> list[HandlerModule]:
    """Import, register and set up every handler module of ``directories``."""
    files = handler_files(directories)
    unknown = sorted(set(options) - {path.stem for path in files})
    if unknown:
        raise HandlerLoadError(f"handlers.options.{unknown[0]}: no handler module named {unknown[0]!r} is loaded")
    loaded = []
    for path in files:
        module = _import(path)
        try:
            namespaces = registry.collect(module, origin=str(path))
        except RegistrationConflict as e:
            raise HandlerLoadError(f"{path}: {e}") from None
        setup = getattr(module, "setup", None)
        if callable(setup):
            try:
                setup(component, dict(options.get(path.stem, {})))
            except Exception as e:  # noqa: BLE001 - any failure of a module's setup stops start-up with its name
                raise HandlerLoadError(f"{path}: setup() failed: {_describe(e)}") from None
        handler = HandlerModule(path.stem, path, module, tuple(dict.fromkeys(namespaces)))
        log.info(
            "Loaded handler module {name} from {path}: {namespaces}",
            name=handler.name,
            path=str(path),
            namespaces=", ".join(handler.namespaces) or "no responders",
        )
        loaded.append(handler)
    return loaded


def _import(path: Path) -> ModuleType:
    name = MODULE_PREFIX + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HandlerLoadError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure stops start-up naming the file
        del sys.modules[name]
        raise HandlerLoadError(f"{path}: import failed: {_describe(e)}") from None
    return module


def _describe(error: BaseException) -> str:
    """``Type: message (file:line)`` for the innermost frame, all on one line."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    if isinstance(error, SyntaxError) and error.lineno:
        where = f" ({Path(error.filename or '?').name}:{error.lineno})"
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}{where}"
