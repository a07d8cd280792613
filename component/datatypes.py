"""XEP-0122 datatypes: which text is a value of each, and where that value stands in the type's order.

A data form field may name an XML Schema datatype (``<validate datatype='xs:int'/>``).
``datatype(name)`` gives its ``Datatype``: ``check(text)`` returns the value in the
type's value space, which is what ``<range min max/>`` compares, or raises
``ValueError`` with the reason as a phrase to follow the value ("is not an integer
(xs:int)"), so that the caller decides how the value is shown (a private field's
never is). The names are the ones XEP-0122 lists (section 5), with their bounds;
any other name is validated as ``xs:string``, as XEP-0122 says (section 3.1).

The text given is the value as submitted: ``xs:string`` keeps it as it is, every
other type first drops the whitespace around it (XML Schema's whitespace
collapsing). Digits are ASCII digits only. Dates and times are the subset Python
can hold (years 1 to 9999, no hour 24); a time zone is optional, as in XML Schema,
and a date and time or a time without one is ordered as if it were UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

__all__ = ["DATATYPES", "Datatype", "datatype", "decimal_text", "read_date", "read_time"]

MAX_INTEGER_DIGITS = 4300
"""Python's own limit on converting digits to an int; longer text is no integer here either."""


@dataclass(frozen=True)
class Datatype:
    """One XEP-0122 datatype: its name, ``check(text) -> value``, and whether ``<range/>`` applies to it."""

    name: str
    check: Callable[[str], Any]
    ordered: bool = True
    strip: bool = True  # everything but xs:string collapses the whitespace around a value

    def value(self, text: str) -> Any:
        """The value of ``text`` in the type's value space; raises ``ValueError`` with the reason."""
        return self.check(text.strip() if self.strip else text)


_INTEGER = re.compile(r"[+-]?[0-9]+").fullmatch
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)").fullmatch
_DOUBLE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?INF|NaN").fullmatch
_ZONE = r"(Z|[+-][0-9]{2}:[0-9]{2})?"
_DATE = re.compile(rf"([0-9]{{4}})-([0-9]{{2}})-([0-9]{{2}}){_ZONE}").fullmatch
_TIME = re.compile(rf"([0-9]{{2}}):([0-9]{{2}}):([0-9]{{2}})(\.[0-9]+)?{_ZONE}").fullmatch
_DATETIME = re.compile(
    rf"([0-9]{{4}})-([0-9]{{2}})-([0-9]{{2}})T([0-9]{{2}}):([0-9]{{2}}):([0-9]{{2}})(\.[0-9]+)?{_ZONE}"
).fullmatch
_LANGUAGE = re.compile(r"[a-zA-Z]{1,8}(?:-[a-zA-Z0-9]{1,8})*").fullmatch
_NOT_IN_URI = re.compile(r"[\x00-\x20\x7f<>\"{}|\\^`]").search


def _integer(name: str, low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    def check(text: str) -> int:
        if len(text) > MAX_INTEGER_DIGITS or not _INTEGER(text):
            raise ValueError(f"is not an integer ({name})")
        value = int(text)
        if low is not None and high is not None and not low <= value <= high:
            raise ValueError(f"is outside {name} ({low} to {high})")
        return value

    return check


def _decimal(text: str) -> Decimal:
    if not _DECIMAL(text):
        raise ValueError("is not a decimal number (xs:decimal)")
    return Decimal(text)


def _double(text: str) -> float:
    if not _DOUBLE(text):
        raise ValueError("is not a number (xs:double)")
    return float(text)


def _zone(text: str | None) -> timezone | None:
    if text is None:
        return None
    if text == "Z":
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59 or (hours == 14 and minutes):
        raise ValueError("time zone out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if text[0] == "-" else offset)


def _microseconds(fraction: str | None) -> int:
    return int((fraction[1:] + "000000")[:6]) if fraction else 0


def read_date(text: str) -> date:
    """An ``xs:date`` (``2024-05-01``, a time zone allowed and not kept); raises ``ValueError``."""
    parts = _DATE(text.strip())
    try:
        if parts is None:
            raise ValueError
        _zone(parts[4])
        return date(int(parts[1]), int(parts[2]), int(parts[3]))
    except ValueError:
        raise ValueError("is not a date (xs:date)") from None


def read_time(text: str) -> time:
    """An ``xs:time`` (``13:20:00``, fractions of a second and a time zone allowed); raises ``ValueError``."""
    parts = _TIME(text.strip())
    try:
        if parts is None:
            raise ValueError
        return time(int(parts[1]), int(parts[2]), int(parts[3]), _microseconds(parts[4]), _zone(parts[5]))
    except ValueError:
        raise ValueError("is not a time (xs:time)") from None


def _read_datetime(text: str) -> datetime:
    parts = _DATETIME(text)
    try:
        if parts is None:
            raise ValueError
        year, month, day, hour, minute, second = (int(part) for part in parts.groups()[:6])
        return datetime(year, month, day, hour, minute, second, _microseconds(parts[7]), _zone(parts[8]))
    except ValueError:
        raise ValueError("is not a date and time (xs:dateTime)") from None


def _datetime_order(text: str) -> datetime:
    value = _read_datetime(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _time_order(text: str) -> timedelta:
    value = read_time(text)
    since_midnight = timedelta(
        hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
    )
    return since_midnight - (value.utcoffset() or timedelta())


def _language(text: str) -> str:
    if not _LANGUAGE(text):
        raise ValueError("is not a language tag (xs:language)")
    return text


def _uri(text: str) -> str:
    if _NOT_IN_URI(text):
        raise ValueError("is not a URI (xs:anyURI)")
    return text


def _string(text: str) -> str:
    return text


DATATYPES: dict[str, Datatype] = {
    datatype.name: datatype
    for datatype in (
        Datatype("xs:anyURI", _uri, ordered=False),
        Datatype("xs:byte", _integer("xs:byte", -(2**7), 2**7 - 1)),
        Datatype("xs:date", read_date),
        Datatype("xs:dateTime", _datetime_order),
        Datatype("xs:decimal", _decimal),
        Datatype("xs:double", _double),
        Datatype("xs:int", _integer("xs:int", -(2**31), 2**31 - 1)),
        Datatype("xs:integer", _integer("xs:integer")),
        Datatype("xs:language", _language, ordered=False),
        Datatype("xs:long", _integer("xs:long", -(2**63), 2**63 - 1)),
        Datatype("xs:short", _integer("xs:short", -(2**15), 2**15 - 1)),
        Datatype("xs:string", _string, ordered=False, strip=False),
        Datatype("xs:time", _time_order),
    )
}
STRING = DATATYPES["xs:string"]


def datatype(name: str | None) -> Datatype:
    """The datatype called ``name``; ``xs:string`` for ``None`` and for any name XEP-0122 does not list."""
    return DATATYPES.get(name, STRING) if name is not None else STRING


def decimal_text(value: Decimal) -> str:
    """A Decimal as xs:decimal writes it: plain digits, never an exponent."""
    if not value.is_finite():
        raise ValueError(f"{value!r} is not an xs:decimal")
    return format(value, "f")
