"""XEP-0202 Entity Time: the component's UTC time and its local offset."""

from datetime import UTC, datetime, timedelta

from component import Payload, Request, child_text, responder

NS_TIME = "urn:xmpp:time"


class Time(Payload, namespace=NS_TIME, element="time"):
    tzo: str | None = child_text(default=None)  # the local offset, as +hh:mm or -hh:mm
    utc: datetime | None = child_text(default=None)


@responder(Time, "get")
def entity_time(request: Request) -> Time:
    now = datetime.now(UTC)
    offset = now.astimezone().utcoffset() or timedelta()  # an aware datetime's: never None
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return Time(tzo=f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}", utc=now)
