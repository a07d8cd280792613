"""Ad-hoc commands (XEP-0050): declared in handler modules, run in sessions kept in the store.

A module declares a command with ``@command(node, name)`` on a class, whose
``start(session)`` method begins it and whose other methods each take the form
of one stage (found by the form class in their annotation), or on an async
function (a one-stage command, or more with ``@that_function.stage``). A stage
returns the next form (``Next`` is implied; ``Last(form)`` offers completion
instead), or ``Done(...)`` with notes and a result form.

Sessions are records in the component's store (component/store.py), so any
instance sharing it continues any session; each is bound to the full JID that
started it, expires after ``[commands] session_timeout`` seconds idle, and a
sender (bare JID) holds at most ``[commands] sessions_per_sender``: a new one
ends the oldest, since clients rarely cancel a window they close. A finished
or expired session leaves a tombstone for as long again, so that its id is
answered ``session-expired`` rather than ``bad-sessionid``.

Errors are XEP-0050's (section 4.4): an unknown action is ``malformed-action``;
an action the stage does not offer, ``bad-action``; an unknown id, or another
sender's, or another node's, ``bad-sessionid`` (the three alike, so ids cannot
be probed); a form that is missing or fails validation, ``bad-payload`` with a
text naming the field, and the session stays at its stage for a corrected
submission.
"""

from __future__ import annotations

import builtins
import copy
import hashlib
import inspect
import secrets
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from twisted.internet.interfaces import IReactorTime
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish

from component.dataforms import NS_DATA, Form, FormError
from component.discovery import DiscoInfo, Discovery, Identity, Item
from component.errors import StanzaError
from component.interfaces import IComponent, IStore
from component.request import Request
from component.serializer import to_xml

NS_COMMANDS = "http://jabber.org/protocol/commands"
SESSIONS = "iqresponder/commands"
"""The store namespace of sessions: a name no handler module can have (a file name has no '/')."""
ACTIONS = ("execute", "next", "prev", "complete", "cancel")
STAGE_ACTIONS = ("prev", "next", "complete")
NOTE_TYPES = ("info", "warn", "error")
_MARK = "_iqresponder_command"
_Declared = TypeVar("_Declared")


def commands_error(condition: str, application: str, text: str | None = None) -> StanzaError:
    """An XEP-0050 error: an RFC 6120 condition with XEP-0050's application-specific condition."""
    return StanzaError(condition, text=text, application=domish.Element((NS_COMMANDS, application)))


@dataclass(frozen=True)
class Note:
    """A note shown with a stage or the end: ``type`` is ``info``, ``warn`` or ``error``."""

    text: str
    type: str = "info"

    def __post_init__(self) -> None:
        if self.type not in NOTE_TYPES:
            raise ValueError(f"a note's type is one of {', '.join(NOTE_TYPES)}, not {self.type!r}")


@dataclass(frozen=True)
class Last:
    """A stage's form that is the last one: the asker completes the command with it (no ``next``)."""

    form: Form
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True, init=False)
class Done:
    """The command's end: notes (text, or ``Note``) and an optional result form."""

    notes: tuple[Note, ...]
    form: Form | None = None

    def __init__(self, *notes: str | Note, form: Form | None = None) -> None:
        object.__setattr__(self, "notes", tuple(note if isinstance(note, Note) else Note(note) for note in notes))
        object.__setattr__(self, "form", form)


class Session:
    """One run of a command, as its stages see it.

    ``data`` is a dict the stages share: kept in the store between stages, so
    it holds JSON data only. ``sender`` is the full JID that started the run;
    ``component`` is the command's module's face (its ``store``, ``query``, ...).
    """

    __slots__ = ("component", "data", "id", "node", "sender")

    def __init__(self, id: str, node: str, sender: JID, data: dict[str, Any], component: IComponent) -> None:
        self.id = id
        self.node = node
        self.sender = sender
        self.data = data
        self.component = component

    def __repr__(self) -> str:
        return f"<command session {self.node!r} of {self.sender.full()}>"


ACCESS_LEVELS = ("everyone", "local", "admins")


@dataclass
class Command:
    """A declared command: its node and name, who may run it, its first stage, and its stages by form class."""

    node: str
    name: str
    access: str | Callable[[JID], bool]
    start: Callable[..., Any]
    stages: dict[str, tuple[type[Form], Callable[..., Any]]] = field(default_factory=dict)
    origin: str = ""
    component: Any = None  # the module's face (an IComponent), once the registry collected the command
    owner: Any = None  # the class of a class command: each run gets a new instance

    def stage(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Decorator: ``function(session, form: SomeForm)`` is the stage that takes ``SomeForm``."""
        self._add_stage(function)
        return function

    def _add_stage(self, function: Callable[..., Any]) -> None:
        form_class = _form_parameter(function)
        name = form_class.__name__
        if name in self.stages:
            raise ValueError(f"command {self.node!r}: two stages take the form {name}")
        self.stages[name] = (form_class, function)


def _form_parameter(function: Callable[..., Any]) -> type[Form]:
    """The form class the stage ``function`` takes: its last parameter's annotation."""
    try:
        hints = typing.get_type_hints(function)
    except Exception as e:  # noqa: BLE001 - an unresolvable annotation is a declaration error, worded below
        raise ValueError(f"{function.__qualname__}: its annotations cannot be read: {e}") from None
    parameters = [name for name in inspect.signature(function).parameters if name != "self"]
    annotation = hints.get(parameters[-1]) if len(parameters) == 2 else None
    if not (isinstance(annotation, builtins.type) and issubclass(annotation, Form)):
        raise TypeError(f"{function.__qualname__}: a stage takes (session, form: SomeForm), the form class annotated")
    return annotation


def command(
    node: str, name: str, *, access: str | Callable[[JID], bool] = "admins"
) -> Callable[[_Declared], _Declared]:
    """Declare an ad-hoc command with ``node`` (its id) and ``name`` (shown in clients).

    ``access``: ``"admins"`` (the default: ``[access] admins`` only),
    ``"local"`` (users of the server's own domain, and admins), ``"everyone"``,
    or a function of the sender's JID; ``[access.commands]`` in the
    configuration overrides it. On a class: ``start(self, session)`` begins a
    run, and each method ``(self, session, form: SomeForm)`` is the stage that
    takes ``SomeForm``. On an async function ``(session)``: the first stage;
    more with ``@function.stage``.
    """
    if not isinstance(node, str) or not node or any(c.isspace() for c in node):
        raise ValueError(f"a command's node is a non-empty string without spaces, not {node!r}")
    if not callable(access) and access not in ACCESS_LEVELS:
        raise ValueError(f"access is one of {', '.join(ACCESS_LEVELS)} or a function of a JID, not {access!r}")

    def mark(target: Any) -> Any:
        if isinstance(target, builtins.type):
            start = getattr(target, "start", None)
            if start is None:
                raise ValueError(f"command class {target.__qualname__} needs a start(self, session) method")
            declared = Command(node, name, access, start, owner=target)
            for attribute, value in vars(target).items():
                if attribute != "start" and inspect.isfunction(value) and not attribute.startswith("_"):
                    declared._add_stage(value)
        elif callable(target):
            declared = Command(node, name, access, target)
            target.stage = declared.stage
        else:
            raise TypeError(f"@command marks a class or a function, not {target!r}")
        setattr(target, _MARK, declared)
        return target

    return mark


def declared_commands(module: Any) -> list[Command]:
    """The commands declared in ``module`` itself (not those it imports)."""
    found = []
    for value in vars(module).values():
        declared = getattr(value, _MARK, None)
        mine = getattr(value, "__module__", None) == module.__name__
        if isinstance(declared, Command) and mine and declared not in found:
            found.append(declared)
    return found


def _bare_key(full_jid: str) -> str:
    """A fixed-size key for the bare JID of a prepared full JID (a JID may be longer than a store key).

    A bare JID is everything before the first '/': neither a localpart nor a domain contains one.
    """
    return hashlib.sha256(full_jid.partition("/")[0].encode("utf-8")).hexdigest()[:32]


class CommandAccess:
    """Who may list and run each command: its declaration, or ``[access.commands]``, and ``[access] admins``."""

    def __init__(self, admins: Iterable[str], overrides: Mapping[str, tuple[str, ...]], server_domain: str) -> None:
        self.admins = frozenset(admins)
        self.overrides = overrides
        self.server_domain = server_domain

    def is_admin(self, jid: JID) -> bool:
        return jid.full() in self.admins or jid.userhost() in self.admins or jid.host in self.admins

    def allows(self, declared: Command, jid: JID | None) -> bool:
        if jid is None:
            return False
        rules: Iterable[Any] = self.overrides.get(declared.node, (declared.access,))
        return any(self._matches(rule, jid) for rule in rules)

    def _matches(self, rule: Any, jid: JID) -> bool:
        if callable(rule):
            return bool(rule(jid))
        if rule == "everyone":
            return True
        if rule == "admins":
            return self.is_admin(jid)
        if rule == "local":
            return jid.host == self.server_domain or self.is_admin(jid)
        return rule in (jid.full(), jid.userhost(), jid.host)


class CommandServer:
    """Runs the declared commands: the responder for ``<command/>`` sets, and their disco answers."""

    def __init__(
        self,
        commands: Iterable[Command],
        store: IStore,
        access: CommandAccess,
        clock: IReactorTime,
        session_timeout: float = 600.0,
        sessions_per_sender: int = 10,
        new_id: Callable[[], str] = lambda: secrets.token_urlsafe(18),
    ) -> None:
        self.commands = {declared.node: declared for declared in commands}
        self.store = store
        self.access = access
        self.clock = clock
        self.session_timeout = session_timeout
        self.sessions_per_sender = sessions_per_sender
        self.new_id = new_id

    # Discovery: exactly the commands the asker may run.

    def items(self, request: Request) -> list[Item]:
        me = request.recipient.full() if request.recipient is not None else ""
        return [
            Item(me, declared.node, declared.name)
            for declared in self.commands.values()
            if self.access.allows(declared, request.sender)
        ]

    def info(self, request: Request) -> DiscoInfo:
        node = request.payload.node
        declared = self.commands.get(node)
        if declared is None:
            raise StanzaError("item-not-found", text=f"No node {node!r} here")
        if not self.access.allows(declared, request.sender):
            raise StanzaError("forbidden", text="You may not run this command")  # XEP-0050 section 2.2
        return DiscoInfo((Identity("automation", "command-node", declared.name),), (NS_COMMANDS, NS_DATA))

    def list_info(self, request: Request) -> DiscoInfo:
        return DiscoInfo((Identity("automation", "command-list", "Commands"),), ())

    def publish(self, disco: Discovery) -> None:
        disco.provide(info=self.list_info, items=self.items, node=NS_COMMANDS)
        for node in self.commands:
            disco.provide(info=self.info, items=lambda request: [], node=node)

    # Running.

    async def answer(self, request: Request) -> domish.Element:
        """The responder for ``<command xmlns='http://jabber.org/protocol/commands'/>`` sets."""
        element = request.element
        node = element.getAttribute("node")
        action = element.getAttribute("action") or "execute"
        session_id = element.getAttribute("sessionid")
        if action not in ACTIONS:
            raise commands_error("bad-request", "malformed-action", f"No action {action!r}")
        declared = self.commands.get(node) if node else None
        if declared is None:
            raise StanzaError("item-not-found", text=f"No command {node!r} here")
        sender = request.sender
        if sender is None or not self.access.allows(declared, sender):
            raise StanzaError("forbidden", text="You may not run this command")
        if session_id is None:
            if action == "cancel":
                raise commands_error("bad-request", "bad-sessionid", "No session to cancel")
            if action != "execute":
                raise commands_error("bad-request", "bad-action", f"{action!r} needs a session")
            return await self._start(declared, sender)
        record = await self._record(session_id, declared, sender)
        data = copy.deepcopy(record["data"])  # the record stays as read: compare-and-set compares against it
        session = Session(session_id, declared.node, sender, data, declared.component)
        if action == "cancel":
            await self._end(session_id, record)
            return self._reply(node, session_id, "canceled")
        if action == "prev":
            return await self._back(declared, session, record)
        if action == "execute":
            action = record["default"]
        if action not in record["actions"]:
            raise commands_error("bad-request", "bad-action", f"This stage does not offer {action!r}")
        if record["awaiting"] not in declared.stages:  # a reload since removed the stage this session was at
            raise commands_error("not-allowed", "session-expired", "This command has changed; start it again")
        form_class, stage = declared.stages[record["awaiting"]]
        form = self._submitted(element, form_class)
        result = await self._call(declared, stage, session, form)
        return await self._advance(declared, session, record, result)

    async def _start(self, declared: Command, sender: JID) -> domish.Element:
        await self._make_room(sender)
        session = Session(self.new_id(), declared.node, sender, {}, declared.component)
        result = await self._call(declared, declared.start, session)
        return await self._advance(declared, session, None, result)

    async def _record(self, session_id: str, declared: Command, sender: JID) -> dict[str, Any]:
        """The session's record, if it is this sender's on this node and still live; else the error that says not."""
        if not session_id or len(session_id) > 64:
            raise commands_error("bad-request", "bad-sessionid", "No such session")
        record: dict[str, Any] | None = await self.store.get(f"session/{session_id}")
        if record is None or record["owner"] != sender.full() or record["node"] != declared.node:
            raise commands_error("bad-request", "bad-sessionid", "No such session")
        if record["ended"] or self.clock.seconds() - record["touched"] > self.session_timeout:
            raise commands_error("not-allowed", "session-expired", "This session has ended")
        return record

    def _submitted(self, element: domish.Element, form_class: type[Form]) -> Form:
        x = next(element.elements(NS_DATA, "x"), None)
        if x is None:
            raise commands_error("bad-request", "bad-payload", "This stage needs its form submitted")
        if x.getAttribute("type", "submit") == "result":
            raise commands_error("bad-request", "bad-payload", "A result form is no submission")
        try:
            return form_class.parse(x)
        except FormError as e:
            raise commands_error("bad-request", "bad-payload", str(e)) from None

    async def _call(self, declared: Command, stage: Callable[..., Any], session: Session, *form: Form) -> Any:
        target = stage if declared.owner is None else stage.__get__(declared.owner())
        result = target(session, *form)
        return (await result) if inspect.isawaitable(result) else result

    async def _advance(
        self, declared: Command, session: Session, record: dict[str, Any] | None, result: Any
    ) -> domish.Element:
        """Keep the session's new state, and answer with the stage ``result`` asks for."""
        now = self.clock.seconds()
        if isinstance(result, Done):
            state = self._state(declared, session, record, now, ended=True)
            await self._write(session.id, record, state, ended=True)
            reply = self._reply(declared.node, session.id, "completed", result.notes)
            if result.form is not None:
                reply.addChild(result.form.to_element("result"))
            return reply
        last = isinstance(result, Last)
        form, notes = (result.form, result.notes) if last else (result, ())
        if not isinstance(form, Form):
            raise TypeError(f"command {declared.node!r}: a stage returns a Form, Last(form) or Done(...), not {form!r}")
        awaiting = type(form).__name__
        if awaiting not in declared.stages:
            raise TypeError(f"command {declared.node!r}: no stage takes the form {awaiting} that a stage returned")
        sent = to_xml(form.to_element("form"))
        history = list(record["history"]) if record else []
        if record is not None:
            history.append({key: record[key] for key in ("awaiting", "actions", "default", "sent")})
        actions = (["prev"] if history else []) + (["complete"] if last else ["next"])
        state = self._state(declared, session, record, now, ended=False)
        state.update(awaiting=awaiting, actions=actions, default=actions[-1], sent=sent, history=history)
        await self._write(session.id, record, state, ended=False)
        return self._executing(declared.node, session.id, state, notes)

    async def _back(self, declared: Command, session: Session, record: dict[str, Any]) -> domish.Element:
        if not record["history"]:
            raise commands_error("bad-request", "bad-action", "There is no previous stage")
        history = list(record["history"])
        previous = history.pop()
        state = dict(record, **previous, history=history, touched=self.clock.seconds())
        await self._write(session.id, record, state, ended=False)
        return self._executing(declared.node, session.id, state, ())

    def _state(
        self, declared: Command, session: Session, record: dict[str, Any] | None, now: float, ended: bool
    ) -> dict[str, Any]:
        state = dict(record) if record else {"node": declared.node, "owner": session.sender.full(), "history": []}
        state.setdefault("started", now)
        state.update(data=session.data, touched=now, ended=ended)
        state.setdefault("actions", [])
        state.setdefault("default", "next")
        state.setdefault("awaiting", "")
        state.setdefault("sent", "")
        return state

    async def _write(self, session_id: str, record: dict[str, Any] | None, state: dict[str, Any], ended: bool) -> None:
        """Store the new state over the one read: a second submission of the same stage, at once, is refused.

        A live session's record lasts twice the idle time, so that one idle for
        longer is answered ``session-expired``; an ended one leaves a tombstone
        of what that answer needs (owner, node, time), for the idle time.
        """
        if ended:
            state = {key: state[key] for key in ("node", "owner", "touched", "ended")}
        ttl = self.session_timeout if ended else 2 * self.session_timeout
        if not await self.store.compare_and_set(f"session/{session_id}", record, state, ttl=ttl):
            raise StanzaError("unexpected-request", "wait", "This session moved on meanwhile; try again")
        owner_key = f"owner/{_bare_key(state['owner'])}/{session_id}"
        if not ended:  # the sender's index of live sessions, by when each started; it lapses with the session
            await self.store.set(owner_key, state["started"], ttl=self.session_timeout)
        elif record is not None:
            await self.store.delete(owner_key)

    async def _make_room(self, sender: JID) -> None:
        """End the oldest of the sender's sessions while it holds ``sessions_per_sender`` of them."""
        held = await self.store.items(f"owner/{_bare_key(sender.full())}/")
        held.sort(key=lambda item: item[1])
        while len(held) >= self.sessions_per_sender:
            key, _ = held.pop(0)
            session_id = key.rsplit("/", 1)[1]
            record = await self.store.get(f"session/{session_id}")
            if record is not None and not record["ended"]:
                await self._end(session_id, record)
            else:
                await self.store.delete(key)

    async def _end(self, session_id: str, record: dict[str, Any]) -> None:
        state = dict(record, ended=True, touched=self.clock.seconds())
        await self._write(session_id, record, state, ended=True)

    def _executing(self, node: str, session_id: str, state: dict[str, Any], notes: Iterable[Note]) -> domish.Element:
        reply = self._reply(node, session_id, "executing", notes, before_notes=state)
        reply.addRawXml(state["sent"])
        return reply

    @staticmethod
    def _reply(
        node: str, session_id: str, status: str, notes: Iterable[Note] = (), before_notes: dict[str, Any] | None = None
    ) -> domish.Element:
        reply = domish.Element((NS_COMMANDS, "command"))
        reply["node"] = node
        reply["sessionid"] = session_id
        reply["status"] = status
        if before_notes is not None:
            actions = reply.addElement("actions")
            actions["execute"] = before_notes["default"]
            for action in before_notes["actions"]:
                actions.addElement(action)
        for note in notes:
            element = reply.addElement("note", content=note.text)
            element["type"] = note.type
        return reply
