"""XEP-0092 Software Version: name and version; the operating system only when configured.

[handlers.options.version]
os = true        # also tell requesters the operating system (default: false)
"""

import platform

from twisted.words.xish import domish

import component
from component import Request, responder

NS_VERSION = "jabber:iq:version"

_show_os = False


def setup(_component, options: dict) -> None:
    global _show_os
    unknown = set(options) - {"os"}
    if unknown:
        raise ValueError(f"unknown option {min(unknown)!r} (allowed: os)")
    if not isinstance(options.get("os", False), bool):
        raise TypeError("option 'os' must be true or false")
    _show_os = options.get("os", False)


@responder(NS_VERSION, "get", element="query")
def version(request: Request) -> domish.Element:
    query = domish.Element((NS_VERSION, "query"))
    query.addElement("name", content="iqresponder")
    query.addElement("version", content=component.__version__)
    if _show_os:
        query.addElement("os", content=f"{platform.system()} {platform.release()}")
    return query
