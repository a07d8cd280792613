"""Load drop-in handler modules from directories, and tear them down.

Each ``*.py`` file not starting with ``_`` is imported as its own module, in
name order, directory by directory. Its responders are registered and its
``setup(component, options)`` is called with its own options table, checked
first against the module's ``OPTIONS`` when it declares them (component/options.py).
Any problem stops start-up with a ``HandlerLoadError`` that names the file: the
module's, or for a misfit option the configuration file and the key.
Files starting with ``_`` are helpers the modules import (component/importer.py).
Before a module is replaced or the component stops, its ``teardown(component)``
releases what ``setup()`` took.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.defer import TimeoutError as DeadlineExceeded
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from component.importer import HelperConflict, find_helpers, fresh_imports, module_spec
from component.options import DeclarationError, OptionError, check_options, declared_options
from component.outcome import settle
from component.registry import RegistrationConflict, Registry
from component.store import StoreUnavailable

MODULE_PREFIX = "iqresponder_handlers."
DEFAULT_TEARDOWN_TIMEOUT = 10.0  # seconds; the component passes its shutdown_grace

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
    component: Any = None
    """The module's own face (``setup()``'s argument), handed to its ``teardown()`` too."""


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
    clock: IReactorTime | None = None,
    teardown_timeout: float = DEFAULT_TEARDOWN_TIMEOUT,
    config_path: Path | str | None = None,
) -> list[HandlerModule]:
    """Import, register and set up every handler module of ``directories``.

    ``options`` is the configuration's ``[handlers.options]``, read from
    ``config_path``: errors in it start with that file (when given) and the key,
    as the configuration's own errors do.

    Modules and helpers are imported afresh from the source on disk. When one
    fails, the modules already set up are torn down (``clock`` and
    ``teardown_timeout`` as for ``teardown_handlers``) and ``sys.modules`` is
    left as it was before the call, so that a failed reload leaves the previous
    set whole.
    """
    files = handler_files(directories)
    unknown = sorted(set(options) - {path.stem for path in files})
    if unknown:
        key = f"handlers.options.{unknown[0]}"
        raise HandlerLoadError(_in_config(config_path, key, f"no handler module named {unknown[0]!r} is loaded"))
    try:
        helpers = find_helpers(directories)
    except HelperConflict as e:
        raise HandlerLoadError(str(e)) from None
    loaded: list[HandlerModule] = []
    try:
        with fresh_imports(helpers):
            for path in files:
                loaded.append(_load(path, registry, component, options.get(path.stem, {}), config_path))
    except HandlerLoadError:
        teardown_handlers(loaded, component, clock, teardown_timeout)
        raise
    return loaded


def _load(
    path: Path, registry: Registry, component: Any, table: Mapping[str, Any], config_path: Path | str | None
) -> HandlerModule:
    module = _import(path)
    # Each module gets a face of its own, whose store holds its keys apart from every other module's.
    for_module = getattr(component, "for_module", None)
    component = for_module(path.stem) if for_module is not None else component
    try:
        namespaces = registry.collect(module, origin=str(path), component=component)
    except RegistrationConflict as e:
        raise HandlerLoadError(f"{path}: {e}") from None
    options = _options(module, path, table, config_path)
    setup = getattr(module, "setup", None)
    if callable(setup):
        try:
            setup(component, options)
        except Exception as e:  # noqa: BLE001 - any failure of a module's setup stops start-up with its name
            raise HandlerLoadError(f"{path}: setup() failed: {_describe(e)}") from None
    handler = HandlerModule(path.stem, path, module, tuple(dict.fromkeys(namespaces)), component)
    commands = [declared.node for declared in registry.commands.values() if declared.component is component]
    served = ", ".join(handler.namespaces) or "no responders"
    log.info(
        "Loaded handler module {name} from {path}: {namespaces}{commands}",
        name=handler.name,
        path=str(path),
        namespaces=served,
        commands=f"; commands {', '.join(commands)}" if commands else "",
    )
    return handler


def _options(
    module: ModuleType, path: Path, table: Mapping[str, Any], config_path: Path | str | None
) -> dict[str, Any]:
    """The options ``setup()`` receives: the table as configured, checked and completed when the module declares them."""
    declaration = getattr(module, "OPTIONS", None)
    if declaration is None:
        return dict(table)
    try:
        schema = declared_options(declaration)
    except DeclarationError as e:
        raise HandlerLoadError(f"{path}: OPTIONS: {e}") from None
    try:
        return check_options(schema, table)
    except OptionError as e:
        raise HandlerLoadError(_in_config(config_path, f"handlers.options.{path.stem}.{e.key}", e.problem)) from None


def _in_config(config_path: Path | str | None, key: str, problem: str) -> str:
    """A configuration error's one line, worded as component/config.py words its own."""
    return f"{config_path}: {key}: {problem}" if config_path else f"{key}: {problem}"


def _import(path: Path) -> ModuleType:
    name = MODULE_PREFIX + path.stem
    spec = module_spec(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    assert spec.loader is not None  # module_spec gives every spec its loader
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure stops start-up naming the file
        del sys.modules[name]
        raise HandlerLoadError(f"{path}: import failed: {_describe(e)}") from None
    return module


def teardown_handlers(
    modules: Sequence[HandlerModule],
    component: Any,
    clock: IReactorTime | None = None,
    timeout: float = DEFAULT_TEARDOWN_TIMEOUT,
) -> Deferred[None]:
    """Call the ``teardown(component)`` of each module that has one, the last loaded first.

    Returns a Deferred that fires (never fails) once every teardown that
    returned a Deferred or an awaitable has finished, or after ``timeout``
    seconds on ``clock`` (the global reactor by default), when those still
    running stop being waited for (component/outcome.py). A teardown that
    raises, fails or runs out of time is logged with its module's file and
    stops nothing: the others still run.
    """
    if clock is None:
        from twisted.internet import reactor

        clock = cast(IReactorTime, reactor)
    waiting: list[Deferred[Any]] = []
    for handler in reversed(modules):
        teardown = getattr(handler.module, "teardown", None)
        if not callable(teardown):
            continue
        try:
            result = settle(teardown(handler.component or component), clock, timeout)
        except Exception:  # noqa: BLE001 - a module's failure to clean up is its own, logged with its file
            _teardown_failed(Failure(), handler, timeout)
            continue
        if isinstance(result, Deferred):
            waiting.append(result.addErrback(_teardown_failed, handler, timeout))
    return DeferredList(waiting).addCallback(lambda _: None)


def _teardown_failed(failure: Failure, handler: HandlerModule, timeout: float) -> None:
    problem = failure.value
    if isinstance(problem, StoreUnavailable):  # the store logged its outage already; no traceback for an outage
        log.warn(
            "teardown() of handler module {name} ({path}) could not reach the store: {reason}",
            name=handler.name,
            path=str(handler.path),
            reason=problem.reason,
        )
        return
    if failure.check(DeadlineExceeded):
        log.error(
            "teardown() of handler module {name} ({path}) did not finish within {timeout:g} s",
            name=handler.name,
            path=str(handler.path),
            timeout=timeout,
        )
        return
    log.failure(
        "teardown() of handler module {name} ({path}) failed", failure, name=handler.name, path=str(handler.path)
    )


def _describe(error: BaseException) -> str:
    """``Type: message (file:line)`` for the innermost frame, all on one line."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    if isinstance(error, SyntaxError) and error.lineno:
        where = f" ({Path(error.filename or '?').name}:{error.lineno})"
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}{where}"
