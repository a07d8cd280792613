"""XEP-0122 datatypes: the text each accepts, its bounds, and the order <range/> compares in."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from component.datatypes import DATATYPES, datatype


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("xs:anyURI", "xmpp:user@example.org?message", "xmpp:user@example.org?message"),
        ("xs:anyURI", "", ""),
        ("xs:byte", "-128", -128),
        ("xs:byte", " +127 ", 127),
        ("xs:short", "-32768", -32768),
        ("xs:int", "2147483647", 2**31 - 1),
        ("xs:long", "-9223372036854775808", -(2**63)),
        ("xs:integer", "123456789012345678901234567890", 123456789012345678901234567890),
        ("xs:decimal", "-.5", Decimal("-0.5")),
        ("xs:decimal", "12.", Decimal(12)),
        ("xs:double", "1.5E3", 1500.0),
        ("xs:double", "-INF", float("-inf")),
        ("xs:date", "2024-02-29", date(2024, 2, 29)),
        ("xs:date", "2024-02-29+05:00", date(2024, 2, 29)),
        ("xs:dateTime", "2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("xs:dateTime", "2024-01-01T01:00:00+01:00", datetime(2024, 1, 1, tzinfo=UTC)),
        ("xs:dateTime", "2024-01-01T00:00:00", datetime(2024, 1, 1, tzinfo=UTC)),  # no zone: ordered as UTC
        ("xs:time", "13:20:00.25", timedelta(hours=13, minutes=20, milliseconds=250)),
        ("xs:time", "13:20:00-01:00", timedelta(hours=14, minutes=20)),
        ("xs:language", "en", "en"),
        ("xs:language", "zh-Hant-TW", "zh-Hant-TW"),
        ("xs:string", " kept as it is ", " kept as it is "),
    ],
)
def test_a_value_of_the_datatype_is_read_into_its_value_space(name, text, value):
    assert datatype(name).value(text) == value


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("xs:anyURI", "a b", "is not a URI (xs:anyURI)"),
        ("xs:anyURI", "<x>", "is not a URI (xs:anyURI)"),
        ("xs:byte", "128", "is outside xs:byte (-128 to 127)"),
        ("xs:short", "-32769", "is outside xs:short (-32768 to 32767)"),
        ("xs:int", "-2147483649", "is outside xs:int (-2147483648 to 2147483647)"),
        ("xs:long", "9223372036854775808", "is outside xs:long (-9223372036854775808 to 9223372036854775807)"),
        ("xs:integer", "1_000", "is not an integer (xs:integer)"),
        ("xs:integer", "١٢", "is not an integer (xs:integer)"),  # digits, but not ASCII ones
        ("xs:integer", "1" * 5000, "is not an integer (xs:integer)"),
        ("xs:decimal", "1e5", "is not a decimal number (xs:decimal)"),
        ("xs:decimal", "NaN", "is not a decimal number (xs:decimal)"),
        ("xs:double", "infinity", "is not a number (xs:double)"),
        ("xs:double", "0x10", "is not a number (xs:double)"),
        ("xs:date", "2023-02-29", "is not a date (xs:date)"),
        ("xs:date", "24-01-01", "is not a date (xs:date)"),
        ("xs:date", "2024-01-01+15:00", "is not a date (xs:date)"),
        ("xs:dateTime", "2024-01-01 00:00:00Z", "is not a date and time (xs:dateTime)"),
        ("xs:dateTime", "2024-01-01T24:00:00Z", "is not a date and time (xs:dateTime)"),
        ("xs:time", "1:00:00", "is not a time (xs:time)"),
        ("xs:time", "12:60:00", "is not a time (xs:time)"),
        ("xs:language", "englishes", "is not a language tag (xs:language)"),
        ("xs:language", "", "is not a language tag (xs:language)"),
    ],
)
def test_text_outside_the_datatype_is_refused_with_the_reason(name, text, reason):
    with pytest.raises(ValueError) as caught:
        datatype(name).value(text)
    assert str(caught.value) == reason


def test_every_datatype_xep_0122_lists_is_known_and_others_are_strings():
    assert sorted(DATATYPES) == sorted(
        [
            "xs:anyURI",
            "xs:byte",
            "xs:date",
            "xs:dateTime",
            "xs:decimal",
            "xs:double",
            "xs:int",
            "xs:integer",
            "xs:language",
            "xs:long",
            "xs:short",
            "xs:string",
            "xs:time",
        ]
    )
    assert datatype("x:custom") is DATATYPES["xs:string"] and datatype(None) is DATATYPES["xs:string"]


def test_only_ordered_datatypes_take_a_range():
    unordered = {name for name, found in DATATYPES.items() if not found.ordered}
    assert unordered == {"xs:anyURI", "xs:language", "xs:string"}
