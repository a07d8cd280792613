"""XEP-0092 Software Version: name and version; the operating system only when configured.

[handlers.options.version]
os = true        # also tell requesters the operating system (default: false)
"""

import platform

from twisted.words.xish import domish

import component
from component import Request, responder, serialized

NS_VERSION = "jabber:iq:version"


def _answer(show_os: bool) -> domish.SerializedXML:
    query = domish.Element((NS_VERSION, "query"))
    query.addElement("name", content="iqresponder")
    query.addElement("version", content=component.__version__)
    if show_os:
        query.addElement("os", content=f"{platform.system()} {platform.release()}")
    return serialized(query)


_answer_now = _answer(show_os=False)


def setup(_component, options: dict) -> None:
    global _answer_now
    unknown = set(options) - {"os"}
    if unknown:
        raise ValueError(f"unknown option {min(unknown)!r} (allowed: os)")
    if not isinstance(options.get("os", False), bool):
        raise TypeError("option 'os' must be true or false")
    _answer_now = _answer(options.get("os", False))


@responder(NS_VERSION, "get", element="query")
def version(request: Request) -> domish.SerializedXML:
    return _answer_now
