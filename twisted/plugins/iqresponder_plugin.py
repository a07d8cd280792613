"""twistd plugin: ``twistd -n iqresponder --config FILE`` (and ``twist iqresponder``)."""

from twisted.application.service import ServiceMaker

iqresponder = ServiceMaker(
    "iqresponder",
    "component.tap",
    "An XMPP component (XEP-0114) that answers Iq requests from drop-in handler modules.",
    "iqresponder",
)
