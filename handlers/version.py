"""XEP-0092 Software Version: name and version; the operating system only when configured.

[handlers.options.version]
os = true        # also tell requesters the operating system (default: false)
"""

import platform
from typing import Any

from twisted.words.xish.domish import SerializedXML

import component
from component import Payload, Request, child_text, responder, serialized
from component.interfaces import IComponent

NS_VERSION = "jabber:iq:version"
OPTIONS = {"os": False}  # [handlers.options.version], checked by the loader before setup() sees it


class Version(Payload, namespace=NS_VERSION, element="query"):
    name: str | None = child_text(default=None)
    version: str | None = child_text(default=None)
    os: str | None = child_text(default=None)


def _answer(show_os: bool) -> Version:
    os = f"{platform.system()} {platform.release()}" if show_os else None
    return Version(name="iqresponder", version=component.__version__, os=os)


_answer_now = serialized(_answer(show_os=False))


def setup(_component: IComponent, options: dict[str, Any]) -> None:
    global _answer_now
    _answer_now = serialized(_answer(options["os"]))


@responder(Version, "get")
def version(request: Request) -> SerializedXML:
    return _answer_now
