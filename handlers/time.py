"""XEP-0202 Entity Time: the component's UTC time and its local offset."""

from datetime import UTC, datetime

from twisted.words.xish import domish

from component import Request, responder

NS_TIME = "urn:xmpp:time"


@responder(NS_TIME, "get", element="time")
def entity_time(request: Request) -> domish.Element:
    now = datetime.now(UTC)
    offset = now.astimezone().utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "-" if minutes < 0 else "+"
    element = domish.Element((NS_TIME, "time"))
    element.addElement("tzo", content=f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}")
    element.addElement("utc", content=now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z")
    return element
