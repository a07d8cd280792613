"""JIDs from the wire: exactly as Twisted's ``JID`` prepares them, fast when they are already prepared.

Every request carries a ``from`` and a ``to``, and a server with many users sends
a different ``from`` on almost every request. Twisted's ``JID()`` runs nodeprep,
nameprep and resourceprep through ``stringprep`` (tens of microseconds per new
address), and no cache can hold a server's population. But almost every address
a server forwards is already in its prepared form, and for those preparation
changes nothing. So:

- an address made only of ASCII characters that preparation leaves as they are
  and does not prohibit (see ``_PREPARED``) is split by one regular expression
  and becomes a ``JID`` with those parts, with no stringprep at all;
- anything else (upper case, non-ASCII, a trailing dot, an empty part, a
  prohibited character) goes through Twisted's full preparation;
- the most recent addresses are kept parsed in a bounded cache (``CACHE_SIZE``),
  so that the few addresses seen on every request (the component's own) cost
  a dict lookup.

The fast path accepts no address that full preparation rejects and never gives
another result: ``tests/unit/test_addresses.py`` holds the two equal over
generated addresses. Why each character class is safe, part by part:

- node (nodeprep, RFC 6122 appendix A): ASCII is mapped only by case folding
  (so upper case takes the slow path), NFKC leaves it alone, and the prohibited
  ASCII characters are space, the controls, DEL and ``" & ' / : < > @``;
- domain (nameprep with STD3 rules, as Twisted applies it): lower-case letters,
  digits and ``-``, not at either end of a label; labels are not empty;
- resource (resourceprep): printable ASCII including space (controls and DEL
  are prohibited; nothing is mapped).
"""

from __future__ import annotations

import re
from functools import lru_cache

from twisted.words.protocols.jabber.jid import JID, InvalidFormat

__all__ = ["InvalidFormat", "bare_jid", "parse_jid"]

CACHE_SIZE = 4096
"""Addresses kept parsed, least recently used first out: the bound of this table."""

_NODE = r"[!#-%(-.0-9;=?\[-~]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_PREPARED = re.compile(rf"(?:({_NODE})@)?({_LABEL}(?:\.{_LABEL})*)(?:/([ -~]+))?").fullmatch

_new_jid = JID.__new__


@lru_cache(maxsize=CACHE_SIZE)
def parse_jid(text: str) -> JID:
    """Parse and prepare a JID; raises ``InvalidFormat`` for anything that is not one.

    Twisted's parser lets some malformed input escape as ``IndexError`` or
    ``UnicodeError``; those are ``InvalidFormat`` here too.
    """
    parts = _PREPARED(text)
    if parts is not None:
        jid = _new_jid(JID)
        jid.user, jid.host, jid.resource = parts.groups()
        return jid
    if not text:
        raise InvalidFormat("an empty JID")
    try:
        return JID(text)
    except InvalidFormat:
        raise
    except (IndexError, UnicodeError, ValueError) as e:
        raise InvalidFormat(f"malformed JID {text!r}: {e}") from None


def bare_jid(text: str) -> str:
    """The prepared bare JID (``user@host`` or ``host``) of an address; raises ``InvalidFormat``.

    For a prepared address this is a slice of the text: checking a sender and
    finding its rate-limit bucket costs no ``JID`` at all.
    """
    parts = _PREPARED(text)
    if parts is not None:
        return text[: parts.end(2)]
    bare: str = parse_jid(text).userhost()
    return bare


def normal_form(text: str) -> str:
    """The address as preparation writes it (``text`` itself when it is already); raises ``InvalidFormat``."""
    if _PREPARED(text) is not None:
        return text
    full: str = parse_jid(text).full()
    return full


def domain_of(text: str) -> str:
    """The prepared domain of an address; raises ``InvalidFormat``."""
    parts = _PREPARED(text)
    if parts is not None:
        return parts.group(2)
    return parse_jid(text).host
