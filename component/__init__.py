"""iqresponder: an XMPP external component (XEP-0114) that answers Iq requests.

What handler authors import::

    from component import responder, Request, StanzaError, XMPPError, IqError, IqTimeout, NotConnected

payload classes, to read and write typed payloads (component/payload.py)::

    from component import Payload, PayloadError, attribute, text, child_text, child, children

the store's failure, for a responder that answers it its own way (component/store.py)::

    from component import StoreUnavailable

ad-hoc commands (XEP-0050, component/commands.py) and their forms (component/dataforms.py)::

    from component import command, Done, Last, Note, Session, Form

answering for the server's users (XEP-0355 delegation, XEP-0356 privileges)::

    from component import Delegation, MissingPrivilege, Privileges, RosterItem

and, to publish service discovery information from a module's ``setup()``::

    from component import DiscoInfo, Identity, Item, Form
"""

from importlib.metadata import PackageNotFoundError, version

from component.commands import Done, Last, Note, Session, command
from component.dataforms import Form
from component.delegation import Delegation
from component.discovery import DiscoInfo, Identity, Item
from component.errors import IqError, IqTimeout, NotConnected, StanzaError, XMPPError
from component.payload import Payload, PayloadError, attribute, child, child_text, children, text
from component.privilege import MissingPrivilege, Privileges, RosterItem
from component.registry import responder
from component.request import Request
from component.router import serialized
from component.store import StoreUnavailable
from component.tracker import NO_TIMEOUT

try:
    __version__ = version("iqresponder")
except PackageNotFoundError:  # running from a checkout that was not installed
    __version__ = "0+unknown"

__all__ = [
    "NO_TIMEOUT",
    "Delegation",
    "DiscoInfo",
    "Done",
    "Form",
    "Identity",
    "IqError",
    "IqTimeout",
    "Item",
    "Last",
    "MissingPrivilege",
    "NotConnected",
    "Note",
    "Payload",
    "PayloadError",
    "Privileges",
    "Request",
    "RosterItem",
    "Session",
    "StanzaError",
    "StoreUnavailable",
    "XMPPError",
    "attribute",
    "child",
    "child_text",
    "children",
    "command",
    "responder",
    "serialized",
    "text",
]
