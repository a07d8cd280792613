"""The commands section of `make bench` (`bench/run.py --sections commands`): XEP-0050 sessions.

The component runs as deployed (twistd, a configuration file, a ``[store] url``) with the example
command examples/handlers/reboot.py (two stages: execute, next with the host form, complete with the
confirmation) and bench/command_handlers/stamp.py (one stage: execute, and it is done), on SQLite and
on a private PostgreSQL cluster with fsync on, as the store's section does; ``[access] admins`` names
the domain of the load generator's users, since both commands are for admins.

A command's reply carries the session id that the next step must echo, so the section drives whole
sessions itself (``Driver``): it sends each step as the server would route it from a client, parses
every reply and checks it (status, session id, actions, the form's ``FORM_TYPE``, notes, addresses)
before it sends the next step. ``window`` sessions run at once, each from its own sender
(``user<k>@localhost/r<k>``, as the load generator's population), since a sender holds at most
``[commands] sessions_per_sender`` sessions. In the same configuration, a fresh component each, the
load generator's store-less echo (``custom``) and the store-backed ``store-set`` (one durable write)
give the ratios.

Memory: ``OPEN_SESSIONS`` sessions started and left open, one from each of as many senders, after
those senders have each sent a ping (so that the component's bounded tables per sender are already
full and do not count as the sessions' memory); the component's resident memory and the store's
database are measured apart, and the store also after ``ENDED_SESSIONS`` sessions that ran to the end
(what an ended session leaves behind).
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape, quoteattr

import loadgen
import store
from procstat import ProcessSampler

from private_servers.postgresql import PostgreSQLCluster

HERE = Path(__file__).resolve().parent
NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
NS_COMPONENT = loadgen.NS_COMPONENT
NS_STANZAS = loadgen.NS_STANZAS

CONFIGURATION = {
    "extra_directories": [HERE / "command_handlers"],
    "extra_toml": '[access]\nadmins = ["localhost"]  # every user of the load generator\'s domain\n',
}
"""What ``launch.write_config`` adds for this section (with a ``store_url``, which loads examples/handlers/)."""

TWO_STAGE = "command-two-stage"
ONE_STAGE = "command-one-stage"
STEPS = {TWO_STAGE: ("execute", "next", "complete"), ONE_STAGE: ("execute",)}
NEIGHBOURS = ("custom", "store-set")
"""The load generator's kinds measured beside the commands in the same configuration: no store, one durable write."""
BACKENDS = ("sqlite", "postgresql")
SENDERS = 10_000
OPEN_SESSIONS = 10_000
ENDED_SESSIONS = 1_000
LATENCY_SESSIONS = 1_000
"""Sessions of each window-1 run (and requests of the neighbours' window-1 runs, twice as many)."""
WARM_UP = 200
STALL_SECONDS = 15.0


def sender(number: int) -> str:
    """The full JID of sender ``number``: the load generator's population (loadgen, ``senders``)."""
    return f"user{number}@localhost/r{number}"


def _step(node: str, action: str, session_id: str | None = None, form: str = "") -> str:
    session = f" sessionid={quoteattr(session_id)}" if session_id is not None else ""
    return f"<command xmlns='{NS_COMMANDS}' node='{node}' action='{action}'{session}>{form}</command>"


def _submission(form_type: str, **values: str) -> str:
    fields = "".join(f"<field var='{var}'><value>{escape(value)}</value></field>" for var, value in values.items())
    return (
        f"<x xmlns='{NS_DATA}' type='submit'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{form_type}</value></field>{fields}</x>"
    )


# examples/handlers/reboot.py and bench/command_handlers/stamp.py, as a client submits them.
TARGET = "urn:example:reboot"
CONFIRM = "urn:example:reboot#confirm"
STAMP = "urn:example:bench:stamp"
EXECUTE_REBOOT = _step("reboot", "execute")
EXECUTE_STAMP = _step("stamp", "execute")
TARGET_SUBMITTED = _submission(TARGET, host="web1", delay="0")
CONFIRM_SUBMITTED = _submission(CONFIRM, sure="1")


class Wrong(Exception):
    """A reply that is not what the step should get (or none came): the session is given up."""


class Driver:
    """Sends command steps over the load generator's link and hands each parsed reply to the step waiting for it."""

    def __init__(self, link: loadgen.ComponentLink) -> None:
        self.link = link
        self.jid = link.jid
        self.waiting: dict[str, tuple[asyncio.Future, float]] = {}
        self.replies = 0
        self.stray: list[str] = []
        self.broken: str | None = None
        self.last_reply = time.perf_counter()
        self._numbers = iter(range(1, 1 << 62))
        self._parser = ElementTree.XMLPullParser(events=("start", "end"))
        self._parser.feed(f"<stream:stream xmlns='{NS_COMPONENT}' xmlns:stream='http://etherx.jabber.org/streams'>")
        self._stream: ElementTree.Element | None = None
        self._depth = 0
        link.on_data = self._received

    async def step(self, from_jid: str, payload: str) -> tuple[ElementTree.Element, float]:
        """Send one Iq set from ``from_jid``; its reply and the seconds it took."""
        if self.broken:
            raise Wrong(self.broken)
        stanza_id = f"c{next(self._numbers)}"
        future = asyncio.get_running_loop().create_future()
        self.waiting[stanza_id] = (future, time.perf_counter())
        self.link.transport.write(
            f"<iq type='set' id='{stanza_id}' from='{from_jid}' to='{self.jid}'>{payload}</iq>".encode()
        )
        return await future

    def _received(self, data: bytes, now: float) -> None:
        self._parser.feed(data)
        for event, element in self._parser.read_events():
            if event == "start":
                self._stream = self._stream if self._stream is not None else element
                self._depth += 1
                continue
            self._depth -= 1
            if self._depth != 1:  # not a stanza closing at the top level of the stream
                continue
            self._stream.remove(element)  # the stream's tree would keep every reply
            self.replies += 1
            self.last_reply = now
            waiting = self.waiting.pop(element.get("id") or "", None)
            if waiting is None:
                self.stray.append(f"a reply with an id that was never sent, or twice: {element.get('id')!r}")
                continue
            future, sent = waiting
            future.set_result((element, now - sent))

    async def watch(self) -> None:
        """Give every waiting step up when the component closed the link, or sent nothing for ``STALL_SECONDS``."""
        while not self.broken:
            await asyncio.wait([self.link.lost], timeout=1.0)
            if self.link.lost.done():
                self.broken = "the component closed the connection"
            elif self.waiting and time.perf_counter() - self.last_reply > STALL_SECONDS:
                self.broken = f"stalled: no reply for {STALL_SECONDS:g} s"
        for future, _ in self.waiting.values():
            if not future.done():
                future.set_exception(Wrong(self.broken))
        self.waiting.clear()


# What each reply must be.


def _command(reply: ElementTree.Element, from_jid: str, jid: str, status: str) -> ElementTree.Element:
    if reply.get("type") == "error":
        raise Wrong(f"an error: {_error_text(reply)}")
    if reply.tag != f"{{{NS_COMPONENT}}}iq" or reply.get("type") != "result":
        raise Wrong(f"expected an iq result, not {reply.tag} of type {reply.get('type')!r}")
    if reply.get("to") != from_jid or reply.get("from") != jid:
        raise Wrong("to and from are not the request's, swapped")
    command = reply.find(f"{{{NS_COMMANDS}}}command")
    if command is None or command.get("status") != status:
        raise Wrong(f"expected a command of status {status!r}")
    return command


def _error_text(reply: ElementTree.Element) -> str:
    error = reply.find(f"{{{NS_COMPONENT}}}error")
    if error is None:
        return "no <error/>"
    names = [child.tag.rsplit("}", 1)[-1] for child in error if child.tag.rsplit("}", 1)[-1] != "text"]
    text = error.findtext(f"{{{NS_STANZAS}}}text") or ""
    return f"{error.get('type')} {' '.join(names)} {text!r}"


def _form_type(command: ElementTree.Element, form_kind: str) -> str | None:
    form = command.find(f"{{{NS_DATA}}}x")
    if form is None or form.get("type") != form_kind:
        return None
    for found in form.iter(f"{{{NS_DATA}}}field"):
        if found.get("var") == "FORM_TYPE":
            return found.findtext(f"{{{NS_DATA}}}value")
    return None


def _stage(command: ElementTree.Element, session_id: str | None, default: str, offered: set[str], form: str) -> str:
    """The session id of an ``executing`` reply that offers ``offered`` with ``default`` and the form ``form``."""
    found = command.get("sessionid")
    if not found or (session_id is not None and found != session_id):
        raise Wrong(f"the session id {found!r} is not the session's {session_id!r}")
    actions = command.find(f"{{{NS_COMMANDS}}}actions")
    if actions is None or actions.get("execute") != default:
        raise Wrong(f"expected actions with the default {default!r}")
    if {child.tag.rsplit("}", 1)[-1] for child in actions} != offered:
        raise Wrong(f"expected the actions {sorted(offered)}")
    if _form_type(command, "form") != form:
        raise Wrong(f"expected the form {form}")
    return found


def _note(command: ElementTree.Element, text: str) -> None:
    note = command.find(f"{{{NS_COMMANDS}}}note")
    if note is None or note.text != text or note.get("type") != "info":
        raise Wrong(f"expected the note {text!r}")


# The sessions.


@dataclass
class Run:
    """What one run of sessions measured; latencies by step."""

    kind: str
    window: int = 0
    sessions: int = 0
    completed: int = 0
    steps: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_kib: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    rss_kib_at: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        def percentile(values: list[float], fraction: float) -> float:
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 3) if ordered else 0.0

        return {
            "kind": self.kind,
            "window": self.window,
            "sessions": self.sessions,
            "completed": self.completed,
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "sessions_per_second": round(self.completed / self.seconds, 1) if self.seconds else 0.0,
            "steps_per_second": round(self.steps / self.seconds, 1) if self.seconds else 0.0,
            "cpu_us_per_session": round(self.cpu_seconds / self.completed * 1e6, 1) if self.completed else 0.0,
            "cpu_us_per_step": round(self.cpu_seconds / self.steps * 1e6, 1) if self.steps else 0.0,
            "latency_ms": {
                step: {"p50": percentile(values, 0.50), "p99": percentile(values, 0.99)}
                for step, values in self.latencies.items()
            },
            "peak_rss_mib": round(self.peak_rss_kib / 1024, 1),
            "failures": self.failures[:5],
        }


async def two_stage(driver: Driver, from_jid: str, run: Run) -> None:
    """examples/handlers/reboot.py: execute, next with the host, complete with the confirmation."""
    reply, took = await driver.step(from_jid, EXECUTE_REBOOT)
    session_id = _stage(_command(reply, from_jid, driver.jid, "executing"), None, "next", {"next"}, TARGET)
    run.latencies["execute"].append(took)
    reply, took = await driver.step(from_jid, _step("reboot", "next", session_id, TARGET_SUBMITTED))
    _stage(_command(reply, from_jid, driver.jid, "executing"), session_id, "complete", {"prev", "complete"}, CONFIRM)
    run.latencies["next"].append(took)
    reply, took = await driver.step(from_jid, _step("reboot", "complete", session_id, CONFIRM_SUBMITTED))
    command = _command(reply, from_jid, driver.jid, "completed")
    if command.get("sessionid") != session_id:
        raise Wrong("the completion is not the session's")
    _note(command, "Rebooting web1")
    run.latencies["complete"].append(took)


async def one_stage(driver: Driver, from_jid: str, run: Run) -> None:
    """bench/command_handlers/stamp.py: execute, and it is completed with a result form."""
    reply, took = await driver.step(from_jid, EXECUTE_STAMP)
    command = _command(reply, from_jid, driver.jid, "completed")
    if not command.get("sessionid"):
        raise Wrong("no session id")
    _note(command, "Stamped")
    if _form_type(command, "result") != STAMP:
        raise Wrong(f"expected the result form {STAMP}")
    run.latencies["execute"].append(took)


async def left_open(driver: Driver, from_jid: str, run: Run) -> None:
    """examples/handlers/reboot.py's first step only: a session waiting for its host form."""
    reply, took = await driver.step(from_jid, EXECUTE_REBOOT)
    _stage(_command(reply, from_jid, driver.jid, "executing"), None, "next", {"next"}, TARGET)
    run.latencies["execute"].append(took)


FLOWS: dict[str, Callable[[Driver, str, Run], Awaitable[None]]] = {
    TWO_STAGE: two_stage,
    ONE_STAGE: one_stage,
    "open": left_open,
}


async def sessions(
    driver: Driver,
    kind: str,
    count: int,
    window: int,
    sampler: ProcessSampler | None = None,
    first_sender: int = 0,
    rss_at: tuple[int, ...] = (),
) -> Run:
    """Run ``count`` sessions of ``kind``, ``window`` at a time; session n is sender ``first_sender + n``'s (mod
    ``SENDERS``). With a ``sampler``: the component's CPU over the run, and its resident memory once ``rss_at``
    sessions have completed."""
    flow = FLOWS[kind]
    run = Run(kind, window, latencies={step: [] for step in STEPS.get(kind, ("execute",))})
    numbers: Iterator[int] = iter(range(count))
    watch = asyncio.get_running_loop().create_task(driver.watch())

    async def slot() -> None:
        for number in numbers:
            if driver.broken:
                run.failures.append(driver.broken)
                return
            run.sessions += 1
            try:
                await flow(driver, sender((first_sender + number) % SENDERS), run)
            except Wrong as e:
                run.failures.append(f"session {number}: {e}")
            else:
                run.completed += 1
                if sampler is not None and run.completed in rss_at:
                    run.rss_kib_at[run.completed] = sampler.rss_kib()

    replies_before = driver.replies
    cpu_before = sampler.cpu_seconds() if sampler is not None else 0.0
    start = time.perf_counter()
    try:
        await asyncio.gather(*(slot() for _ in range(min(window, count))))
    finally:
        run.seconds = time.perf_counter() - start
        watch.cancel()
    run.steps = driver.replies - replies_before
    run.failures.extend(driver.stray)
    driver.stray.clear()
    if sampler is not None:
        run.cpu_seconds = sampler.cpu_seconds() - cpu_before
        run.peak_rss_kib = sampler.peak_rss_kib()
    return run


# The smoke run's check (bench/run.py --smoke): every reply of every session.


async def smoke(link: loadgen.ComponentLink, count: int) -> list[dict]:
    """``count`` two-stage and ``count`` one-stage sessions, 16 at a time, every reply checked."""
    driver = Driver(link)
    reports = []
    for kind in (TWO_STAGE, ONE_STAGE):
        run = await sessions(driver, kind, count, 16)
        reports.append({key: run.as_dict()[key] for key in ("kind", "sessions", "completed", "steps", "failures")})
    return reports


# The section.


def _url(backend: str, work: Path, cluster: PostgreSQLCluster) -> str:
    if backend == "sqlite":
        work.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{work / 'store.sqlite3'}"
    return cluster.new_database()


async def measure(with_component: Callable[..., Awaitable], work: Path, url: str, kind: str, count: int, window: int):
    """One fresh component on ``url``: a warm-up, then ``count`` sessions (or requests, for a neighbour) timed."""

    async def body(link, sampler):
        if kind in NEIGHBOURS:
            await loadgen.run(link, kind, min(2_000, count), window)
            return (await loadgen.run(link, kind, count, window, sampler=sampler)).as_dict()
        driver = Driver(link)
        await sessions(driver, kind, min(WARM_UP, count), window, first_sender=SENDERS // 2)
        return (await sessions(driver, kind, count, window, sampler=sampler)).as_dict()

    return await with_component(work, body, store_url=url, **CONFIGURATION)


STORE_ROWS = (
    "SELECT CASE WHEN key LIKE 'session/%' THEN 'session' ELSE 'owner' END, {ended}, count(*), sum({length}(value)) "
    "FROM iqresponder_store WHERE namespace = 'iqresponder/commands' GROUP BY 1, 2"
)
"""The sessions' records (live and ended) and their senders' index entries: rows and bytes of values."""
SQLITE_ENDED = "json_extract(CAST(substr(value, 2) AS TEXT), '$.ended')"
POSTGRESQL_ENDED = "(convert_from(substring(value from 2), 'UTF8')::jsonb ->> 'ended') = 'true'"


def _store_size(url: str) -> dict:
    """The store's database as it stands: bytes in use (SQLite: pages not free; PostgreSQL: the table with its
    indexes and TOAST, dead rows included until a vacuum), and the rows and value bytes of the commands' records."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True) as connection:
            pages, free, size = (
                connection.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("page_count", "freelist_count", "page_size")
            )
            found = connection.execute(STORE_ROWS.format(ended=SQLITE_ENDED, length="length")).fetchall()
            overflow = connection.execute("SELECT count(*) FROM dbstat WHERE pagetype = 'overflow'").fetchone()[0]
        total = {"bytes": (pages - free) * size, "overflow_pages": overflow}
    else:
        import psycopg

        with psycopg.connect(url, connect_timeout=10) as connection:
            sizes = "pg_total_relation_size('{0}'), pg_relation_size('{0}'), pg_indexes_size('{0}')"
            row = connection.execute("SELECT " + sizes.format("iqresponder_store")).fetchone()
            total = dict(zip(("bytes", "heap_bytes", "index_bytes"), row, strict=True))
            found = connection.execute(STORE_ROWS.format(ended=POSTGRESQL_ENDED, length="octet_length")).fetchall()
    total["records"] = {
        f"{kind}{'' if kind == 'owner' else (' ended' if ended else ' live')}": {"rows": n, "value_bytes": int(b)}
        for kind, ended, n, b in found
    }
    return total


async def open_sessions(with_component: Callable[..., Awaitable], work: Path, url: str, window: int) -> dict:
    """``OPEN_SESSIONS`` sessions started and left open, one per sender: the component's and the store's growth.

    Before them, ``ENDED_SESSIONS`` two-stage sessions run to completion: what an ended session leaves in the
    store (its record, kept as a tombstone for twice ``[commands] session_timeout``).
    """

    async def body(link, sampler):
        await loadgen.run(link, "ping", SENDERS, window, senders=SENDERS)  # every sender known to the component
        driver = Driver(link)
        first = await sessions(driver, ONE_STAGE, 1, 1)  # the store's file and table exist from here on
        empty = _store_size(url)
        ended = await sessions(driver, TWO_STAGE, ENDED_SESSIONS, window)
        rss_before, before = sampler.rss_kib(), _store_size(url)
        quarters = tuple(OPEN_SESSIONS * n // 4 for n in range(1, 5))
        run = await sessions(driver, "open", OPEN_SESSIONS, window, sampler, rss_at=quarters)
        rss_after, after = sampler.rss_kib(), _store_size(url)
        opened = run.completed
        return {
            "open_sessions": opened,
            "senders": SENDERS,
            "failures": [*first.failures, *ended.failures, *run.failures][:5],
            "started_per_second": round(opened / run.seconds, 1),
            "rss_kib_before": rss_before,
            "rss_kib_after": rss_after,
            "rss_kib_at": run.rss_kib_at,
            "rss_bytes_per_open_session": round((rss_after - rss_before) * 1024 / opened, 1) if opened else None,
            "store_empty": empty,
            "store_before": before,
            "store_after": after,
            "store_bytes_per_open_session": round((after["bytes"] - before["bytes"]) / opened, 1) if opened else None,
            "ended_sessions": ended.completed,
            "store_bytes_per_ended_session": round((before["bytes"] - empty["bytes"]) / ended.completed, 1)
            if ended.completed
            else None,
        }

    return await with_component(work, body, store_url=url, **CONFIGURATION)


def _median(reports: list[dict]) -> dict:
    """The median of each figure of command runs (latencies step by step)."""
    median = dict(reports[0])
    for key in ("seconds", "sessions_per_second", "steps_per_second", "cpu_us_per_session", "cpu_us_per_step"):
        median[key] = statistics.median(report[key] for report in reports)
    median["latency_ms"] = {
        step: {q: statistics.median(r["latency_ms"][step][q] for r in reports) for q in ("p50", "p99")}
        for step in reports[0]["latency_ms"]
    }
    median["completed"] = min(report["completed"] for report in reports)
    median["failures"] = [failure for report in reports for failure in report["failures"]][:5]
    return median


def _ratios(medians: dict[str, dict]) -> dict[str, dict]:
    """Each command against the store-less echo (and a step against one durable store-set), same configuration."""
    echo, write = medians["custom"], medians["store-set"]
    return {
        kind: {
            "sessions_per_second_vs_echo_rps": round(medians[kind]["sessions_per_second"] / echo["rps"], 4),
            "steps_per_second_vs_echo_rps": round(medians[kind]["steps_per_second"] / echo["rps"], 4),
            "cpu_per_session_vs_echo_reply": round(medians[kind]["cpu_us_per_session"] / echo["cpu_us_per_request"], 1),
            "cpu_per_step_vs_echo_reply": round(medians[kind]["cpu_us_per_step"] / echo["cpu_us_per_request"], 1),
            "cpu_per_step_vs_store_set": round(medians[kind]["cpu_us_per_step"] / write["cpu_us_per_request"], 2),
        }
        for kind in (TWO_STAGE, ONE_STAGE)
    }


async def section(
    args: Any, work: Callable[[], Path], with_component: Callable[..., Awaitable], median: Callable[[list], dict]
) -> dict:
    """The section's JSON: per backend, medians of ``args.reps`` interleaved repetitions, ratios, and memory."""
    cluster = PostgreSQLCluster(fsync=True)
    cluster.start()
    try:
        windows = (args.window, 1)
        kinds = (*NEIGHBOURS, TWO_STAGE, ONE_STAGE)
        runs = {(b, w, k): [] for b in BACKENDS for w in windows for k in kinds}
        for _ in range(args.reps):
            for (backend, window, kind), reports in runs.items():
                if kind in NEIGHBOURS:
                    count = (
                        2 * LATENCY_SESSIONS
                        if window == 1
                        else (args.requests if kind == "custom" else args.store_requests)
                    )
                else:
                    count = LATENCY_SESSIONS if window == 1 else args.command_sessions
                place = work()
                report = await measure(with_component, place, _url(backend, place, cluster), kind, count, window)
                reports.append(report)
                rate = f"{report['rps']} rps" if kind in NEIGHBOURS else f"{report['sessions_per_second']} sessions/s"
                print(f"  {backend} {kind} window {window}: {rate}", file=sys.stderr)
        out: dict[str, Any] = {
            "window": args.window,
            "sessions": args.command_sessions,
            "sessions_at_window_1": LATENCY_SESSIONS,
            "postgresql_settings": store._durability(cluster),
        }
        for backend in BACKENDS:
            medians = {
                w: {k: (median if k in NEIGHBOURS else _median)(runs[backend, w, k]) for k in kinds} for w in windows
            }
            place = work()
            memory = await open_sessions(with_component, place, _url(backend, place, cluster), args.window)
            print(
                f"  {backend} {OPEN_SESSIONS} open sessions: {memory['rss_bytes_per_open_session']} B of RSS, "
                f"{memory['store_bytes_per_open_session']} B in the store each",
                file=sys.stderr,
            )
            out[backend] = {
                "ratios": _ratios(medians[args.window]),
                **{f"window_{w}": medians[w] for w in windows},
                "open_sessions": memory,
            }
        return out
    finally:
        cluster.remove()
