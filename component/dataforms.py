"""XEP-0004 data forms: typed form classes validated by XEP-0122, and the plain forms of service discovery.

A form class names its ``FORM_TYPE`` (XEP-0068) and declares its fields, in order::

    class Reboot(Form, form_type="urn:example:reboot", title="Reboot a host", instructions="Pick a host."):
        host: str = list_single("Host", options=["web1", "web2"], required=True)
        delay: int = text_single("Delay (s)", datatype="xs:int", range=(0, 3600), default=0)
        watchers: list[JID] = jid_multi("Watchers")
        banner = fixed("Be careful.")

``Reboot(host="web1")`` is a form to send: ``to_element()`` writes it as a form
(``<x type='form'/>``, with labels, descriptions, options, current values and
XEP-0122 ``<validate/>``), ``to_element("result")`` and ``to_element("submit")``
as the other kinds. ``Reboot.parse(x)`` reads a submitted form and returns an
instance with typed values, or raises ``FormError`` naming the field, its label and
the reason. What ``parse`` checks:

- the form: a ``jabber:x:data`` ``<x/>`` of type ``submit``, ``form`` or ``cancel``
  (a ``result`` is no submission); its ``FORM_TYPE``, when given, is the class's;
  fields the class does not declare, and ``fixed`` fields, are ignored (a
  submitted field's ``type`` is not trusted: the declaration says what it is);
- each field: given once; at most ``MAX_VALUES`` values of at most
  ``MAX_FIELD_CHARACTERS`` characters together (checked first, so a hostile form
  costs nothing); one value unless it is multi-valued; a value when ``required``
  (an empty value counts as none, and an absent field that is not required takes
  its default); booleans as ``0``, ``1``, ``false``, ``true``; JIDs that parse;
  list values among the options unless the field is open; the XEP-0122 datatype,
  ``range`` (in the datatype's value space) or ``regex`` (matching the whole
  value), and ``list_range`` (how many values a ``list-multi`` selects);
- then the annotation converts the text, as payload classes do (component/payload.py):
  ``str``, ``int``, ``float``, ``Decimal``, ``bool``, ``datetime`` (XEP-0082, with
  its time zone), ``date``, ``time``, ``JID`` or an ``Enum``; ``list[X]`` for
  fields with several values; ``X | None`` for a field that may be empty.

A ``text-private`` value never appears in a ``FormError`` or a ``repr()``.

The fields and their checks are component/formfields.py's; the XEP-0122
datatypes, component/datatypes.py's.

``Form.of(form_type, {...})`` and ``Form.from_element(x)`` are plain forms,
without declarations: their fields are text values (``Field``), which is what
XEP-0128 extended information in disco#info carries.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from twisted.words.xish import domish

from component.formfields import (
    MULTI_TYPES,
    NS_VALIDATE,
    FormError,
    FormField,
    boolean,
    fixed,
    hidden,
    jid_multi,
    jid_single,
    list_multi,
    list_single,
    shorten,
    text_multi,
    text_private,
    text_single,
)

__all__ = [
    "MAX_FIELD_CHARACTERS",
    "MAX_VALUES",
    "NS_DATA",
    "NS_VALIDATE",
    "Field",
    "Form",
    "FormError",
    "FormField",
    "boolean",
    "fixed",
    "hidden",
    "jid_multi",
    "jid_single",
    "list_multi",
    "list_single",
    "text_multi",
    "text_private",
    "text_single",
]

NS_DATA = "jabber:x:data"

MAX_VALUES = 1000
"""Values one submitted field may carry; more is a ``FormError``, read no further."""
MAX_FIELD_CHARACTERS = 64 * 1024
"""Characters one submitted field's values may hold together; more is a ``FormError``."""

FORM_KINDS = ("form", "submit", "result", "cancel")
SUBMISSIONS = frozenset(("submit", "form", "cancel"))


@dataclass(frozen=True)
class Field:
    """A field as a plain form carries it: its ``var``, its values as text, and whether it may hold several."""

    var: str
    values: tuple[str, ...]
    multi: bool = False


class Form:
    """A data form: a typed form class's instance, or a plain form (``Form.of``, ``Form.from_element``).

    A form class is ``class Name(Form, form_type=..., title=..., instructions=...)``
    with declared fields. Its instances are built with keywords (fields not given
    take their defaults, or are empty) and compare by their values. The class
    attributes ``form_type``, ``title``, ``instructions`` and ``fields`` (the
    declared ``FormField`` objects, in order) describe it.
    """

    form_type: ClassVar[str | None] = None
    title: ClassVar[str | None] = None
    instructions: ClassVar[str | None] = None
    fields: ClassVar[tuple[Any, ...]] = ()  # a form class's FormFields; a plain form's Fields
    _by_var: ClassVar[dict[str, FormField]] = {}
    _ready: ClassVar[bool] = False

    def __init_subclass__(
        cls, form_type: str | None = None, title: str | None = None, instructions: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        for attribute, value in (("form_type", form_type), ("title", title), ("instructions", instructions)):
            if value is not None:
                setattr(cls, attribute, value)
        declared: dict[str, FormField] = {}
        for base in reversed(cls.__mro__):
            for name, value in vars(base).items():
                if isinstance(value, FormField):
                    if hasattr(Form, name):
                        raise TypeError(f"{cls.__name__}.{name}: the name of a Form attribute; choose another")
                    declared[name] = value
        cls.fields = tuple(declared.values())
        cls._by_var = {}
        for field in cls.fields:
            if field.var is None:
                continue
            if field.var == "FORM_TYPE" or field.var in cls._by_var:
                raise TypeError(f"{cls.__name__}.{field.name}: the var {field.var!r} is taken")
            cls._by_var[field.var] = field
        if "__hash__" not in vars(cls):
            cls.__hash__ = None  # type: ignore[assignment]  # instances are mutable
        cls._ready = False
        try:
            cls._plan()
        except NameError:  # an annotation names something defined later: worked out on first use
            pass

    @classmethod
    def _plan(cls) -> None:
        if cls.__dict__.get("_ready"):
            return
        hints = typing.get_type_hints(cls)
        for field in cls.fields:
            field._resolve(hints.get(field.name), cls)
        cls._ready = True

    def __init__(self, *args: Any, **values: Any) -> None:
        cls = type(self)
        if cls is Form:
            self._plain(*args, **values)
            return
        if args:
            raise TypeError(f"{cls.__name__}() takes its values as keywords")
        cls._plan()
        state = self.__dict__
        for field in cls.fields:
            state[field.name] = values.pop(field.name) if field.name in values else field.missing()
        if values:
            raise TypeError(f"{cls.__name__}() has no field {min(values)!r}")

    def _plain(
        self,
        form_type: str | None,
        fields: Iterable[Field] = (),
        title: str | None = None,
        instructions: str | None = None,
    ) -> None:
        # A plain form keeps on the instance what a form class declares once, as ClassVars: misc is
        # mypy's word for assigning a ClassVar through an instance.
        self.form_type = form_type  # type: ignore[misc]
        self.fields = tuple(fields)  # type: ignore[misc]
        self.title = title  # type: ignore[misc]
        self.instructions = instructions  # type: ignore[misc]

    @classmethod
    def of(
        cls,
        form_type: str,
        fields: Mapping[str, str | Iterable[str]],
        *,
        title: str | None = None,
        instructions: str | None = None,
    ) -> Form:
        """A plain form: ``Form.of("http://jabber.org/network/serverinfo", {"abuse-addresses": ["mailto:..."]})``.

        A string is a ``text-single`` field's value; any other iterable of strings,
        a ``list-multi`` field's values.
        """
        built = []
        for var, value in fields.items():
            if isinstance(value, str):
                built.append(Field(var, (value,)))
            else:
                built.append(Field(var, tuple(value), multi=True))
        return Form(form_type, tuple(built), title, instructions)

    def values(self, var: str) -> tuple[str, ...]:
        """The values of field ``var`` as text, or ``()``."""
        if type(self) is Form:
            return next((field.values for field in self.fields if field.var == var), ())
        field = type(self)._by_var.get(var)
        return () if field is None else field.texts(self.__dict__[field.name])

    # Writing.

    def to_element(self, type: str = "form") -> domish.Element:
        """The form as ``<x xmlns='jabber:x:data'/>`` of ``type``: ``form``, ``result``, ``submit`` or ``cancel``.

        A ``form`` carries everything: title, instructions, labels, descriptions,
        ``<required/>``, XEP-0122 ``<validate/>``, options and the current values.
        A ``result`` carries the title, labels and values; a ``submit``, the values
        (no fixed fields); a ``cancel``, nothing.
        """
        if type not in FORM_KINDS:
            raise ValueError(f"a data form's type is form, submit, result or cancel, not {type!r}")
        form = domish.Element((NS_DATA, "x"))
        form["type"] = type
        if type == "cancel":
            return form
        if self.title and type != "submit":
            form.addElement("title", content=self.title)
        if self.instructions and type == "form":
            for line in self.instructions.split("\n"):
                form.addElement("instructions", content=line)
        if self.form_type is not None:
            _add_field(form, "FORM_TYPE", "hidden", (self.form_type,))
        if self.__class__ is Form:
            for field in self.fields:
                _add_field(form, field.var, "list-multi" if field.multi else "text-single", field.values)
            return form
        self._plan()
        for declared in self.fields:
            if declared.type == "fixed" and type == "submit":
                continue
            element = form.addElement("field")
            if declared.var is not None:
                element["var"] = declared.var
            element["type"] = declared.type
            if declared.label is not None and type != "submit":
                element["label"] = declared.label
            if type == "form":
                if declared.desc is not None:
                    element.addElement("desc", content=declared.desc)
                if declared.required:
                    element.addElement("required")
                validate = declared.validate_element()
                if validate is not None:
                    element.addChild(validate)
            for text in declared.texts(self.__dict__[declared.name]):
                element.addElement("value", content=text)
            if type == "form":
                for value, label in declared.options:
                    option = element.addElement("option")
                    if label is not None:
                        option["label"] = label
                    option.addElement("value", content=value)
        return form

    # Reading.

    @classmethod
    def parse(cls, element: domish.Element) -> Self:
        """The submitted form ``element`` as an instance, every field checked; raises ``FormError``."""
        if cls is Form:
            raise TypeError("Form.parse needs a form class with declared fields; Form.from_element reads any form")
        cls._plan()
        if element.name != "x" or element.uri != NS_DATA:
            raise FormError("not a data form (<x xmlns='jabber:x:data'/>)")
        kind = element.getAttribute("type", "submit")
        if kind == "result":
            raise FormError("a result form is no submission")
        if kind not in SUBMISSIONS:
            raise FormError(f"a form of type {shorten(kind)!r} is no submission")
        by_var = cls._by_var
        submitted: dict[FormField, list[str]] = {}
        for child in element.elements(NS_DATA, "field"):
            var = child.getAttribute("var")
            if var == "FORM_TYPE":
                cls._check_form_type(child)
                continue
            field = by_var.get(var)
            if field is None or field.type == "fixed":
                continue
            if field in submitted:
                raise field.error("the field is given twice")
            submitted[field] = _submitted_texts(field, child)
        self = cls.__new__(cls)
        state = self.__dict__
        for field in cls.fields:
            state[field.name] = field.missing() if field.type == "fixed" else field.read(submitted.get(field, []))
        return self

    @classmethod
    def _check_form_type(cls, element: domish.Element) -> None:
        given = next((_text(value) for value in element.elements(NS_DATA, "value")), "")
        if cls.form_type is not None and given and given != cls.form_type:
            raise FormError(f"FORM_TYPE {shorten(given)!r} is not {cls.form_type!r}")

    @classmethod
    def from_element(cls, form: domish.Element) -> Form | None:
        """A plain form with the values of ``form`` as text, unchecked; ``None`` without a ``FORM_TYPE``.

        This is how XEP-0128 reads disco#info forms (it ignores those without a
        ``FORM_TYPE``); a form class's ``parse`` is what checks a submission.
        """
        form_type = None
        fields = []
        for element in form.elements(NS_DATA, "field"):
            values = tuple(_text(value) for value in element.elements(NS_DATA, "value"))
            var = element.getAttribute("var")
            if var == "FORM_TYPE":
                form_type = values[0] if values else None
            elif var:
                fields.append(Field(var, values, element.getAttribute("type") in MULTI_TYPES))
        if not form_type:
            return None
        title = next((_text(element) for element in form.elements(NS_DATA, "title")), None)
        instructions = "\n".join(_text(element) for element in form.elements(NS_DATA, "instructions")) or None
        return Form(form_type, tuple(fields), title, instructions)

    # Values.

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        if type(self) is Form:
            return self._plain_key() == other._plain_key()
        return all(self.__dict__[field.name] == other.__dict__[field.name] for field in self.fields)

    def __hash__(self) -> int:
        return hash(self._plain_key())

    def _plain_key(self) -> tuple[Any, ...]:
        return (self.form_type, self.fields, self.title, self.instructions)

    def __repr__(self) -> str:
        cls = type(self)
        if cls is Form:
            extra = "".join(
                f", {name}={getattr(self, name)!r}" for name in ("title", "instructions") if getattr(self, name)
            )
            return f"Form({self.form_type!r}, {self.fields!r}{extra})"
        shown = []
        for field in cls.fields:
            value = self.__dict__[field.name]
            private = field.type == "text-private" and value is not None
            shown.append(f"{field.name}={'***' if private else repr(value)}")
        return f"{cls.__name__}({', '.join(shown)})"


# Helpers.


def _text(element: domish.Element) -> str:
    """An element's character data (all of it: a parser may hand it over in pieces)."""
    return "".join(child for child in element.children if isinstance(child, str))


def _submitted_texts(field: FormField, element: domish.Element) -> list[str]:
    """The texts of a submitted field's ``<value/>`` elements, within the bounds of a submission."""
    texts: list[str] = []
    size = 0
    for value in element.elements(NS_DATA, "value"):
        if len(texts) == MAX_VALUES:
            raise field.error(f"more than {MAX_VALUES} values")
        text = _text(value)
        size += len(text)
        if size > MAX_FIELD_CHARACTERS:
            raise field.error(f"its values are longer than {MAX_FIELD_CHARACTERS} characters")
        texts.append(text)
    return texts


def _add_field(form: domish.Element, var: str, type: str, values: Iterable[str]) -> None:
    element = form.addElement("field")
    element["var"] = var
    element["type"] = type
    for value in values:
        element.addElement("value", content=value)
