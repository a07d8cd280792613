"""Declared fields of data forms: what each offers, and how its submitted values are checked and typed.

``text_single()``, ``list_multi()`` and the others declare one field of a form
class (component/dataforms.py) as a ``FormField``. Once the class's annotations
are read (``_resolve``), the field knows how its text is converted (as payload
classes convert theirs, component/payload.py, plus ``date``, ``time`` and
``Decimal``), which XEP-0122 datatype, range, regex and options check it, and how
its value is written back. ``FormField.read`` turns a submitted field's texts into
its typed value or raises ``FormError``; an error never quotes more than
``SHOWN_CHARACTERS`` of a value, nor any of a ``text-private`` one.
"""

from __future__ import annotations

import enum
import math
import re
import types
import typing
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from component.addresses import InvalidFormat, parse_jid
from component.datatypes import Datatype, decimal_text, read_date, read_time
from component.datatypes import datatype as datatype_named
from component.payload import _conversions, _without_none

__all__ = [
    "MISSING",
    "NS_VALIDATE",
    "FormError",
    "FormField",
    "boolean",
    "fixed",
    "hidden",
    "jid_multi",
    "jid_single",
    "list_multi",
    "list_single",
    "shorten",
    "text_multi",
    "text_private",
    "text_single",
]

NS_VALIDATE = "http://jabber.org/protocol/xdata-validate"

MAX_JID_CHARACTERS = 3071
"""RFC 7622's bound: three parts of at most 1023 bytes, with their separators."""
SHOWN_CHARACTERS = 40
"""How much of a submitted value a ``FormError`` quotes."""
MULTI_TYPES = frozenset(("list-multi", "jid-multi", "text-multi"))
LIST_TYPES = frozenset(("list-single", "list-multi"))
JID_TYPES = frozenset(("jid-single", "jid-multi"))
VALIDATED_TYPES = frozenset(("text-single", "text-private", "text-multi", "list-single", "list-multi", "hidden"))
"""The field types that take a declared XEP-0122 datatype, range or regex (the others' values are fixed by type)."""

_UNANNOTATED: dict[str, Any] = {
    "boolean": bool,
    "fixed": str,
    "hidden": str,
    "jid-multi": list[JID],
    "jid-single": JID,
    "list-multi": list[str],
    "list-single": str,
    "text-multi": list[str],
    "text-private": str,
    "text-single": str,
}
_INFERRED_DATATYPES = {
    int: "xs:integer",
    float: "xs:double",
    Decimal: "xs:decimal",
    datetime: "xs:dateTime",
    date: "xs:date",
    time: "xs:time",
}
_NOUNS = {
    int: "an integer",
    float: "a number",
    Decimal: "a decimal number",
    bool: "a boolean (true, false, 1 or 0)",
    datetime: "a date and time with a time zone (XEP-0082)",
    date: "a date (xs:date)",
    time: "a time (xs:time)",
    JID: "a valid JID",
}


class FormError(ValueError):
    """A submitted form that does not fit its class.

    ``var`` is the field's var (``None`` when the fault is the form's own), ``label``
    its label and ``reason`` what is wrong; ``str()`` is one line with all three, such
    as ``delay (Delay (s)): 4000 is above the maximum 3600``, fit for a requester.
    """

    def __init__(self, reason: str, var: str | None = None, label: str | None = None) -> None:
        self.reason = reason
        self.var = var
        self.label = label
        where = "" if var is None else f"{var} ({label}): " if label else f"{var}: "
        super().__init__(where + reason)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FormField:
    """One declared field of a form class; made by ``text_single()``, ``list_multi()`` and the others.

    Its attributes say what the form offers: ``name`` (the Python attribute),
    ``var``, ``type`` (XEP-0004's), ``label``, ``desc``, ``required``, ``default``,
    ``options`` (``(value, label)`` pairs, the values as text), ``open``,
    ``datatype`` (as written in ``<validate/>``; ``None`` is xs:string), ``range``
    (``(min, max)`` as text), ``regex``, ``list_range`` and, once the class's
    annotations are read, ``multi``.
    """

    def __init__(
        self,
        type: str,
        label: str | None = None,
        *,
        var: str | None = None,
        desc: str | None = None,
        required: bool = False,
        default: Any = MISSING,
        options: Iterable[Any] = (),
        open: bool = False,
        datatype: str | None = None,
        range: tuple[Any, Any] | None = None,
        regex: str | None = None,
        list_range: tuple[int | None, int | None] | None = None,
    ) -> None:
        self.type = type
        self.label = label
        self.var = var
        self.desc = desc
        self.required = required
        self.default = default
        self.open = open
        self.datatype = datatype
        self.regex = regex
        self.list_range = list_range
        self.name = ""  # the Python attribute, set by the class
        self.multi = type in MULTI_TYPES
        self._declared_options = tuple(options)
        self._declared_range = range
        self.options: tuple[tuple[str, str | None], ...] = ()
        self.range: tuple[str | None, str | None] | None = None
        # Worked out from the annotation, by _resolve().
        self._item: Any = str
        self._read: Any = str
        self._write: Any = str
        self._checker: Datatype = datatype_named(None)
        self._bounds: tuple[Any, Any] = (None, None)
        self._pattern: re.Pattern[str] | None = None
        self._closed = False
        self._option_values: frozenset[Any] = frozenset()
        self._noun = "a valid value"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        if self.var is None and self.type != "fixed":
            self.var = name

    def __repr__(self) -> str:
        return f"<{self.type} field {self.var or self.name!r}>"

    # Declaring.

    def _resolve(self, annotation: Any, owner: type) -> None:
        """Check the declaration against its annotation, and work out how values are read, checked and written."""
        where = f"{owner.__name__}.{self.name}"
        kind = self.type
        may_be_none = annotation is None or annotation is Any or _allows_none(annotation)
        inner = _without_none(_UNANNOTATED[kind] if annotation is None else annotation)
        if len(inner) != 1:
            raise TypeError(f"{where}: cannot read a value of type {annotation!r}")
        multi = typing.get_origin(inner[0]) is list
        item = (typing.get_args(inner[0]) or (str,))[0] if multi else inner[0]
        if kind in MULTI_TYPES and not multi:
            raise TypeError(f"{where}: a {kind} field holds several values: annotate it list[...]")
        if multi and kind not in MULTI_TYPES and kind != "hidden":
            raise TypeError(f"{where}: a {kind} field holds one value, not a list")
        if kind == "boolean" and item is not bool:
            raise TypeError(f"{where}: a boolean field is annotated bool")
        if kind in JID_TYPES and item not in (JID, str):
            raise TypeError(f"{where}: a {kind} field is annotated JID (or str)")
        if not (self.required or multi or may_be_none or kind == "fixed" or self.default is not MISSING):
            raise TypeError(f"{where}: a field that is not required needs a default, or an annotation with | None")
        self.multi = multi
        self._item = item
        if kind == "fixed":
            return
        self._read, self._write = _value_conversions(item, owner, self)
        self._noun = _noun(item)
        name = self.datatype if self.datatype is not None else _INFERRED_DATATYPES.get(item)
        if name is not None and kind not in VALIDATED_TYPES:
            raise TypeError(f"{where}: a {kind} field takes no datatype")
        self.datatype = name if kind in VALIDATED_TYPES else None
        self._checker = datatype_named(self.datatype)
        self._resolve_range(where)
        if self.regex is not None:
            try:
                self._pattern = re.compile(self.regex)
            except re.error as e:
                raise TypeError(f"{where}: regex {self.regex!r} does not compile: {e}") from None
        if self.list_range is not None:
            low, high = self.list_range
            if (low is None and high is None) or any(bound is not None and bound < 0 for bound in (low, high)):
                raise TypeError(f"{where}: list_range is (min, max), counts of values, at least one given")
            if low is not None and high is not None and low > high:
                raise TypeError(f"{where}: list_range {self.list_range!r} has its minimum above its maximum")
        self._resolve_options(where)

    def _resolve_range(self, where: str) -> None:
        if self._declared_range is None:
            return
        checker = self._checker
        if not checker.ordered:
            raise TypeError(
                f"{where}: a range needs an ordered datatype (such as xs:int or xs:date), not {checker.name}"
            )
        if self.regex is not None:
            raise TypeError(f"{where}: XEP-0122 validates by one method, a range or a regex, not both")
        texts: list[str | None] = []
        bounds: list[Any] = []
        for bound in self._declared_range:
            if bound is None:
                texts.append(None)
                bounds.append(None)
                continue
            text = bound if isinstance(bound, str) else _bound_text(bound)
            try:
                bounds.append(checker.value(text))
            except ValueError as e:
                raise TypeError(f"{where}: the range's bound {text!r} {e}") from None
            texts.append(text)
        if bounds == [None, None]:
            raise TypeError(f"{where}: a range is (min, max), at least one given")
        if None not in bounds and bounds[0] > bounds[1]:
            raise TypeError(f"{where}: the range {self._declared_range!r} has its minimum above its maximum")
        self.range = (texts[0], texts[1])
        self._bounds = (bounds[0], bounds[1])

    def _resolve_options(self, where: str) -> None:
        declared = self._declared_options
        if self.type not in LIST_TYPES:
            return
        if not declared and isinstance(self._item, type) and issubclass(self._item, enum.Enum):
            declared = tuple(self._item)
        options = []
        for option in declared:
            value, label = option if isinstance(option, tuple) else (option, None)
            options.append((value if type(value) is str else self._write(value), label))
        self.options = tuple(options)
        # XEP-0122 section 3.2: any method but <basic/> on a list field allows values beyond the options.
        self._closed = not (self.open or self.range is not None or self.regex is not None)
        if self._closed and not options:
            raise TypeError(f"{where}: a {self.type} field needs options, or open=True")
        try:
            self._option_values = frozenset(self._read(value) for value, _label in options)
        except (ValueError, InvalidFormat) as e:
            raise TypeError(f"{where}: an option is not {self._noun}: {e}") from None

    def missing(self) -> Any:
        """The value of the field when a form leaves it empty: its default (a fresh copy of a list), or empty."""
        if self.default is MISSING:
            return [] if self.multi else None
        return list(self.default) if isinstance(self.default, list) else self.default

    # Reading.

    def error(self, reason: str) -> FormError:
        return FormError(reason, self.var, self.label)

    def read(self, texts: list[str]) -> Any:
        """The typed value of the submitted ``texts`` (at most ``MAX_VALUES``); raises ``FormError``."""
        if self.multi:
            if self.type == "text-multi":
                texts = [line.removesuffix("\r") for text in texts for line in text.split("\n")]
                if all(text == "" for text in texts):
                    texts = []
            else:
                texts = [text for text in texts if text != ""]
        elif len(texts) > 1:
            raise self.error(f"takes one value, not {len(texts)}")
        elif texts == [""]:
            texts = []
        if not texts:
            if self.required:
                raise self.error("a value is required")
            return self.missing()
        values = [self._value(text) for text in texts]
        if not self.multi:
            return values[0]
        if self.type != "text-multi" and self.type != "hidden":
            values = list(dict.fromkeys(values))  # a repeated JID or option is selected once
        if self.list_range is not None:
            low, high = self.list_range
            if low is not None and len(values) < low:
                raise self.error(f"at least {low} must be selected, not {len(values)}")
            if high is not None and len(values) > high:
                raise self.error(f"at most {high} may be selected, not {len(values)}")
        return values

    def _value(self, text: str) -> Any:
        if self.type in JID_TYPES:
            try:
                jid = _read_jid(text)
            except (ValueError, InvalidFormat):
                raise self.error(f"{self._shown(text)} is not a valid JID") from None
            return jid if self._item is JID else jid.full()
        if self._closed:
            try:
                value = self._read(text)
            except (ValueError, InvalidFormat):
                value = MISSING
            if value not in self._option_values:
                raise self.error(f"{self._shown(text)} is not one of the options ({self._listed_options()})")
            return value
        checker = self._checker
        lexical = text.strip() if checker.strip else text
        try:
            ordered = checker.value(lexical)
        except ValueError as e:
            raise self.error(f"{self._shown(text)} {e}") from None
        low, high = self._bounds
        if low is not None or high is not None:
            plain = self._shown(lexical, quoted=False)
            minimum, maximum = self.range or (None, None)  # set with the bounds
            if isinstance(ordered, float) and math.isnan(ordered):  # in no range
                raise self.error(f"{plain} is outside the range {minimum or ''}..{maximum or ''}")
            if low is not None and ordered < low:
                raise self.error(f"{plain} is below the minimum {minimum}")
            if high is not None and ordered > high:
                raise self.error(f"{plain} is above the maximum {maximum}")
        if self._pattern is not None and self._pattern.fullmatch(lexical) is None:
            raise self.error(f"{self._shown(text)} does not match {self.regex}")
        try:
            return self._read(lexical)
        except (ValueError, InvalidFormat):
            raise self.error(f"{self._shown(text)} is not {self._noun}") from None

    def _shown(self, text: str, quoted: bool = True) -> str:
        """A submitted value as an error quotes it: shortened, and never a private one."""
        if self.type == "text-private":
            return "the value"
        return repr(shorten(text)) if quoted else shorten(text)

    def _listed_options(self) -> str:
        values = [value for value, _label in self.options[:10]]
        return ", ".join(values) + (", …" if len(self.options) > 10 else "")

    # Writing.

    def texts(self, value: Any) -> tuple[str, ...]:
        """The field's value as the text of its ``<value/>`` elements (a text-multi's items, line by line)."""
        if value is None:
            return ()
        if not self.multi:
            return (self._write(value),)
        texts = [self._write(item) for item in value]
        if self.type == "text-multi":
            return tuple(line for text in texts for line in text.split("\n"))
        return tuple(texts)

    def validate_element(self) -> domish.Element | None:
        """XEP-0122's ``<validate/>`` for the field, or ``None`` when it adds nothing to the field's type."""
        opened = self.open and self.type in LIST_TYPES
        if not (opened or self.datatype or self.range or self.regex is not None or self.list_range):
            return None
        element = domish.Element((NS_VALIDATE, "validate"))
        if self.datatype is not None:
            element["datatype"] = self.datatype
        if self.range is not None:
            bounds = element.addElement("range")
            for attribute, text in zip(("min", "max"), self.range, strict=True):
                if text is not None:
                    bounds[attribute] = text
        elif self.regex is not None:
            element.addElement("regex", content=self.regex)
        elif opened:
            element.addElement("open")
        if self.list_range is not None:
            counts = element.addElement("list-range")
            for attribute, count in zip(("min", "max"), self.list_range, strict=True):
                if count is not None:
                    counts[attribute] = str(count)
        return element


# Declaring fields.


def text_single(
    label: str | None = None,
    *,
    var: str | None = None,
    desc: str | None = None,
    required: bool = False,
    default: Any = MISSING,
    datatype: str | None = None,
    range: tuple[Any, Any] | None = None,
    regex: str | None = None,
) -> Any:
    """A one-line text field; ``datatype``, ``range`` and ``regex`` are XEP-0122's."""
    return FormField("text-single", label, var=var, desc=desc, required=required, default=default,
                     datatype=datatype, range=range, regex=regex)  # fmt: skip


def text_private(
    label: str | None = None,
    *,
    var: str | None = None,
    desc: str | None = None,
    required: bool = False,
    default: Any = MISSING,
    datatype: str | None = None,
    range: tuple[Any, Any] | None = None,
    regex: str | None = None,
) -> Any:
    """A text field whose value is hidden as it is typed, and never quoted in errors or reprs."""
    return FormField("text-private", label, var=var, desc=desc, required=required, default=default,
                     datatype=datatype, range=range, regex=regex)  # fmt: skip


def text_multi(
    label: str | None = None,
    *,
    var: str | None = None,
    desc: str | None = None,
    required: bool = False,
    default: Any = MISSING,
    datatype: str | None = None,
    range: tuple[Any, Any] | None = None,
    regex: str | None = None,
) -> Any:
    """Several lines of text, one ``<value/>`` each; annotated ``list[str]``. XEP-0122 checks each line."""
    return FormField("text-multi", label, var=var, desc=desc, required=required, default=default,
                     datatype=datatype, range=range, regex=regex)  # fmt: skip


def list_single(
    label: str | None = None,
    *,
    options: Iterable[Any] = (),
    open: bool = False,
    var: str | None = None,
    desc: str | None = None,
    required: bool = False,
    default: Any = MISSING,
    datatype: str | None = None,
    range: tuple[Any, Any] | None = None,
    regex: str | None = None,
) -> Any:
    """One of ``options`` (values, or ``(value, label)`` pairs; an ``Enum`` annotation's members by default).

    ``open=True``, a ``range`` or a ``regex`` accept values beyond the options (XEP-0122 section 3.2).
    """
    return FormField("list-single", label, var=var, desc=desc, required=required, default=default,
                     options=options, open=open, datatype=datatype, range=range, regex=regex)  # fmt: skip


def list_multi(
    label: str | None = None,
    *,
    options: Iterable[Any] = (),
    open: bool = False,
    list_range: tuple[int | None, int | None] | None = None,
    var: str | None = None,
    desc: str | None = None,
    required: bool = False,
    default: Any = MISSING,
    datatype: str | None = None,
    range: tuple[Any, Any] | None = None,
    regex: str | None = None,
) -> Any:
    """Any of ``options``, annotated ``list[...]``; ``list_range=(min, max)`` bounds how many are selected."""
    return FormField("list-multi", label, var=var, desc=desc, required=required, default=default, options=options,
                     open=open, datatype=datatype, range=range, regex=regex, list_range=list_range)  # fmt: skip


def boolean(
    label: str | None = None, *, var: str | None = None, desc: str | None = None, required: bool = False,
    default: Any = MISSING,
) -> Any:  # fmt: skip
    """A yes/no field, annotated ``bool``: ``0``, ``1``, ``false`` and ``true`` are read."""
    return FormField("boolean", label, var=var, desc=desc, required=required, default=default)


def jid_single(
    label: str | None = None, *, var: str | None = None, desc: str | None = None, required: bool = False,
    default: Any = MISSING,
) -> Any:  # fmt: skip
    """One JID, annotated ``JID`` (or ``str``, for the prepared text)."""
    return FormField("jid-single", label, var=var, desc=desc, required=required, default=default)


def jid_multi(
    label: str | None = None, *, var: str | None = None, desc: str | None = None, required: bool = False,
    default: Any = MISSING,
) -> Any:  # fmt: skip
    """Several JIDs, annotated ``list[JID]``; a JID given twice is kept once."""
    return FormField("jid-multi", label, var=var, desc=desc, required=required, default=default)


def hidden(
    *,
    var: str | None = None,
    required: bool = False,
    default: Any = MISSING,
    datatype: str | None = None,
    range: tuple[Any, Any] | None = None,
    regex: str | None = None,
) -> Any:
    """A value the form carries unseen and the requester returns; checked like any other, as it may be forged."""
    return FormField("hidden", var=var, required=required, default=default, datatype=datatype, range=range,
                     regex=regex)  # fmt: skip


def fixed(text: str, *, label: str | None = None, var: str | None = None) -> Any:
    """Text shown in the form and never submitted; an instance may carry other text (``Form(banner=...)``)."""
    return FormField("fixed", label, var=var, default=text)


# Helpers.


def _allows_none(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(annotation)


def _value_conversions(item: Any, owner: type, field: FormField) -> tuple[Any, Any]:
    """How a value of ``item`` is read from and written to a ``<value/>``: as payload classes do, and a few more."""
    if item is date:
        return read_date, date.isoformat
    if item is time:
        return read_time, time.isoformat
    if item is Decimal:
        return _read_decimal, decimal_text
    if item is float:
        read, _write = _conversions(float, owner, field)
        return read, _double_text
    return _conversions(item, owner, field)


def _read_decimal(text: str) -> Decimal:
    return Decimal(datatype_named("xs:decimal").value(text))


def _double_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "INF" if value > 0 else "-INF"
    return repr(value)


def _bound_text(bound: Any) -> str:
    """A range's bound given as a Python value, as text for ``<range/>``."""
    if isinstance(bound, bool):
        raise TypeError(f"{bound!r} is no bound of a range")
    if isinstance(bound, float):
        return _double_text(bound)
    if isinstance(bound, Decimal):
        return decimal_text(bound)
    if isinstance(bound, date | time):
        return bound.isoformat()
    return str(bound)


def _noun(item: Any) -> str:
    if isinstance(item, type) and issubclass(item, enum.Enum):
        return "one of " + ", ".join(str(member.value) for member in item)
    return _NOUNS.get(item, "a valid value")


def _read_jid(text: str) -> JID:
    text = text.strip()
    if len(text) > MAX_JID_CHARACTERS:
        raise ValueError("too long for a JID")
    return parse_jid(text)


def shorten(text: str) -> str:
    """Submitted text as an error quotes it: at most ``SHOWN_CHARACTERS`` of it."""
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…"
