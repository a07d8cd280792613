"""The server side of XEP-0114, as a load generator for one component process.

It listens on 127.0.0.1, accepts the component's stream, checks its handshake,
then sends Iq requests (gets, and sets for the store's kinds) and times the replies. Two ways to load it:

- closed loop (``window``): at most ``window`` requests outstanding, a new one
  sent for each reply, for throughput and CPU per request;
- open loop (``rate``): requests sent at a fixed rate whatever comes back,
  for the latency a component shows below its maximum rate.

Timing mode reads replies with a regular expression (ids and types only);
``check`` mode parses every reply and checks id, addresses, type and payload.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.etree import ElementTree

from procstat import ProcessSampler

CLIENT = "alice@localhost/bench"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_COMPONENT = "jabber:component:accept"

HANDSHAKE = re.compile(rb"<handshake>([0-9a-f]*)</handshake>")
IQ_TAG = re.compile(rb"<iq\s[^>]*>")
ID = re.compile(rb"""\sid=['"]b(\d+)['"]""")
ERROR_TYPE = re.compile(rb"""\stype=['"]error['"]""")


@dataclass(frozen=True)
class Kind:
    """One kind of request: its payload, what a correct reply holds, and its Iq type.

    A payload with ``%d`` in it has ``numbers``: what fills them in request n.
    """

    payload: str
    check: Callable[[ElementTree.Element], str | None]
    type: str = "get"
    numbers: Callable[[int], tuple[int, ...]] | None = None


def _result_with(tag: str) -> Callable[[ElementTree.Element], str | None]:
    def check(reply):
        if reply.get("type") != "result":
            return "expected a result"
        return None if reply.find(tag) is not None else f"no {tag} in the result"

    return check


def _disco_info(reply):
    query = reply.find("{http://jabber.org/protocol/disco#info}query")
    if reply.get("type") != "result" or query is None:
        return "expected a disco#info result"
    features = {f.get("var") for f in query.findall("{http://jabber.org/protocol/disco#info}feature")}
    if query.find("{http://jabber.org/protocol/disco#info}identity") is None:
        return "no identity"
    return None if "http://jabber.org/protocol/disco#info" in features else "disco#info is not a feature"


def _empty_result(reply):
    return None if reply.get("type") == "result" and len(reply) == 0 else "expected an empty result"


def _echo(reply):
    echo = reply.find("{urn:example:echo}echo")
    if reply.get("type") != "result" or echo is None or echo.text != "payload-0123456789abcdef":
        return "expected the echo payload back"
    return None


def _built(namespace: str) -> Callable[[ElementTree.Element], str | None]:
    def check(reply):
        built = reply.find(f"{{{namespace}}}built")
        if reply.get("type") != "result" or built is None or built.get("n") != "8" or built.text != "payload-0123":
            return "expected <built n='8'>payload-0123</built>"
        return None

    return check


KEYS = 256
"""Keys of the store kinds: more than a window's worth, so concurrent requests write different keys, and few
enough that a few hundred sets write every one (a store-get run reads keys a store-set run wrote)."""
STORED_VALUE = "value-%d"
"""What store-set request n stores: a new value each time, since SQLite skips writing a row that does not change."""
STORED = re.compile(STORED_VALUE.replace("%d", r"\d+"))


def _key(n: int) -> tuple[int, ...]:
    return (n % KEYS,)


def _key_and_value(n: int) -> tuple[int, ...]:
    return (n % KEYS, n)


def _stored_item(reply):
    item = reply.find("{custom-xep}query/{custom-xep}item")
    if reply.get("type") != "result" or item is None or not STORED.fullmatch(item.text or ""):
        return "expected an item a store-set wrote, back from the store"
    return None


def _counted(reply):
    counted = reply.find("{custom-xep}count")
    if reply.get("type") != "result" or counted is None or not counted.get("value", "").isdigit():
        return "expected <count value='N'/>"
    return None


def _unavailable(reply):
    error = reply.find(f"{{{NS_COMPONENT}}}error")
    if reply.get("type") != "error" or error is None:
        return "expected an error"
    if error.find(f"{{{NS_STANZAS}}}service-unavailable") is None:
        return "expected service-unavailable"
    return None


KINDS = {
    "disco-info": Kind("<query xmlns='http://jabber.org/protocol/disco#info'/>", _disco_info),
    "ping": Kind("<ping xmlns='urn:xmpp:ping'/>", _empty_result),
    "version": Kind(
        "<query xmlns='jabber:iq:version'/>", _result_with("{jabber:iq:version}query/{jabber:iq:version}name")
    ),
    "custom": Kind("<echo xmlns='urn:example:echo'>payload-0123456789abcdef</echo>", _echo),
    "unknown": Kind("<query xmlns='urn:example:unknown'/>", _unavailable),
    # The same custom responder with raw domish and with payload classes (bench/handlers/build.py).
    "build-raw": Kind(
        "<build xmlns='urn:example:build-raw' n='7'>payload-0123</build>", _built("urn:example:build-raw")
    ),
    "build-typed": Kind(
        "<build xmlns='urn:example:build-typed' n='7'>payload-0123</build>", _built("urn:example:build-typed")
    ),
    # examples/handlers/custom_xep.py with a [store]: set, get and a compare-and-set counter, one of KEYS keys each.
    "store-set": Kind(
        f"<query xmlns='custom-xep'><item key='k%d'>{STORED_VALUE}</item></query>", _empty_result, "set", _key_and_value
    ),
    "store-get": Kind("<query xmlns='custom-xep'><item key='k%d'/></query>", _stored_item, "get", _key),
    "store-count": Kind("<count xmlns='custom-xep' key='c%d'/>", _counted, "set", _key),
}


@dataclass
class Report:
    """What one run measured."""

    kind: str
    requests: int = 0
    replies: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    component_cpu_seconds: float = 0.0
    peak_rss_kib: int = 0
    rss_samples: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.replies / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return self.component_cpu_seconds / self.replies * 1e6 if self.replies else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "requests": self.requests,
            "replies": self.replies,
            "errors": self.errors,
            "rps": round(self.rps),
            "cpu_us_per_request": round(self.cpu_us_per_request, 2),
            "p50_ms": round(self.percentile(0.50), 3),
            "p99_ms": round(self.percentile(0.99), 3),
            "max_ms": round(max(self.latencies) * 1000, 3) if self.latencies else 0.0,
            "peak_rss_mib": round(self.peak_rss_kib / 1024, 1),
            "rss_mib_at": {n: round(kib / 1024, 1) for n, kib in self.rss_samples.items()},
            "failures": self.failures[:5],
        }


class ComponentLink(asyncio.Protocol):
    """The accepted component connection: handshake first, then Iq traffic."""

    def __init__(self, secret: str, jid: str, connected: asyncio.Future) -> None:
        self.secret = secret
        self.jid = jid
        self.connected = connected
        self.stream_id = "bench-" + hashlib.sha1(str(time.time()).encode()).hexdigest()[:12]
        self.buffer = b""
        self.authenticated = False
        self.on_data: Callable[[bytes, float], None] = lambda data, now: None
        self.next_id = 0
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.authenticated:
            self.on_data(data, time.perf_counter())
            return
        self.buffer += data
        if b"<stream:stream" in self.buffer and b">" in self.buffer and not getattr(self, "header_sent", False):
            self.header_sent = True
            self.transport.write(
                (
                    "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                    f"xmlns:stream='http://etherx.jabber.org/streams' from='{self.jid}' id='{self.stream_id}'>"
                ).encode()
            )
        match = HANDSHAKE.search(self.buffer)
        if match:
            expected = hashlib.sha1((self.stream_id + self.secret).encode()).hexdigest()
            if match.group(1).decode() != expected:
                self.transport.write(b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
                self.transport.close()
                self.connected.set_exception(RuntimeError("the component's handshake digest is wrong"))
                return
            self.transport.write(b"<handshake/>")
            self.authenticated = True
            self.connected.set_result(self)

    def connection_lost(self, exc) -> None:
        if not self.connected.done():
            self.connected.set_exception(RuntimeError("the component closed the connection before the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)

    def request_template(self, payload: str, senders: int = 1, type: str = "get") -> str:
        """A request as the server would route it from a client, with ``%d`` for the id number.

        With several ``senders``, two more ``%d`` for the sender's number: request n comes
        from ``user<k>@localhost/r<k>``, k = n mod senders, as ../shared/bench does.
        """
        sender = CLIENT if senders <= 1 else "user%d@localhost/r%d"
        return f"<iq type='{type}' id='b%d' from='{sender}' to='{self.jid}'>{payload}</iq>"

    def close_stream(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(b"</stream:stream>")
            self.transport.close()


class ReplyChecker:
    """Parses every reply of a check run and checks it against its request."""

    def __init__(self, kind: Kind, jid: str, report: Report) -> None:
        self.kind, self.jid, self.report = kind, jid, report
        self.parser = ElementTree.XMLPullParser(events=("start", "end"))
        self.parser.feed(
            "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>"
        )
        self.depth = 0

    def feed(self, data: bytes) -> list[str]:
        """The ids of the replies completed by ``data``; records what is wrong with each."""
        self.parser.feed(data)
        done = []
        for event, element in self.parser.read_events():
            if event == "start":
                self.depth += 1
                continue
            self.depth -= 1
            if self.depth != 1:  # not a stanza closing at the top level of the stream
                continue
            problem = self.problem(element)
            if problem:
                self.report.failures.append(f"{element.get('id')}: {problem}")
            reply_id = element.get("id") or ""
            if reply_id.startswith("b") and reply_id[1:].isdigit():
                done.append(reply_id[1:])
            else:
                self.report.failures.append(f"a reply with an id that was never sent: {reply_id!r}")
        return done

    def problem(self, reply: ElementTree.Element) -> str | None:
        if reply.tag != f"{{{NS_COMPONENT}}}iq":
            return f"not an iq: {reply.tag}"
        if reply.get("to") != CLIENT or reply.get("from") != self.jid:
            return "to and from are not the request's, swapped"
        return self.kind.check(reply)


async def run(
    link: ComponentLink,
    kind_name: str,
    requests: int,
    window: int = 64,
    rate: float | None = None,
    check: bool = False,
    sampler: ProcessSampler | None = None,
    rss_at: tuple[int, ...] = (),
    stall_seconds: float = 10.0,
    senders: int = 1,
) -> Report:
    """Send ``requests`` requests over ``link`` and time their replies.

    Ids are ``b<n>`` and keep counting up across runs on one link, so a late
    reply to an earlier run is reported, not mistaken for a new one.
    """
    kind = KINDS[kind_name]
    report = Report(kind_name)
    template = link.request_template(kind.payload, senders, kind.type)
    first_id = link.next_id
    total = requests
    sent_at: dict[int, float] = {}
    next_id = first_id
    finished = asyncio.get_running_loop().create_future()
    checker = ReplyChecker(kind, link.jid, report) if check else None

    def send(count: int, now: float) -> None:
        nonlocal next_id
        count = min(count, first_id + total - next_id)
        if count <= 0:
            return
        if senders <= 1 and kind.numbers is None:
            link.transport.write("".join(template % (next_id + i) for i in range(count)).encode())
        else:
            numbers = [_numbers(n, senders, kind.numbers) for n in range(next_id, next_id + count)]
            link.transport.write("".join(template % number for number in numbers).encode())
        for i in range(count):
            sent_at[next_id + i] = now
        next_id += count

    pending = b""

    def on_data(data: bytes, now: float) -> None:
        nonlocal pending
        if checker is not None:
            ids = checker.feed(data)
            errors = 0
        else:
            data, pending = _split_partial_tag(pending + data)
            tags = IQ_TAG.findall(data) if b"<iq" in data else []
            ids = [m.group(1) for m in (ID.search(tag) for tag in tags) if m]
            errors = sum(1 for tag in tags if ERROR_TYPE.search(tag))
        replied = 0
        for raw in ids:
            index = int(raw)
            started = sent_at.pop(index, None)
            if started is None:
                report.failures.append(f"reply to an unknown id b{index}")
                continue
            replied += 1
            report.replies += 1
            report.latencies.append(now - started)
            if sampler is not None and report.replies in rss_at:
                report.rss_samples[report.replies] = sampler.rss_kib()
        report.errors += errors
        if rate is None:
            send(replied, now)
        if report.replies >= requests and not finished.done():
            finished.set_result(now)

    link.on_data = on_data
    cpu_before = sampler.cpu_seconds() if sampler is not None else 0.0
    start = time.perf_counter()
    if rate is None:
        send(window, start)
    else:
        asyncio.get_running_loop().create_task(_paced(send, rate, total, finished))

    last_progress, last_count = time.perf_counter(), -1
    while not finished.done():
        await asyncio.wait([finished, link.lost], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        if link.lost.done() and not finished.done():
            report.failures.append("the component closed the connection")
            break
        if report.replies != last_count:
            last_progress, last_count = time.perf_counter(), report.replies
        elif time.perf_counter() - last_progress > stall_seconds:
            report.failures.append(f"stalled: no reply for {stall_seconds} s")
            break
    end = finished.result() if finished.done() else time.perf_counter()
    link.next_id = next_id
    report.requests = next_id - first_id
    report.seconds = end - start
    if sampler is not None:
        report.component_cpu_seconds = sampler.cpu_seconds() - cpu_before
        report.peak_rss_kib = sampler.peak_rss_kib()
    return report


def _numbers(n: int, senders: int, payload: Callable[[int], tuple[int, ...]] | None) -> tuple[int, ...]:
    """What fills request n's template: its id, its sender's number twice (several senders), its payload's numbers."""
    return (n,) + ((n % senders, n % senders) if senders > 1 else ()) + (payload(n) if payload else ())


def _split_partial_tag(data: bytes) -> tuple[bytes, bytes]:
    """Split off an ``<iq ...>`` start tag that the read cut in two, to be completed by the next read."""
    cut = data.rfind(b"<")
    if cut != -1 and data.find(b">", cut) == -1:
        return data[:cut], data[cut:]
    return data, b""


async def _paced(send: Callable[[int, float], None], rate: float, total: int, finished: asyncio.Future) -> None:
    """Open loop: keep the sent count on schedule, in 1 ms steps."""
    start = time.perf_counter()
    sent = 0
    while sent < total and not finished.done():
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1)
        if due > sent:
            send(due - sent, now)
            sent = due
        await asyncio.sleep(0.001)


async def listen(secret: str, jid: str) -> tuple[asyncio.AbstractServer, int, asyncio.Future]:
    """Listen on 127.0.0.1; return the server, its port and a future of the authenticated link."""
    loop = asyncio.get_running_loop()
    connected: asyncio.Future = loop.create_future()
    server = await loop.create_server(lambda: ComponentLink(secret, jid, connected), "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connected
