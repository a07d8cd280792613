"""Elements to XML text, exactly: what the component writes parses back to what it read or built.

One writer for every domish Element, replies and queries alike. domish's own
serializer keeps a stack of prefixes for every element it writes, and its
escaping leaves tab, CR and LF in attribute values and CR in text as they
are, which the next parser normalizes (to spaces, or CR to LF): an echoed
payload came back changed. Here:

- text escapes ``&``, ``<``, ``>`` (so ``]]>`` cannot appear) and CR (``&#13;``);
- attribute values and namespace names escape ``&``, ``<``, ``>``, both
  quotes, tab (``&#9;``), LF (``&#10;``) and CR (``&#13;``);
- namespaces follow the tree as domish's parser builds it: an element's
  ``uri`` (``None``: the default namespace it inherits), ``defaultUri`` (the
  default namespace in force inside it; ``None``: inherited), the prefixes
  declared on it (``localPrefixes``) and qualified attributes as
  ``(uri, name)`` keys. Declared prefixes are written where they were
  declared; a namespace that no prefix in scope names gets a new prefix
  (``ns0``, ``ns1``, ...); ``xml:`` is always in scope.

Payloads without prefixes or qualified attributes (nearly all of them) take a
short path with one regular-expression check per string. A character that
XML 1.0 cannot carry at all (U+0000 to U+0008, U+000B, U+000C, U+000E to
U+001F, a lone surrogate, U+FFFE, U+FFFF) cannot come from a parser, only
from a responder: writing it raises ``ValueError`` naming it, so the reply
becomes an error instead of a stanza that would make the server close the
stream. Element and attribute names are written as given (a parser's names
are valid; a responder's are its own).
"""

from __future__ import annotations

import re

from twisted.words.xish import domish

XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"

# Characters outside XML 1.0's Char production.
_NOT_XML = r"\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_not_xml = re.compile(f"[{_NOT_XML}]").search
_text_special = re.compile(f"[&<>\r{_NOT_XML}]").search
_attribute_special = re.compile(f"[&<>'\"\t\n\r{_NOT_XML}]").search

_IN_SCOPE_EVERYWHERE = {"xml": XML_NAMESPACE}  # never written, never changed


def escape_text(value: str) -> str:
    """Escape character data; raises ``ValueError`` for a character XML 1.0 cannot carry."""
    if _text_special(value) is None:
        return value
    _refuse_non_xml(value)
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def escape_attribute(value: str) -> str:
    """Escape an attribute value (or a namespace name) for either quote.

    White space is written as character references, so that attribute-value
    normalization leaves it as it was; raises ``ValueError`` for a character
    XML 1.0 cannot carry.
    """
    if _attribute_special(value) is None:
        return value
    _refuse_non_xml(value)
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )


def _refuse_non_xml(value: str) -> None:
    found = _not_xml(value)
    if found is not None:
        raise ValueError(f"U+{ord(found.group()):04X} cannot be written in XML 1.0 (in {value[:40]!r})")


def to_xml(element: domish.Element, within: str = "") -> str:
    """The element as XML text, its namespaces declared on it.

    ``within`` is the default namespace in force where the text goes: an
    element whose ``uri`` is ``None`` is in it, and one in another namespace
    declares its own. The default, ``""``, writes a top-level element whose
    ``uri`` is ``""`` or ``None`` without a declaration, as domish does for
    stanzas that take the stream's namespace.
    """
    parts: list[str] = []
    _write(element, parts, within, within, _IN_SCOPE_EVERYWHERE)
    return "".join(parts)


def _write(element: domish.Element, parts: list[str], scope: str, inherited: str, prefixes: dict[str, str]) -> None:
    """Append ``element`` to ``parts``.

    ``scope`` is the default namespace declared in the text written so far,
    ``inherited`` the one domish resolves ``None`` against (they differ below
    an element in no namespace that declares ``xmlns=''`` for itself only),
    ``prefixes`` the prefixes in scope (shared, copied before a change).
    """
    default = element.defaultUri
    if default is None:
        default = inherited
    uri = element.uri
    if uri is None:
        uri = default
    if uri == default and not element.localPrefixes:
        tag = element.name
        if uri == scope:
            parts.append("<" + tag)
        else:
            parts.append(f"<{tag} xmlns='{escape_attribute(uri)}'")
            scope = uri
    else:
        tag, scope, prefixes = _start_with_namespaces(element, uri, default, scope, prefixes, parts)
    attributes = element.attributes
    for key, value in attributes.items():
        if key.__class__ is not str:
            prefixes = _write_qualified_attribute(key, value, attributes, prefixes, parts)
        elif _attribute_special(value) is None:
            parts.append(f" {key}='{value}'")
        else:
            parts.append(f" {key}='{escape_attribute(value)}'")
    children = element.children
    if not children:
        parts.append("/>")
        return
    parts.append(">")
    for child in children:
        if child.__class__ is str:
            parts.append(child if _text_special(child) is None else escape_text(child))
        elif isinstance(child, domish.Element):
            _write(child, parts, scope, default, prefixes)
        elif isinstance(child, domish.SerializedXML):
            parts.append(child)
        else:
            parts.append(escape_text(child))
    parts.append(f"</{tag}>")


def _start_with_namespaces(
    element: domish.Element, uri: str, default: str, scope: str, prefixes: dict[str, str], parts: list[str]
) -> tuple[str, str, dict[str, str]]:
    """Open a start tag that declares prefixes, or whose name needs one; returns tag, scope, prefixes."""
    declared = dict(element.localPrefixes)
    if declared:
        prefixes = {**prefixes, **declared}
    if uri == default or not uri:  # no prefix: a name in no namespace can only be unprefixed
        tag = element.name
        written_default = uri
    else:
        prefix = _prefix_for(uri, prefixes)
        if prefix is None:
            prefix = _new_prefix(prefixes)
            declared[prefix] = uri
            prefixes = {**prefixes, prefix: uri}
        tag = f"{prefix}:{element.name}"
        written_default = default
    parts.append("<" + tag)
    if written_default != scope:
        parts.append(f" xmlns='{escape_attribute(written_default)}'")
    for prefix, namespace in declared.items():
        if not namespace:
            raise ValueError(f"prefix {prefix!r} of <{element.name}/> is bound to no namespace, which XML 1.0 forbids")
        parts.append(f" xmlns:{prefix}='{escape_attribute(namespace)}'")
    return tag, written_default, prefixes


def _write_qualified_attribute(
    key: tuple[str, str],
    value: str,
    attributes: dict[str | tuple[str, str], str],
    prefixes: dict[str, str],
    parts: list[str],
) -> dict[str, str]:
    """Append a ``(uri, name)`` attribute, declaring a prefix when none in scope names ``uri``."""
    uri, name = key
    if not uri:
        if name in attributes:
            raise ValueError(f"attribute {name!r} is given twice, as {name!r} and as {key!r}")
        parts.append(f" {name}='{escape_attribute(value)}'")
        return prefixes
    prefix = _prefix_for(uri, prefixes)
    if prefix is None:
        prefix = _new_prefix(prefixes)
        prefixes = {**prefixes, prefix: uri}
        parts.append(f" xmlns:{prefix}='{escape_attribute(uri)}'")
    parts.append(f" {prefix}:{name}='{escape_attribute(value)}'")
    return prefixes


def _prefix_for(uri: str, prefixes: dict[str, str]) -> str | None:
    for prefix, namespace in prefixes.items():
        if namespace == uri:
            return prefix
    return None


def _new_prefix(prefixes: dict[str, str]) -> str:
    number = 0
    while f"ns{number}" in prefixes:
        number += 1
    return f"ns{number}"
