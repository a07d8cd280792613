"""Payload classes: a request's payload parsed, checked and typed before the responder runs.

A payload class names its namespace and element and declares its fields::

    class Item(Payload, namespace="custom-xep", element="item"):
        key: str = attribute()
        value: str = text(default="")

    class Query(Payload, namespace="custom-xep", element="query"):
        item: Item | None = child(Item, default=None)

Fields are ``attribute()``, ``text()`` (the element's character data),
``child_text()`` (a child element holding only text, such as XEP-0092's
``<name/>``), ``child(Class)`` (one child payload) and ``children(Class)``
(a list of them). The annotation (or ``type=``) says how a value is read and
written: ``str``, ``int``, ``float``, ``bool`` (``true``/``false``/``1``/``0``,
as XML Schema spells them), ``datetime`` (XEP-0082, with its time zone), a
``JID``, or an ``Enum`` of string values; ``X | None`` with ``default=None``
makes a field optional. A field without a default is required.

``Class.parse(element)`` raises ``PayloadError`` naming the element and the
field; the router answers it with ``bad-request`` (modify) before the responder
runs. Whatever the class does not declare (attributes, children, text) is
kept, in its place, so a payload echoed or updated loses nothing;
``to_element()`` builds the domish Element the component's writer serializes.
An attribute at its default is written only if the parsed element had it, and
the children of one list field are written together, where the first of them
stood.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self

from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from component.addresses import InvalidFormat, parse_jid
from component.serializer import escape_attribute, escape_text, to_xml

__all__ = ["Payload", "PayloadError", "attribute", "child", "child_text", "children", "text"]


class PayloadError(ValueError):
    """A payload that does not fit its class; ``str()`` names the element and the field."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


class Field:
    """One declared part of a payload; made by ``attribute()``, ``text()``, ``child()`` and friends."""

    kind = ""

    def __init__(
        self, name: str | None, default: Any, type: Any, item: type[Payload] | None = None, factory: Any = None
    ) -> None:
        self.xml_name = name
        self.default = default
        self.factory = factory
        self.declared_type = type
        self.item: Any = item  # the type[Payload] of a child or children field, read only for those; else None
        self.name = ""  # the Python attribute, set by the class
        self.read: Callable[[str], Any] = str
        self.write: Callable[[Any], str] = str

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        if self.xml_name is None:
            self.xml_name = name.rstrip("_").replace("_", "-")

    def missing(self) -> Any:
        return self.factory() if self.factory is not None else self.default


def attribute(name: str | None = None, *, default: Any = REQUIRED, type: Any = None) -> Any:
    """An attribute of the element (``name`` defaults to the field's, ``_`` as ``-``)."""
    field = Field(name, default, type)
    field.kind = "attribute"
    return field


def text(*, default: Any = REQUIRED, type: Any = None) -> Any:
    """The element's character data."""
    field = Field(None, default, type)
    field.kind = "text"
    return field


def child_text(name: str | None = None, *, default: Any = REQUIRED, type: Any = None) -> Any:
    """A child element in the payload's namespace that holds only text, such as ``<name>x</name>``."""
    field = Field(name, default, type)
    field.kind = "child_text"
    return field


def child(item: type[Payload], *, default: Any = REQUIRED) -> Any:
    """One child element, parsed as the payload class ``item``."""
    field = Field(None, default, item, item)
    field.kind = "child"
    return field


def children(item: type[Payload]) -> Any:
    """Every child element of the payload class ``item``, in order (an empty list when there are none)."""
    field = Field(None, REQUIRED, list, item, factory=list)
    field.kind = "children"
    return field


class Payload:
    """The base of payload classes: ``class Query(Payload, namespace=..., element=...)``."""

    namespace: ClassVar[str]
    element: ClassVar[str]
    _fields: ClassVar[tuple[Field, ...]] = ()
    _ready: ClassVar[Any] = None  # the parsing plan, worked out on first use
    # What a parsed instance keeps of its element: the element itself (for the attributes the class
    # does not declare), its children in order (a Field where the field's values go, anything else
    # as it was), and the declared attributes it had. Instances built in code have none of these.
    _source: domish.Element | None = None
    _layout: list[Any] | None = None
    _given: tuple[Field, ...] | list[Field] = ()

    def __init_subclass__(cls, namespace: str | None = None, element: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if namespace is None or element is None:
            raise TypeError(f"{cls.__name__} must name its namespace and element: class {cls.__name__}(Payload, "
                            "namespace='...', element='...')")  # fmt: skip
        cls.namespace = namespace
        cls.element = element
        cls._fields = tuple(value for value in vars(cls).values() if isinstance(value, Field))
        cls._ready = None
        if sum(field.kind == "text" for field in cls._fields) > 1:
            raise TypeError(f"{cls.__name__} declares more than one text() field")

    def __init__(self, **values: Any) -> None:
        state = self.__dict__
        for field in self._fields:
            name = field.name
            if name in values:
                state[name] = values.pop(name)
            else:
                value = field.missing()
                if value is REQUIRED:
                    raise TypeError(f"{type(self).__name__}() needs {name}")
                state[name] = value
        if values:
            raise TypeError(f"{type(self).__name__}() has no field {min(values)!r}")

    # Reading.

    @classmethod
    def parse(cls, element: domish.Element) -> Self:
        """The payload of ``element``; raises ``PayloadError`` naming the element and the field."""
        plan = cls.__dict__.get("_ready") or cls._plan()
        text_field, by_child, nested = plan.text, plan.by_child, plan.nested
        self = cls.__new__(cls)
        state = self.__dict__
        state["_source"] = element
        attributes = element.attributes
        if plan.attributes:
            if not attributes and plan.absent_attributes is not None:  # the common case: all at their defaults
                state.update(plan.absent_attributes)
            else:
                given = []
                for field in plan.attributes:
                    raw = attributes.get(field.xml_name)
                    if raw is None:
                        state[field.name] = _convert(cls, field, None)
                    else:
                        given.append(field)
                        state[field.name] = raw if field.read is str else _convert(cls, field, raw)
                state["_given"] = given
        if text_field is None and not by_child:  # nothing to look for among the children: keep them as they are
            return self
        if not element.children and plan.absent_children is not None:
            state.update(plan.absent_children)
            return self
        layout: list[Any] = []
        found: dict[Field, list[Any]] = {}
        namespace = cls.namespace
        for node in element.children:
            if node.__class__ is str or not isinstance(node, domish.Element):
                if text_field is None:
                    layout.append(node)
                    continue
                field = text_field
            else:
                field = by_child.get((namespace if node.uri is None else node.uri, node.name))
                if field is None:
                    layout.append(node)
                    continue
            nodes = found.get(field)
            if nodes is None:
                layout.append(field)
                nodes = found[field] = []
            nodes.append(node)
        self._layout = layout
        if text_field is not None:
            texts = found.get(text_field)
            state[text_field.name] = _convert(cls, text_field, None if texts is None else "".join(texts))
        for field in nested:
            nodes = found.get(field)
            kind = field.kind
            if kind == "children":
                state[field.name] = [field.item._parse_child(node, cls, field) for node in nodes or ()]
                continue
            if nodes is not None and len(nodes) > 1:
                raise PayloadError(f"{_where(cls)}: {field.name}: only one <{nodes[0].name}/> is allowed")
            if kind == "child_text":
                raw = None if nodes is None else "".join(part for part in nodes[0].children if part.__class__ is str)
                state[field.name] = _convert(cls, field, raw)
            elif nodes is None:
                value = field.missing()
                if value is REQUIRED:
                    raise PayloadError(f"{_where(cls)}: {field.name}: <{field.item.element}/> is missing")
                state[field.name] = value
            else:
                state[field.name] = field.item._parse_child(nodes[0], cls, field)
        return self

    @classmethod
    def _parse_child(cls, node: domish.Element, parent: type[Payload], field: Field) -> Payload:
        try:
            return cls.parse(node)
        except PayloadError as e:
            raise PayloadError(f"{_where(parent)}: {field.name}: {e}") from None

    # Writing.

    def to_xml(self, within: str = "") -> str:
        """The payload as XML text, written as ``component.serializer.to_xml`` writes Elements.

        ``within`` is the default namespace where the text goes. Written
        directly, without building an Element, unless the parsed element
        carried prefixes, which the writer of Elements handles.
        """
        source = self._source
        if source is not None and (source.localPrefixes or any(key.__class__ is not str for key in source.attributes)):
            return to_xml(self.to_element(), within)
        parts: list[str] = []
        self._write(parts, within)
        return "".join(parts)

    def _write(self, parts: list[str], scope: str) -> None:
        cls = type(self)
        plan = cls.__dict__.get("_ready") or cls._plan()
        namespace = cls.namespace
        tag = cls.element
        parts.append("<" + tag if namespace == scope else f"<{tag} xmlns='{escape_attribute(namespace)}'")
        state = self.__dict__
        given = self._given
        for field in plan.attributes:
            value = state[field.name]
            if value is not None and (value != field.default or field in given):
                parts.append(f" {field.xml_name}='{escape_attribute(field.write(value))}'")
        source = self._source
        if source is not None:
            for key, value in source.attributes.items():
                if key not in plan.declared:
                    parts.append(f" {key}='{escape_attribute(value)}'")
        opened = len(parts)
        parts.append(">")
        layout = self._layout
        if layout is None:  # built in code, or parsed by a class with no field among the children
            if source is not None:
                for node in source.children:
                    self._write_kept(parts, node, namespace)
            for field in plan.written:
                self._write_field(parts, field, namespace)
        else:
            written = set()
            for entry in layout:
                if entry.__class__ is Field:
                    written.add(entry)
                    self._write_field(parts, entry, namespace)
                else:
                    self._write_kept(parts, entry, namespace)
            for field in plan.written:
                if field not in written:
                    self._write_field(parts, field, namespace)
        if len(parts) == opened + 1:
            parts[opened] = "/>"
        else:
            parts.append(f"</{tag}>")

    def _write_field(self, parts: list[str], field: Field, namespace: str) -> None:
        value = self.__dict__[field.name]
        if value is None:
            return
        kind = field.kind
        if kind == "text":
            written = field.write(value)
            if written:
                parts.append(escape_text(written))
        elif kind == "child_text":
            name = field.xml_name
            parts.append(f"<{name}>{escape_text(field.write(value))}</{name}>")
        elif kind == "child":
            value._write(parts, namespace)
        else:
            for item in value:
                item._write(parts, namespace)

    @staticmethod
    def _write_kept(parts: list[str], node: Any, namespace: str) -> None:
        if node.__class__ is str:
            parts.append(escape_text(node))
        elif isinstance(node, domish.Element):
            parts.append(to_xml(node, namespace))
        else:
            parts.append(escape_text(str(node)))

    def to_element(self) -> domish.Element:
        """The payload as a domish Element, with everything kept from the element it was parsed from."""
        cls = type(self)
        plan = cls.__dict__.get("_ready") or cls._plan()
        element = domish.Element((cls.namespace, cls.element))
        attributes = element.attributes
        for field in plan.attributes:
            value = getattr(self, field.name)
            if value is not None and (value != field.default or field in self._given):
                attributes[field.xml_name] = field.write(value)
        source = self._source
        if source is not None:
            for key, value in source.attributes.items():
                if key not in plan.declared:
                    attributes[key] = value
            element.localPrefixes = dict(source.localPrefixes)
        fields = plan.written
        layout = self._layout
        if layout is None:
            layout = [*(source.children if source is not None else ()), *fields]
        written = set()
        for entry in layout:
            if entry.__class__ is Field:
                written.add(entry)
                self._append(element, entry)
            else:
                element.children.append(entry)
        for field in fields:
            if field not in written:
                self._append(element, field)
        return element

    def _append(self, element: domish.Element, field: Field) -> None:
        value = getattr(self, field.name)
        if value is None:
            return
        kind = field.kind
        if kind == "text":
            written = field.write(value)
            if written:
                element.children.append(written)
        elif kind == "child_text":
            element.addElement(field.xml_name, content=field.write(value))
        elif kind == "child":
            element.addChild(value.to_element())
        else:
            for item in value:
                element.addChild(item.to_element())

    # Values.

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in self._fields)

    def __repr__(self) -> str:
        values = ", ".join(f"{field.name}={getattr(self, field.name)!r}" for field in self._fields)
        return f"{type(self).__name__}({values})"

    @classmethod
    def _plan(cls) -> _Plan:
        """How to read and write the class, worked out from its annotations on first use (forward names exist by then)."""
        plan = cls.__dict__.get("_ready")
        if plan is None:
            hints = typing.get_type_hints(cls)
            for field in cls._fields:
                if field.kind not in ("child", "children"):
                    field.read, field.write = _conversions(
                        field.declared_type or hints.get(field.name, str), cls, field
                    )
            plan = cls._ready = _Plan(cls)
        return plan


class _Plan:
    """A payload class's fields, sorted for reading and writing."""

    __slots__ = (
        "absent_attributes",
        "absent_children",
        "attributes",
        "by_child",
        "declared",
        "nested",
        "text",
        "written",
    )

    def __init__(self, cls: type[Payload]) -> None:
        fields = cls._fields
        self.attributes = tuple(field for field in fields if field.kind == "attribute")
        self.declared = frozenset(field.xml_name for field in self.attributes)
        self.text = next((field for field in fields if field.kind == "text"), None)
        self.nested = tuple(field for field in fields if field.kind not in ("attribute", "text"))
        self.written = self.nested if self.text is None else (self.text, *self.nested)  # what goes among the children
        self.by_child: dict[tuple[str, str | None], Field] = {}
        for field in self.nested:
            if field.kind == "child_text":
                self.by_child[(cls.namespace, field.xml_name)] = field
            else:
                self.by_child[(field.item.namespace, field.item.element)] = field
        # The values of an element without attributes, or without children, when the class allows that.
        self.absent_attributes = _defaults(self.attributes)
        self.absent_children = _defaults(self.written)


def _defaults(fields: tuple[Field, ...]) -> dict[str, Any] | None:
    """The fields' defaults, or ``None`` when one is required or made afresh for each instance."""
    if any(field.default is REQUIRED or field.factory is not None for field in fields):
        return None
    return {field.name: field.default for field in fields}


def _where(cls: type[Payload]) -> str:
    return f"<{cls.element} xmlns='{cls.namespace}'/>"


def _convert(cls: type[Payload], field: Field, raw: str | None) -> Any:
    if raw is None:
        value = field.missing()
        if value is REQUIRED:
            what = {"attribute": f"attribute {field.xml_name!r}", "text": "its text"}.get(field.kind)
            raise PayloadError(f"{_where(cls)}: {field.name}: {what or f'<{field.xml_name}/>'} is missing")
        return value
    try:
        return field.read(raw)
    except (ValueError, InvalidFormat) as e:
        raise PayloadError(f"{_where(cls)}: {field.name}: {e}") from None


def _conversions(annotation: Any, cls: type, field: _Named) -> tuple[Callable[[str], Any], Callable[[Any], str]]:
    """How a value of ``annotation`` is read from and written to XML text."""
    options = _without_none(annotation)
    if len(options) != 1:
        raise TypeError(f"{cls.__name__}.{field.name}: cannot read a value of type {annotation!r}")
    kind = options[0]
    if kind is str or kind is Any:
        return str, str
    if kind is bool:
        return _read_bool, lambda value: "true" if value else "false"
    if kind is int:
        return _read_number(int, "an integer"), str
    if kind is float:
        return _read_number(float, "a number"), repr
    if kind is datetime:
        return _read_datetime, _write_datetime
    if kind is JID:
        return parse_jid, JID.full
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _read_enum(kind), lambda value: str(value.value)
    raise TypeError(f"{cls.__name__}.{field.name}: cannot read a value of type {annotation!r}")


class _Named(Protocol):
    """A declared field, of a payload or a form (component/formfields.py), as its errors name it."""

    name: str


def _without_none(annotation: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(option for option in typing.get_args(annotation) if option is not type(None))
    return (annotation,)


def _read_bool(raw: str) -> bool:
    value = raw.strip()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValueError(f"{raw!r} is not a boolean (true, false, 1 or 0)")


def _read_number(kind: type, name: str) -> Callable[[str], Any]:
    def read(raw: str) -> Any:
        try:
            return kind(raw.strip())
        except ValueError:
            raise ValueError(f"{raw!r} is not {name}") from None

    return read


def _read_datetime(raw: str) -> datetime:
    """XEP-0082 DateTime: ``CCYY-MM-DDThh:mm:ss[.sss]TZD``, the zone required."""
    value = raw.strip()
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in value:
        raise ValueError(f"{raw!r} is not an XEP-0082 date and time with a time zone")
    return parsed


def _write_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("an XEP-0082 date and time needs a time zone")
    written = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return written[:-6] + "Z" if written.endswith("+00:00") else written


def _read_enum(kind: type[enum.Enum]) -> Callable[[str], Any]:
    allowed = {str(member.value): member for member in kind}

    def read(raw: str) -> Any:
        try:
            return allowed[raw]
        except KeyError:
            raise ValueError(f"{raw!r} is not one of {', '.join(sorted(allowed))}") from None

    return read
