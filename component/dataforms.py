"""XEP-0004 data forms, as far as service discovery needs them (XEP-0128 extended information).

A ``Form`` here is a result form with a hidden ``FORM_TYPE`` and named fields,
each with one value (``text-single``) or several (``list-multi``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from twisted.words.xish import domish

NS_DATA = "jabber:x:data"


@dataclass(frozen=True)
class Field:
    """One field: its ``var`` and values; ``multi`` marks a list-valued field."""

    var: str
    values: tuple[str, ...]
    multi: bool = False


@dataclass(frozen=True)
class Form:
    """A result form identified by its ``FORM_TYPE``."""

    form_type: str
    fields: tuple[Field, ...] = ()

    @classmethod
    def of(cls, form_type: str, fields: Mapping[str, str | Iterable[str]]) -> Form:
        """``Form.of("http://jabber.org/network/serverinfo", {"abuse-addresses": ["mailto:..."]})``."""
        built = []
        for var, value in fields.items():
            if isinstance(value, str):
                built.append(Field(var, (value,)))
            else:
                built.append(Field(var, tuple(value), multi=True))
        return cls(form_type, tuple(built))

    def values(self, var: str) -> tuple[str, ...]:
        """The values of field ``var``, or ``()``."""
        return next((field.values for field in self.fields if field.var == var), ())

    def to_element(self) -> domish.Element:
        form = domish.Element((NS_DATA, "x"))
        form["type"] = "result"
        form_type = form.addElement("field")
        form_type["var"] = "FORM_TYPE"
        form_type["type"] = "hidden"
        form_type.addElement("value", content=self.form_type)
        for field in self.fields:
            element = form.addElement("field")
            element["var"] = field.var
            element["type"] = "list-multi" if field.multi else "text-single"
            for value in field.values:
                element.addElement("value", content=value)
        return form

    @classmethod
    def from_element(cls, form: domish.Element) -> Form | None:
        """Parse a form; ``None`` when it has no ``FORM_TYPE`` (XEP-0128 ignores such forms)."""
        form_type = None
        fields = []
        for element in form.elements(NS_DATA, "field"):
            values = tuple(str(value) for value in element.elements(NS_DATA, "value"))
            var = element.getAttribute("var")
            if var == "FORM_TYPE":
                form_type = values[0] if values else None
            elif var:
                multi = element.getAttribute("type") in ("list-multi", "jid-multi", "text-multi")
                fields.append(Field(var, values, multi))
        return cls(form_type, tuple(fields)) if form_type else None
