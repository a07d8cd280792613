"""parse_jid is Twisted's full JID preparation, outcome and value, whichever path an address takes."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from twisted.words.protocols.jabber.jid import JID

from component.addresses import _PREPARED, InvalidFormat, parse_jid


def full_preparation(text: str):
    """Twisted's answer: the prepared parts, or ``InvalidFormat`` for anything it refuses."""
    try:
        jid = JID(text)
    except (InvalidFormat, IndexError, UnicodeError, ValueError, RuntimeError):  # RuntimeError: an empty string
        return InvalidFormat
    return (jid.user, jid.host, jid.resource)


def ours(text: str):
    try:
        jid = parse_jid(text)
    except InvalidFormat:
        return InvalidFormat
    return (jid.user, jid.host, jid.resource)


ASCII = st.characters(min_codepoint=0, max_codepoint=0x7F)
TRICKY = st.sampled_from(
    [
        "A", "Z", "ß", "é", "İ", "ﬁ", "Ⅻ", "ｆ", "①", "\u00ad", "\u200b", "\ufeff",  # case, compatibility, mapped
        "\u00a0", "\u3000", "\u2028", "\ue000", "\U000e0001", "\u0340", "\ufff9",  # prohibited
        "\u05d0", "\u0627", "\u0661", "\u202e",  # bidirectional
        "\u0221", "\u0378",  # unassigned in stringprep's Unicode 3.2
        "。", "．", "｡",  # dots that nameprep splits on
        "@", "/", ".", "-", " ", "\t", "\x7f", "\"", "&", "'", ":", "<", ">",
    ]
)  # fmt: skip
PART = st.text(st.one_of(ASCII, TRICKY, st.characters()), max_size=12)
LONG = st.text(st.sampled_from("abc-9"), min_size=60, max_size=1100)


@st.composite
def addresses(draw):
    node = draw(st.one_of(st.none(), PART, LONG))
    domain = draw(st.one_of(PART, LONG, st.from_regex(r"[a-z0-9-]{1,8}(\.[a-z0-9-]{0,8}){0,3}\.?", fullmatch=True)))
    resource = draw(st.one_of(st.none(), PART, LONG))
    text = domain
    if node is not None:
        text = f"{node}@{text}"
    if resource is not None:
        text = f"{text}/{resource}"
    return text


@given(addresses())
@example("juliet@capulet.example/balcony")
@example("Juliet@capulet.example/balcony")
@example("juliet@Capulet.example")
@example("@capulet.example")
@example("capulet.example/")
@example("capulet.example.")
@example("a..b")
@example("-a.example")
@example("a-.example")
@example("user@host/res/with/slashes@and@ats")
@example("host/res@x")
@example("a@b@c")
@example("")
@example("juliet@capulet.example/ balcony ")
@example("juliet\x7f@capulet.example")
def test_parse_jid_equals_twisteds_full_preparation(text):
    assert ours(text) == full_preparation(text)


@pytest.mark.parametrize(
    "text",
    [
        "user123@localhost/r123",
        "alice@localhost/r",
        "iq.localhost",
        "user@iq.localhost/res with spaces",
        "q!#$%()*+,-.;=?[\\]^_`{|}~@a-b.c1/~!@#$%^&*()",
    ],
)
def test_prepared_addresses_take_the_fast_path(text):
    assert _PREPARED(text) is not None
    assert ours(text) == full_preparation(text)


@pytest.mark.parametrize("text", ["Alice@localhost", "alice@LOCALHOST", "élise@localhost", "localhost.", "@localhost"])
def test_addresses_preparation_would_change_take_the_full_path(text):
    assert _PREPARED(text) is None
    assert ours(text) == full_preparation(text)
