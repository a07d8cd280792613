"""Serialize the payload elements of replies, faster than domish's general serializer.

domish's serializer keeps a stack of namespace prefixes for every element it
writes; payloads almost never use prefixes, so for them a direct recursive
write does the same job in a fraction of the time. Anything with prefixes or
qualified attributes goes to domish, unchanged.
"""

from __future__ import annotations

from twisted.words.xish import domish

_escape_text = domish.escapeToXml


def to_xml(element: domish.Element) -> str:
    """``element.toXml()``, as a standalone element (its namespace declared on it)."""
    parts: list[str] = []
    if not _write(element, "", parts):
        return element.toXml()
    return "".join(parts)


def _write(element: domish.Element, parent_uri: str, parts: list[str]) -> bool:
    """Append ``element`` to ``parts``; ``False`` when it needs domish's general serializer."""
    if element.localPrefixes:
        return False
    uri = element.uri if element.uri is not None else (element.defaultUri or "")
    if element.defaultUri is not None and element.defaultUri != uri:
        return False  # a default namespace that differs from the element's own: let domish decide
    parts.append("<" + element.name)
    if uri != parent_uri:
        parts.append(f" xmlns='{uri}'")
    for key, value in element.attributes.items():
        if key.__class__ is not str:  # a qualified attribute needs a prefix
            return False
        parts.append(f" {key}='{_escape_text(value, 1)}'")
    if not element.children:
        parts.append("/>")
        return True
    parts.append(">")
    for child in element.children:
        if child.__class__ is str:
            parts.append(_escape_text(child))
        elif isinstance(child, domish.SerializedXML):
            parts.append(child)
        elif isinstance(child, str):
            parts.append(_escape_text(child))
        elif not _write(child, uri, parts):
            return False
    parts.append(f"</{element.name}>")
    return True
