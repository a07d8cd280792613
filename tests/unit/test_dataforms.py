"""Data forms (XEP-0004) declared as typed classes, validated by XEP-0122; the plain forms service discovery uses."""

import enum
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from twisted.words.protocols.jabber.jid import JID

from component import DiscoInfo
from component.dataforms import (
    MAX_FIELD_CHARACTERS,
    MAX_VALUES,
    NS_DATA,
    Field,
    Form,
    FormError,
    boolean,
    fixed,
    hidden,
    jid_multi,
    jid_single,
    list_multi,
    list_single,
    text_multi,
    text_private,
    text_single,
)
from component.discovery import info_element, parse_info
from component.serializer import to_xml
from component.testing import canonical, parse_stanzas

VALIDATE = "http://jabber.org/protocol/xdata-validate"


class Reboot(Form, form_type="urn:example:reboot", title="Reboot a host", instructions="Pick a host.\nThen wait."):
    host: str = list_single("Host", options=["web1", ("web2", "Second web server")], required=True)
    delay: int = text_single("Delay (s)", datatype="xs:int", range=(0, 3600), default=0, desc="Seconds to wait")
    notify: bool = boolean("Notify users", default=True)
    watchers: list[JID] = jid_multi("Watchers")
    reason: str | None = text_single("Reason", regex="[a-z ]+", default=None)
    password: str = text_private("Password", required=True)
    motd: list[str] = text_multi("Message")
    banner = fixed("Be careful.")
    token: str = hidden(default="t")


def element(xml: str):
    [parsed] = parse_stanzas(xml)
    return parsed


def submission(*fields: str, form_type: str | None = None, type: str = "submit"):
    """A submitted form as a client writes it: ``fields`` are ``<field/>`` elements as XML."""
    hidden_type = (
        f"<field var='FORM_TYPE' type='hidden'><value>{form_type}</value></field>" if form_type is not None else ""
    )
    return element(f"<x xmlns='jabber:x:data' type='{type}'>{hidden_type}{''.join(fields)}</x>")


def field(var: str, *values: str) -> str:
    return f"<field var='{var}'>{''.join(f'<value>{value}</value>' for value in values)}</field>"


REQUIRED = (field("host", "web1"), field("password", "s3cret"))


def round_trip(form: Form, type: str = "submit") -> Form:
    """``form`` written as XML text, read back as a submission of its class."""
    return form.__class__.parse(element(to_xml(form.to_element(type))))


def reason_for(form_class: type[Form], *fields: str, **options) -> FormError:
    with pytest.raises(FormError) as caught:
        form_class.parse(submission(*fields, **options))
    return caught.value


# Building and writing.


def test_a_form_is_built_with_keywords_and_defaults_fill_the_rest():
    form = Reboot(host="web1")
    assert (form.host, form.delay, form.notify, form.watchers, form.reason) == ("web1", 0, True, [], None)
    assert (form.password, form.motd, form.banner, form.token) == (None, [], "Be careful.", "t")
    assert form == Reboot(host="web1") and form != Reboot(host="web2")


def test_defaults_that_are_lists_are_fresh_for_each_instance():
    class Tags(Form, form_type="urn:example:tags"):
        tags: list[str] = list_multi("Tags", options=["a", "b"], default=["a"])

    first, second = Tags(), Tags()
    first.tags.append("b")
    assert second.tags == ["a"] and Tags.parse(submission(form_type=None)).tags == ["a"]


def test_a_form_refuses_positional_values_and_unknown_fields():
    with pytest.raises(TypeError, match="keywords"):
        Reboot("web1")
    with pytest.raises(TypeError, match="no field 'colour'"):
        Reboot(colour="blue")


def test_the_class_names_its_form_type_and_fields_in_order():
    assert Reboot.form_type == "urn:example:reboot"
    assert [(field.name, field.var, field.type) for field in Reboot.fields] == [
        ("host", "host", "list-single"),
        ("delay", "delay", "text-single"),
        ("notify", "notify", "boolean"),
        ("watchers", "watchers", "jid-multi"),
        ("reason", "reason", "text-single"),
        ("password", "password", "text-private"),
        ("motd", "motd", "text-multi"),
        ("banner", None, "fixed"),
        ("token", "token", "hidden"),
    ]
    assert Reboot.fields[0].options == (("web1", None), ("web2", "Second web server"))


def test_a_form_to_fill_carries_everything_xep_0004_and_xep_0122_describe():
    form = Reboot(host="web1", watchers=[JID("ops@example.org")], motd=["Back soon.", "Really."])
    assert canonical(to_xml(form.to_element())) == canonical(
        "<x xmlns='jabber:x:data' type='form'>"
        "<title>Reboot a host</title><instructions>Pick a host.</instructions><instructions>Then wait.</instructions>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:example:reboot</value></field>"
        "<field var='host' type='list-single' label='Host'><required/><value>web1</value>"
        "<option><value>web1</value></option><option label='Second web server'><value>web2</value></option></field>"
        "<field var='delay' type='text-single' label='Delay (s)'><desc>Seconds to wait</desc>"
        f"<validate xmlns='{VALIDATE}' datatype='xs:int'><range min='0' max='3600'/></validate><value>0</value></field>"
        "<field var='notify' type='boolean' label='Notify users'><value>true</value></field>"
        "<field var='watchers' type='jid-multi' label='Watchers'><value>ops@example.org</value></field>"
        f"<field var='reason' type='text-single' label='Reason'><validate xmlns='{VALIDATE}'><regex>[a-z ]+</regex>"
        "</validate></field>"
        "<field var='password' type='text-private' label='Password'><required/></field>"
        "<field var='motd' type='text-multi' label='Message'><value>Back soon.</value><value>Really.</value></field>"
        "<field type='fixed'><value>Be careful.</value></field>"
        "<field var='token' type='hidden'><value>t</value></field>"
        "</x>"
    )


def test_a_result_carries_title_labels_and_values_without_what_only_a_form_to_fill_needs():
    xml = to_xml(Reboot(host="web2", reason="maintenance").to_element("result"))
    assert "type='result'" in xml and "<title>Reboot a host</title>" in xml and "label='Host'" in xml
    assert "<value>web2</value>" in xml and "<value>maintenance</value>" in xml
    for absent in ("<instructions>", "<required/>", "<option", "<validate", "<desc>"):
        assert absent not in xml


def test_a_submission_carries_form_type_and_values_only():
    xml = to_xml(Reboot(host="web2").to_element("submit"))
    assert "type='submit'" in xml and "<value>urn:example:reboot</value>" in xml and "<value>web2</value>" in xml
    for absent in ("<title>", "label=", "fixed", "<option", "<validate", "<required/>"):
        assert absent not in xml


def test_a_cancel_is_an_empty_form_and_other_types_are_refused():
    assert to_xml(Reboot(host="web1").to_element("cancel")) == "<x xmlns='jabber:x:data' type='cancel'/>"
    with pytest.raises(ValueError, match="not 'bogus'"):
        Reboot(host="web1").to_element("bogus")


def test_a_text_multi_value_with_line_breaks_is_written_one_line_per_value():
    assert Reboot(host="web1", motd=["one\ntwo", "three"]).values("motd") == ("one", "two", "three")


def test_values_gives_a_fields_values_as_text():
    form = Reboot(host="web1", delay=30, notify=False, watchers=[JID("a@example.org"), JID("b@example.org/r")])
    assert form.values("delay") == ("30",) and form.values("notify") == ("false",)
    assert form.values("watchers") == ("a@example.org", "b@example.org/r")
    assert form.values("reason") == () and form.values("nothing") == ()


def test_repr_shows_the_values_but_never_a_private_one():
    text = repr(Reboot(host="web1", password="hunter2"))
    assert "host='web1'" in text and "password=***" in text and "hunter2" not in text


# Each field type, written and read back.


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Everything(Form, form_type="urn:example:everything"):
    name: str = text_single("Name", default="")
    count: int = text_single("Count", default=0)
    ratio: float = text_single("Ratio", default=0.5)
    price: Decimal = text_single("Price", default=Decimal(0))
    when: datetime | None = text_single("When", default=None)
    day: date | None = text_single("Day", default=None)
    alarm: time | None = text_single("Alarm", default=None)
    secret: str | None = text_private("Secret", default=None)
    lines: list[str] = text_multi("Lines")
    colour: Colour = list_single("Colour", default=Colour.RED)
    size: int = list_single("Size", options=[1, 2, 3], default=1)
    picks: list[str] = list_multi("Picks", options=["a", "b", "c"])
    flag: bool = boolean("Flag", default=False)
    owner: JID | None = jid_single("Owner", default=None)
    owner_text: str | None = jid_single("Owner as text", default=None)
    members: list[JID] = jid_multi("Members")
    state: str = hidden(default="one")
    states: list[int] = hidden(default=[1])
    note = fixed("Read this.")


FILLED = Everything(
    name="A & <B>",
    count=-42,
    ratio=1.25e-3,
    price=Decimal("12.50"),
    when=datetime(2024, 5, 1, 13, 20, 0, 250000, tzinfo=timezone(timedelta(hours=2))),
    day=date(2024, 5, 1),
    alarm=time(6, 30, tzinfo=UTC),
    secret="hunter2",
    lines=["first", "", "third"],
    colour=Colour.BLUE,
    size=3,
    picks=["c", "a"],
    flag=True,
    owner=JID("owner@example.org/desk"),
    owner_text="other@example.org",
    members=[JID("a@example.org"), JID("example.org")],
    state="two",
    states=[3, 4],
    note="Something else.",
)


@pytest.mark.parametrize("kind", ["submit", "form"])
def test_every_field_type_survives_writing_and_reading_back(kind):
    read = round_trip(FILLED, kind)
    assert read == Everything(**{**vars(FILLED), "note": "Read this."})  # fixed text is the class's, never submitted
    assert isinstance(read.count, int) and isinstance(read.price, Decimal) and isinstance(read.owner, JID)


def test_an_empty_submission_gives_every_default():
    assert Everything.parse(submission(form_type=None)) == Everything()


def test_booleans_read_all_four_spellings():
    for text, value in (("1", True), ("true", True), ("0", False), ("false", False)):
        assert Everything.parse(submission(field("flag", text), form_type=None)).flag is value


def test_a_jid_is_prepared_and_a_repeated_one_counts_once():
    form = Everything.parse(
        submission(field("members", "A@Example.org", "a@example.org", "b@example.org"), field("owner_text", "X@Y.org"))
    ).members
    assert form == [JID("a@example.org"), JID("b@example.org")]
    assert Everything.parse(submission(field("owner_text", "X@Y.org"))).owner_text == "x@y.org"


def test_a_text_multi_reads_lines_and_an_empty_one_is_empty():
    assert Everything.parse(submission(field("lines", "a", "", "b\nc"))).lines == ["a", "", "b", "c"]
    assert Everything.parse(submission(field("lines", ""))).lines == []


def test_list_values_may_be_typed_and_labelled():
    class Pick(Form, form_type="urn:example:pick"):
        level: int = list_single("Level", options=[(1, "low"), (5, "high")], required=True)

    assert Pick.fields[0].options == (("1", "low"), ("5", "high"))
    assert Pick.parse(submission(field("level", "5"), form_type=None)).level == 5


def test_an_enum_gives_a_list_its_options():
    assert Everything.fields[9].options == (("red", None), ("blue", None))
    assert Everything.parse(submission(field("colour", "blue"))).colour is Colour.BLUE


# What a submission may be.


def test_a_client_submission_is_read_into_typed_values():
    form = Reboot.parse(
        element(
            "<x xmlns='jabber:x:data' type='submit'>"
            "<field var='FORM_TYPE' type='hidden'><value>urn:example:reboot</value></field>"
            "<field var='host' type='list-single'><value>web2</value></field>"
            "<field var='delay' type='text-single'><value> 90 </value></field>"
            "<field var='notify' type='boolean'><value>0</value></field>"
            "<field var='watchers' type='jid-multi'><value>ops@example.org</value><value/></field>"
            "<field var='password' type='text-private'><value>s3cret</value></field>"
            "<field var='motd' type='text-multi'><value>Back</value><value>soon</value></field>"
            "</x>"
        )
    )
    assert form == Reboot(
        host="web2", delay=90, notify=False, watchers=[JID("ops@example.org")], password="s3cret", motd=["Back", "soon"]
    )


@pytest.mark.parametrize("type", ["submit", "form", "cancel"])
def test_submit_form_and_cancel_are_read_as_submissions(type):
    assert Reboot.parse(submission(*REQUIRED, type=type)).host == "web1"


def test_a_submission_without_a_type_is_read_as_submit():
    xml = f"<x xmlns='jabber:x:data'>{''.join(REQUIRED)}</x>"
    assert Reboot.parse(element(xml)).password == "s3cret"


def test_a_submission_may_leave_out_form_type_and_optional_fields():
    assert Reboot.parse(submission(*REQUIRED, form_type=None)) == Reboot(host="web1", password="s3cret")


def test_unknown_fields_and_fixed_fields_are_ignored():
    form = Reboot.parse(
        submission(*REQUIRED, field("unknown", "x", "y"), "<field type='fixed'><value>z</value></field>")
    )
    assert form == Reboot(host="web1", password="s3cret")


def test_an_empty_value_counts_as_none():
    form = Reboot.parse(submission(*REQUIRED, field("delay", ""), field("reason", "")))
    assert (form.delay, form.reason) == (0, None)


def test_a_values_whole_text_is_read_however_the_parser_split_it():
    x = submission(field("host", "web1"), "<field var='password'><value>a&amp;b<!-- -->c</value></field>")
    assert Reboot.parse(x).password == "a&bc"


def test_an_unknown_datatype_validates_as_a_string_and_is_written_as_declared():
    class Custom(Form, form_type="urn:example:custom"):
        code: str = text_single("Code", datatype="x:mytype", required=True)

    assert Custom.parse(submission(field("code", " anything at all "), form_type=None)).code == " anything at all "
    assert "datatype='x:mytype'" in to_xml(Custom().to_element())


# Every refusal, with its text.


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ((field("password", "x"),), "host (Host): a value is required"),
        ((field("host", ""), field("password", "x")), "host (Host): a value is required"),
        ((field("host", "web1"),), "password (Password): a value is required"),
        ((field("host", "web1", "web2"), field("password", "x")), "host (Host): takes one value, not 2"),
        ((field("host", "web3"), field("password", "x")), "host (Host): 'web3' is not one of the options (web1, web2)"),
        ((*REQUIRED, field("delay", "soon")), "delay (Delay (s)): 'soon' is not an integer (xs:int)"),
        ((*REQUIRED, field("delay", "1.5")), "delay (Delay (s)): '1.5' is not an integer (xs:int)"),
        ((*REQUIRED, field("delay", "4000")), "delay (Delay (s)): 4000 is above the maximum 3600"),
        ((*REQUIRED, field("delay", "-1")), "delay (Delay (s)): -1 is below the minimum 0"),
        (
            (*REQUIRED, field("delay", "99999999999")),
            "delay (Delay (s)): '99999999999' is outside xs:int (-2147483648 to 2147483647)",
        ),
        ((*REQUIRED, field("notify", "yes")), "notify (Notify users): 'yes' is not a boolean (true, false, 1 or 0)"),
        ((*REQUIRED, field("watchers", "a@b@c")), "watchers (Watchers): 'a@b@c' is not a valid JID"),
        ((*REQUIRED, field("reason", "Because!")), "reason (Reason): 'Because!' does not match [a-z ]+"),
        ((*REQUIRED, field("token", "a", "b")), "token: takes one value, not 2"),
        ((*REQUIRED, field("host", "web2")), "host (Host): the field is given twice"),
    ],
)
def test_a_submission_that_does_not_fit_is_refused_naming_field_label_and_reason(fields, text):
    error = reason_for(Reboot, *fields)
    assert str(error) == text
    assert error.var == text.split(" ")[0].rstrip(":")


def test_a_submitted_field_type_is_not_trusted():
    error = reason_for(Reboot, "<field var='host' type='list-multi'><value>web1</value><value>web2</value></field>")
    assert str(error) == "host (Host): takes one value, not 2"


def test_a_value_too_long_for_its_place_is_shown_shortened():
    error = reason_for(Reboot, *REQUIRED, field("reason", "X" * 5000))
    assert str(error) == f"reason (Reason): '{'X' * 40}…' does not match [a-z ]+"


def test_a_private_value_never_appears_in_a_refusal():
    class Login(Form, form_type="urn:example:login"):
        pin: str = text_private("PIN", regex="[0-9]{4}", required=True)
        code: int = text_private("Code", default=0)

    assert str(reason_for(Login, field("pin", "hunter2"))) == "pin (PIN): the value does not match [0-9]{4}"
    error = reason_for(Login, field("pin", "1234"), field("code", "hunter2"))
    assert str(error) == "code (Code): the value is not an integer (xs:integer)"
    assert "hunter2" not in repr(error) and "hunter2" not in repr(error.args)


@pytest.mark.parametrize(
    ("fields", "options", "text"),
    [
        ((*REQUIRED,), {"form_type": "urn:example:other"}, "FORM_TYPE 'urn:example:other' is not 'urn:example:reboot'"),
        ((*REQUIRED,), {"type": "result"}, "a result form is no submission"),
        ((*REQUIRED,), {"type": "bogus"}, "a form of type 'bogus' is no submission"),
    ],
)
def test_a_form_that_is_no_submission_of_the_class_is_refused_as_a_whole(fields, options, text):
    error = reason_for(Reboot, *fields, **options)
    assert (str(error), error.var) == (text, None)


def test_anything_but_a_data_form_is_refused():
    with pytest.raises(FormError, match="not a data form") as caught:
        Reboot.parse(element("<x xmlns='jabber:x:oob'/>"))
    assert caught.value.var is None


def test_only_a_form_class_parses():
    with pytest.raises(TypeError, match="from_element"):
        Form.parse(submission())


class Choices(Form, form_type="urn:example:choices"):
    picks: list[str] = list_multi("Picks", options=["a", "b", "c", "d"], list_range=(1, 2), required=True)
    tags: list[str] = list_multi("Tags", options=["x"], open=True)
    code: str | None = list_single("Code", options=["AA"], regex="[A-Z]{2}", default=None)
    level: int | None = list_single("Level", options=[1, 2], range=(1, 10), default=None)
    score: float | None = text_single("Score", range=(0.0, 1.0), default=None)
    price: Decimal | None = text_single("Price", range=(None, Decimal("9.99")), default=None)
    day: date | None = text_single("Day", range=(date(2024, 1, 1), "2024-12-31"), default=None)
    at: datetime | None = text_single("At", range=("2024-01-01T00:00:00Z", None), default=None)
    alarm: time | None = text_single("Alarm", range=(time(6), time(22)), default=None)
    small: int | None = text_single("Small", datatype="xs:byte", default=None)
    page: str | None = text_single("Page", datatype="xs:anyURI", default=None)
    lang: str | None = text_single("Language", datatype="xs:language", default=None)


def test_list_range_counts_the_values_selected():
    assert Choices.parse(submission(field("picks", "a", "b", "a"))).picks == ["a", "b"]
    assert str(reason_for(Choices, field("picks", "a", "b", "c"))) == "picks (Picks): at most 2 may be selected, not 3"


def test_list_range_minimum_is_enforced():
    class Several(Form, form_type="urn:example:several"):
        picks: list[str] = list_multi("Picks", options=["a", "b", "c"], list_range=(2, None))

    assert str(reason_for(Several, field("picks", "a"))) == "picks (Picks): at least 2 must be selected, not 1"


def test_an_open_list_accepts_values_beyond_its_options():
    assert Choices.parse(submission(field("picks", "a"), field("tags", "x", "new"))).tags == ["x", "new"]


def test_a_regex_or_range_on_a_list_opens_it_and_checks_every_value():
    form = Choices.parse(submission(field("picks", "a"), field("code", "ZZ"), field("level", "7")))
    assert (form.code, form.level) == ("ZZ", 7)
    assert (
        str(reason_for(Choices, field("picks", "a"), field("code", "zz")))
        == "code (Code): 'zz' does not match [A-Z]{2}"
    )
    assert str(reason_for(Choices, field("picks", "a"), field("level", "11"))) == (
        "level (Level): 11 is above the maximum 10"
    )


@pytest.mark.parametrize(
    ("var", "value", "text"),
    [
        ("score", "1.5", "score (Score): 1.5 is above the maximum 1.0"),
        ("score", "NaN", "score (Score): NaN is outside the range 0.0..1.0"),
        ("score", "1e999x", "score (Score): '1e999x' is not a number (xs:double)"),
        ("price", "10", "price (Price): 10 is above the maximum 9.99"),
        ("price", "1e2", "price (Price): '1e2' is not a decimal number (xs:decimal)"),
        ("day", "2023-12-31", "day (Day): 2023-12-31 is below the minimum 2024-01-01"),
        ("day", "2024-02-30", "day (Day): '2024-02-30' is not a date (xs:date)"),
        (
            "at",
            "2024-01-01T00:59:59+01:00",
            "at (At): 2024-01-01T00:59:59+01:00 is below the minimum 2024-01-01T00:00:00Z",
        ),
        (
            "at",
            "2024-06-01T12:00:00",
            "at (At): '2024-06-01T12:00:00' is not a date and time with a time zone (XEP-0082)",
        ),
        ("alarm", "05:59:59", "alarm (Alarm): 05:59:59 is below the minimum 06:00:00"),
        ("alarm", "21:00:00-02:00", "alarm (Alarm): 21:00:00-02:00 is above the maximum 22:00:00"),
        ("small", "128", "small (Small): '128' is outside xs:byte (-128 to 127)"),
        ("page", "http://example.org/a b", "page (Page): 'http://example.org/a b' is not a URI (xs:anyURI)"),
        ("lang", "en_GB", "lang (Language): 'en_GB' is not a language tag (xs:language)"),
    ],
)
def test_xep_0122_datatypes_and_ranges_refuse_what_is_outside_them(var, value, text):
    assert str(reason_for(Choices, field("picks", "a"), field(var, value))) == text


def test_xep_0122_values_inside_their_ranges_are_read_typed():
    form = Choices.parse(
        submission(
            field("picks", "a"),
            field("score", "1E-1"),
            field("price", "9.99"),
            field("day", "2024-12-31Z"),
            field("at", "2024-01-01T00:00:00.5-01:00"),
            field("alarm", "21:59:59.999"),
            field("small", "-128"),
            field("page", "xmpp:example.org?disco"),
            field("lang", "en-GB"),
        )
    )
    assert (form.score, form.price, form.day) == (0.1, Decimal("9.99"), date(2024, 12, 31))
    assert form.at == datetime(2024, 1, 1, 1, 0, 0, 500000, tzinfo=UTC)
    assert (form.alarm, form.small, form.page, form.lang) == (
        time(21, 59, 59, 999000),
        -128,
        "xmpp:example.org?disco",
        "en-GB",
    )


# XEP-0122 as written.


def validate_of(form_class: type[Form], var: str) -> str:
    """The ``<validate/>`` of field ``var`` in a form to fill, as XML text ("" when there is none)."""
    form = element(to_xml(form_class().to_element()))
    [declared] = [child for child in form.elements(NS_DATA, "field") if child.getAttribute("var") == var]
    validate = next(declared.elements(VALIDATE, "validate"), None)
    return "" if validate is None else to_xml(validate, NS_DATA)


def test_xep_0122_validate_is_written_with_its_datatype_and_one_method():
    ns = f"xmlns='{VALIDATE}'"
    assert validate_of(Choices, "picks") == f"<validate {ns}><list-range min='1' max='2'/></validate>"
    assert validate_of(Choices, "tags") == f"<validate {ns}><open/></validate>"
    assert validate_of(Choices, "code") == f"<validate {ns}><regex>[A-Z]{{2}}</regex></validate>"
    assert validate_of(Choices, "level") == f"<validate {ns} datatype='xs:integer'><range min='1' max='10'/></validate>"
    assert validate_of(Choices, "price") == f"<validate {ns} datatype='xs:decimal'><range max='9.99'/></validate>"
    assert (
        validate_of(Choices, "day")
        == f"<validate {ns} datatype='xs:date'><range min='2024-01-01' max='2024-12-31'/></validate>"
    )
    assert (
        validate_of(Choices, "at")
        == f"<validate {ns} datatype='xs:dateTime'><range min='2024-01-01T00:00:00Z'/></validate>"
    )
    assert (
        validate_of(Choices, "alarm")
        == f"<validate {ns} datatype='xs:time'><range min='06:00:00' max='22:00:00'/></validate>"
    )
    assert validate_of(Choices, "small") == f"<validate {ns} datatype='xs:byte'/>"


def test_fields_whose_type_says_it_all_carry_no_validate():
    assert validate_of(Everything, "name") == "" and validate_of(Everything, "flag") == ""
    assert (
        validate_of(Everything, "members") == ""
        and validate_of(Everything, "size") == f"<validate xmlns='{VALIDATE}' datatype='xs:integer'/>"
    )


# Hostile sizes.


def test_too_many_values_are_refused_without_reading_them_all():
    values = "<value>a</value>" * (MAX_VALUES * 20)
    error = reason_for(Reboot, *REQUIRED, f"<field var='motd'>{values}</field>")
    assert str(error) == f"motd (Message): more than {MAX_VALUES} values"
    assert (
        Reboot.parse(submission(*REQUIRED, f"<field var='motd'>{'<value>a</value>' * MAX_VALUES}</field>")).motd
        == ["a"] * MAX_VALUES
    )


def test_values_too_long_together_are_refused():
    just = "a" * MAX_FIELD_CHARACTERS
    assert Reboot.parse(submission(*REQUIRED, field("motd", just))).motd == [just]
    error = reason_for(Reboot, *REQUIRED, field("motd", just[:-1], "bb"))
    assert str(error) == f"motd (Message): its values are longer than {MAX_FIELD_CHARACTERS} characters"


def test_a_huge_integer_or_jid_is_refused_quickly():
    error = reason_for(Choices, field("picks", "a"), field("level", "9" * 60000))
    assert str(error) == f"level (Level): '{'9' * 40}…' is not an integer (xs:integer)"
    error = reason_for(Reboot, *REQUIRED, field("watchers", "a" * 60000 + "@example.org"))
    assert str(error).endswith("is not a valid JID")


def test_unknown_fields_in_bulk_are_skipped():
    noise = "".join(f"<field var='x{n}'><value>v</value></field>" for n in range(5000))
    assert Reboot.parse(submission(*REQUIRED, noise)).host == "web1"


# Declaring mistakes stop at the class.


@pytest.mark.parametrize(
    ("declare", "text"),
    [
        (lambda: {"a": (list[str], text_single("A", default=[]))}, "holds one value, not a list"),
        (lambda: {"a": (str, list_multi("A", options=["x"]))}, "holds several values"),
        (lambda: {"a": (str, text_single("A"))}, "needs a default, or an annotation with | None"),
        (lambda: {"a": (int, boolean("A", default=False))}, "annotated bool"),
        (lambda: {"a": (int, jid_single("A", default=None))}, "annotated JID"),
        (lambda: {"a": (str, text_single("A", range=(1, 2), default=""))}, "needs an ordered datatype"),
        (lambda: {"a": (int, text_single("A", range=(1, 2), regex="1", default=1))}, "one method"),
        (lambda: {"a": (int, text_single("A", range=(5, 2), default=3))}, "minimum above its maximum"),
        (lambda: {"a": (int, text_single("A", range=("x", 2), default=1))}, "is not an integer"),
        (lambda: {"a": (int, text_single("A", datatype="xs:int", range=(None, None), default=1))}, "at least one"),
        (lambda: {"a": (str, list_single("A", default=""))}, "needs options, or open=True"),
        (lambda: {"a": (int, list_single("A", options=["x"], default=1))}, "an option is not an integer"),
        (lambda: {"a": (list[str], list_multi("A", options=["x"], list_range=(3, 1)))}, "minimum above its maximum"),
        (lambda: {"a": (str, text_single("A", regex="(", default=""))}, "does not compile"),
        (lambda: {"values": (str, text_single("A", default=""))}, "the name of a Form attribute"),
        (lambda: {"a": (str, text_single("A", var="FORM_TYPE", default=""))}, "is taken"),
        (lambda: {"a": (str, text_single(default="")), "b": (str, text_single(var="a", default=""))}, "is taken"),
        (lambda: {"a": (dict, text_single("A", default=None))}, "cannot read a value"),
    ],
)
def test_a_declaration_that_cannot_work_is_refused_when_the_class_is_made(declare, text):
    fields = declare()
    namespace = {name: declared for name, (_annotation, declared) in fields.items()}
    namespace["__annotations__"] = {name: annotation for name, (annotation, _declared) in fields.items()}
    with pytest.raises(TypeError, match=text):
        type("Broken", (Form,), namespace, form_type="urn:example:broken")


def test_a_form_class_extends_another():
    class Base(Form, form_type="urn:example:base", title="Base"):
        a: str = text_single("A", default="x")

    class More(Base, title="More"):
        b: int = text_single("B", default=1)

    assert [field.name for field in More.fields] == ["a", "b"]
    assert (More.form_type, More.title, Base.title) == ("urn:example:base", "More", "Base")
    assert More.parse(submission(field("a", "y"), field("b", "2"), form_type="urn:example:base")) == More(a="y", b=2)


def test_an_annotation_naming_a_later_class_is_read_on_first_use():
    class Later(Form, form_type="urn:example:later"):
        size: "Size" = list_single("Size", required=True)

    global Size

    class Size(enum.Enum):
        S = "s"
        M = "m"

    try:
        assert Later.parse(submission(field("size", "m"), form_type=None)).size is Size.M
    finally:
        del Size


def test_form_classes_are_unhashable_and_plain_forms_hash_by_value():
    with pytest.raises(TypeError):
        hash(Reboot(host="web1"))
    assert hash(Form.of("urn:x", {"a": "1"})) == hash(Form.of("urn:x", {"a": "1"}))


# The plain forms of service discovery (XEP-0128).


def test_form_of_builds_a_plain_form_with_text_and_list_values():
    form = Form.of("http://jabber.org/network/serverinfo", {"abuse-addresses": ["mailto:abuse@example.org"], "x": "1"})
    assert form.form_type == "http://jabber.org/network/serverinfo"
    assert form.fields == (Field("abuse-addresses", ("mailto:abuse@example.org",), multi=True), Field("x", ("1",)))
    assert form.values("abuse-addresses") == ("mailto:abuse@example.org",) and form.values("y") == ()
    assert form == Form("http://jabber.org/network/serverinfo", form.fields)


def test_a_plain_form_is_written_as_before():
    form = Form.of("urn:example:form", {"colour": "blue", "sizes": ["s", "m"]})
    assert canonical(to_xml(form.to_element("result"))) == canonical(
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:example:form</value></field>"
        "<field var='colour' type='text-single'><value>blue</value></field>"
        "<field var='sizes' type='list-multi'><value>s</value><value>m</value></field>"
        "</x>"
    )


def test_from_element_reads_any_form_with_a_form_type_as_text():
    read = Form.from_element(element(to_xml(FILLED.to_element("result"))))
    assert read.form_type == "urn:example:everything" and read.values("count") == ("-42",)
    assert read.values("members") == ("a@example.org", "example.org")
    assert Form.from_element(element(f"<x xmlns='{NS_DATA}' type='result'>{field('a', '1')}</x>")) is None


def test_disco_info_carries_typed_forms_as_results_and_reads_them_back_plain():
    class ServerInfo(Form, form_type="http://jabber.org/network/serverinfo"):
        abuse: list[str] = list_multi(var="abuse-addresses", open=True)

    info = DiscoInfo(forms=(ServerInfo(abuse=["mailto:abuse@example.org"]),))
    query = info_element(info)
    assert "type='result'" in to_xml(query)
    [read] = parse_info(element(to_xml(query))).forms
    assert read == Form.of("http://jabber.org/network/serverinfo", {"abuse-addresses": ["mailto:abuse@example.org"]})
