"""The ``@responder`` decorator and the registry that maps requests to responders.

Dispatch is a dict lookup by ``(type, namespace)`` and then by the payload's
element name, so its cost does not grow with the number of responders (an
XPath observer per responder costs about 0.9 us per responder per stanza).
Two responders for the same key are refused at once, naming both origins.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from component.commands import Command, declared_commands
from component.payload import Payload

IQ_REQUEST_TYPES = ("get", "set")
_MARK = "__iqresponder__"
_Function = TypeVar("_Function", bound=Callable[..., Any])


@dataclass(frozen=True)
class Declaration:
    """What one ``@responder(...)`` line asks for."""

    namespace: str
    types: tuple[str, ...]
    element: str | None
    disco: bool
    payload: type[Payload] | None = None
    delegated: bool = False
    """Whether servers are asked to delegate the namespace to the component (XEP-0355, component/delegation.py)."""


@dataclass(frozen=True)
class Responder:
    """A registered responder: the function, what it answers, and where it came from."""

    function: Callable[..., Any]
    namespace: str
    type: str
    element: str | None
    origin: str
    payload: builtins.type[Payload] | None = None  # builtins: ``type`` is a field here
    """The payload class the request's payload is parsed into before the call, if any."""
    component: Any = None
    """The ``request.component`` of its requests: its module's face (component/facade.py), when loaded from one."""

    @property
    def name(self) -> str:
        return getattr(self.function, "__qualname__", repr(self.function))


class RegistrationConflict(Exception):
    """Two responders claim the same (type, namespace, element)."""


def responder(
    namespace: str | type[Payload],
    type: str | None = None,
    element: str | None = None,
    *,
    disco: bool = True,
    delegated: bool = False,
) -> Callable[[_Function], _Function]:
    """Mark a function as the responder for Iq requests whose payload is in ``namespace``.

    ``namespace`` may be a payload class instead (component/payload.py): the
    namespace and element are the class's, and the responder gets
    ``request.payload`` as an instance of it, parsed and checked. ``type`` is
    ``"get"``, ``"set"`` or ``None`` for both; ``element`` narrows by the
    payload's local name. The namespace is advertised as a disco#info feature
    unless ``disco=False``. With ``delegated=True`` the component asks the
    server to delegate the namespace to it (XEP-0355): the server's users' Iqs
    in it, sent to the server or to their own accounts, come to this responder
    with ``request.delegation`` set. The decorator may be stacked.
    """
    payload = None
    if isinstance(namespace, builtins.type) and issubclass(namespace, Payload):
        if element is not None:
            raise ValueError(f"responder({namespace.__name__}) takes its element from the class; drop element=")
        payload = namespace
        namespace, element = payload.namespace, payload.element
    if not isinstance(namespace, str) or not namespace:
        raise ValueError("responder() needs a namespace string")
    if any(character in namespace for character in "&<>'\""):
        raise ValueError(f"responder() namespaces cannot contain & < > ' or \" ({namespace!r})")
    if type is not None and type not in IQ_REQUEST_TYPES:
        raise ValueError(f"responder() type must be 'get', 'set' or None, not {type!r}")
    types = IQ_REQUEST_TYPES if type is None else (type,)
    declaration = Declaration(namespace, types, element, disco, payload, delegated)

    def mark(function: _Function) -> _Function:
        if not getattr(function, _MARK, None):
            setattr(function, _MARK, [])
        getattr(function, _MARK).append(declaration)
        return function

    return mark


class _ByElement(dict[str, Responder]):
    """The responders of one (type, namespace), by payload element name; ``any`` matches the rest."""

    __slots__ = ("any",)

    def __init__(self) -> None:
        super().__init__()
        self.any: Responder | None = None


class Registry:
    """Every responder the component serves, and the disco features they declare."""

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        """The ad-hoc commands modules declared (component/commands.py), by node."""
        self._routes: dict[tuple[str, str | None], _ByElement] = {}  # looked up with any payload's namespace
        self._namespaces: set[str] = set()
        self._features: set[str] = set()
        self.delegated: dict[str, str] = {}
        """The namespaces whose responders asked for their delegation (XEP-0355), each with the first one's origin."""

    def add(self, function: Callable[..., Any], declaration: Declaration, origin: str, component: Any = None) -> None:
        """Register ``function`` for ``declaration``; raise ``RegistrationConflict`` on a duplicate key."""
        for type in declaration.types:
            by_element = self._routes.setdefault((type, declaration.namespace), _ByElement())
            existing = by_element.any if declaration.element is None else by_element.get(declaration.element)
            if existing is not None:
                element = declaration.element or "any element"
                raise RegistrationConflict(
                    f"{type} {declaration.namespace} ({element}) is claimed by both "
                    f"{existing.origin} ({existing.name}) and {origin} ({function.__qualname__})"
                )
            entry = Responder(
                function, declaration.namespace, type, declaration.element, origin, declaration.payload, component
            )
            if declaration.element is None:
                by_element.any = entry
            else:
                by_element[declaration.element] = entry
        self._namespaces.add(declaration.namespace)
        if declaration.disco:
            self._features.add(declaration.namespace)
        if declaration.delegated:
            self.delegated.setdefault(declaration.namespace, origin)

    def collect(self, module: ModuleType, origin: str, component: Any = None) -> list[str]:
        """Register every ``@responder`` and ``@command`` defined in ``module`` (not those it imports).

        Their requests see ``component``, the module's face. Returns the namespaces registered, one per declaration.
        """
        for declared in declared_commands(module):
            existing = self.commands.get(declared.node)
            if existing is not None:
                raise RegistrationConflict(
                    f"the command {declared.node!r} is declared by both {existing.origin} and {origin}"
                )
            declared.origin, declared.component = origin, component
            self.commands[declared.node] = declared
        added = []
        for function in _marked(vars(module).values(), module.__name__):
            for declaration in getattr(function, _MARK):
                self.add(function, declaration, origin, component)
                added.append(declaration.namespace)
        return added

    def lookup(self, type: str, namespace: str | None, element: str) -> Responder | None:
        """The responder for a request, or ``None``."""
        by_element = self._routes.get((type, namespace))
        if by_element is None:
            return None
        return by_element.get(element, by_element.any)

    def serves(self, namespace: str | None) -> bool:
        """Whether any responder, of any type, is registered for ``namespace``."""
        return namespace in self._namespaces

    @property
    def features(self) -> frozenset[str]:
        """The namespaces responders declared for service discovery."""
        return frozenset(self._features)


def _marked(values: Iterable[Any], module_name: str) -> Iterable[Callable[..., Any]]:
    """The marked functions defined in the module, each once even when bound to several names."""
    seen = set()
    for value in values:
        marked = callable(value) and getattr(value, "__module__", None) == module_name and hasattr(value, _MARK)
        if marked and id(value) not in seen:
            seen.add(id(value))
            yield value
