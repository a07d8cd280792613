"""Ad-hoc commands (XEP-0050) through two independent client libraries, read into one shape for the tests.

``SlixmppCommands`` drives slixmpp's ``xep_0050`` plugin: ``get_commands`` for the
list, its workflow (``start_command``, ``continue_command``, ``complete_command``,
``cancel_command``) for a session, ``send_command`` for a request outside one.
``AioxmppCommands`` drives aioxmpp's ``AdHocClient``: ``get_commands``,
``execute`` and the ``ClientSession``'s ``proceed``; its session refuses to send
an action the last reply did not offer, so a request outside one is a plain Iq of
aioxmpp's ``Command`` payload.

Each library parses the replies itself; the adapters only copy what it parsed into
``CommandReply``, and a stanza error into ``CommandRefused``, so one test reads the
same through both. Values are submitted as text, with the ``FORM_TYPE`` of the form
being answered, as a client's command window does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aioxmpp
import aioxmpp.adhoc
import aioxmpp.forms
from slixmpp.exceptions import IqError

from tests.integration.aioxmpp_client import AioxmppClient
from tests.integration.xmpp_client import XmppClient

NS_COMMANDS = "http://jabber.org/protocol/commands"


@dataclass(frozen=True)
class CommandReply:
    """One reply of a command session, as the client library read it.

    ``actions`` are the offered ones among ``prev``, ``next`` and ``complete``;
    ``default`` is the ``execute`` attribute of ``<actions/>`` (None when absent).
    ``form`` is the reply's form type (``form`` or ``result``, None without a form),
    ``fields`` its values by var (``FORM_TYPE`` included).
    """

    status: str
    sessionid: str
    actions: frozenset[str] = frozenset()
    default: str | None = None
    notes: tuple[tuple[str, str], ...] = ()
    form: str | None = None
    fields: dict[str, list[str]] = field(default_factory=dict)


class CommandRefused(Exception):
    """An error reply: ``type``, ``condition``, XEP-0050's ``application`` condition (or None), ``text``."""

    def __init__(self, type: str, condition: str, application: str | None, text: str | None) -> None:
        super().__init__(f"{type}/{condition} {application or ''}: {text}")
        self.type, self.condition, self.application, self.text = type, condition, application, text

    @property
    def error(self) -> tuple[str, str, str | None]:
        return (self.type, self.condition, self.application)


class CommandSession(Protocol):
    """A session a client library keeps: each step returns the reply or raises ``CommandRefused``."""

    reply: CommandReply

    def next(self, **values: Any) -> CommandReply: ...
    def prev(self) -> CommandReply: ...
    def complete(self, **values: Any) -> CommandReply: ...
    def cancel(self) -> CommandReply: ...


class CommandClient(Protocol):
    """A logged-in client of one library, speaking XEP-0050 to ``jid``."""

    def commands(self, jid: str) -> set[tuple[str, str, str]]: ...
    def execute(self, jid: str, node: str) -> CommandSession: ...
    def send(self, jid: str, node: str, sessionid: str, action: str, **values: Any) -> CommandReply: ...
    def close(self) -> None: ...


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# slixmpp


class SlixmppCommands:
    """slixmpp's xep_0050 plugin on an ``XmppClient``."""

    def __init__(self, jid: str, password: str, port: int, timeout: float = 10.0) -> None:
        self.client = XmppClient(jid, password, port, timeout)
        self.client.loop.set_exception_handler(_unless_dropped_error_reply)
        self.client.call(self._register)
        self.plugin = self.client.xmpp.plugin["xep_0050"]
        self.timeout = timeout

    async def _register(self) -> None:
        self.client.xmpp.register_plugin("xep_0050")

    def commands(self, jid: str) -> set[tuple[str, str, str]]:
        reply = self.client.call(self.plugin.get_commands, jid, timeout=self.timeout)
        return {(str(item_jid), node, name) for item_jid, node, name in reply["disco_items"]["items"]}

    def execute(self, jid: str, node: str) -> SlixmppSession:
        session = SlixmppSession(self)
        session.reply = session.step(lambda: self.plugin.start_command(jid, node, session.state))
        return session

    def send(self, jid: str, node: str, sessionid: str, action: str, **values: Any) -> CommandReply:
        async def exchange():
            payload = self.submission(values) if values else None
            try:
                return slixmpp_reply(
                    await self.plugin.send_command(
                        jid, node, action=action, payload=payload, sessionid=sessionid, timeout=self.timeout
                    )
                )
            except IqError as e:
                raise slixmpp_refusal(e.iq) from None

        return self.client.call(exchange, timeout=self.timeout + 1)

    def submission(self, values: Mapping[str, Any], form_type: str | None = None):
        form = self.client.xmpp.plugin["xep_0004"].make_form(ftype="submit")
        if form_type is not None:
            form.add_field(var="FORM_TYPE", ftype="hidden", value=form_type)
        for var, value in values.items():
            form.add_field(var=var, value=[_text(v) for v in value] if isinstance(value, list) else _text(value))
        return form

    def close(self) -> None:
        self.client.close()


def _unless_dropped_error_reply(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's report of an exception nobody retrieved, except slixmpp's own error replies.

    The workflow API sends each request with a callback and drops the future ``send``
    returns, so an error reply, which it hands to the callback, is reported again
    when that future is collected.
    """
    if not isinstance(context.get("exception"), IqError):
        loop.default_exception_handler(context)


class SlixmppSession:
    """One session through slixmpp's workflow API: its ``next`` and ``error`` callbacks end each step."""

    def __init__(self, commands: SlixmppCommands) -> None:
        self.commands = commands
        self.plugin = commands.plugin
        self.state: dict[str, Any] = {}
        self.reply: CommandReply | None = None

    def step(self, send) -> CommandReply:
        """Call ``send()`` on the client's loop, and wait for the callback slixmpp calls with the reply."""

        async def exchange():
            answered = asyncio.get_running_loop().create_future()
            self.state["next"] = lambda iq, session: answered.done() or answered.set_result(iq)
            self.state["error"] = self.state["next"]
            send()
            try:
                return await asyncio.wait_for(answered, self.commands.timeout)
            except TimeoutError:
                # It finds an error reply's session by the <command/> echoed in it; without one, it drops the reply.
                raise AssertionError("slixmpp's command workflow called back with no reply") from None

        iq = self.commands.client.call(exchange, timeout=self.commands.timeout + 1)
        if iq["type"] == "error":
            raise slixmpp_refusal(iq)
        self.reply = slixmpp_reply(iq)
        return self.reply

    def _with(self, values: Mapping[str, Any] | None) -> None:
        form_type = (self.reply.fields.get("FORM_TYPE") or [None])[0]
        self.state["payload"] = None if values is None else self.commands.submission(values, form_type)

    def next(self, **values: Any) -> CommandReply:
        self._with(values)
        return self.step(lambda: self.plugin.continue_command(self.state, "next"))

    def prev(self) -> CommandReply:
        self._with(None)
        return self.step(lambda: self.plugin.continue_command(self.state, "prev"))

    def complete(self, **values: Any) -> CommandReply:
        self._with(values)
        return self.step(lambda: self.plugin.complete_command(self.state))

    def cancel(self) -> CommandReply:
        self._with(None)
        return self.step(lambda: self.plugin.cancel_command(self.state))


def slixmpp_reply(iq) -> CommandReply:
    command = iq["command"]
    actions = command.xml.find(f"{{{NS_COMMANDS}}}actions")
    form = command["form"] if command.xml.find("{jabber:x:data}x") is not None else None
    fields = {}
    if form is not None:
        for var, form_field in form.get_fields().items():
            value = form_field.get_value(convert=False)
            fields[var] = [] if value is None else value if isinstance(value, list) else [value]
    return CommandReply(
        status=command["status"],
        sessionid=command["sessionid"],
        actions=frozenset(command["actions"]),
        default=actions.get("execute") if actions is not None else None,
        notes=tuple((kind, text or "") for kind, text in command["notes"]),
        form=form["type"] if form is not None else None,
        fields=fields,
    )


def slixmpp_refusal(iq) -> CommandRefused:
    error = iq["error"]
    application = next(
        (child.tag.partition("}")[2] for child in error.xml if child.tag.startswith(f"{{{NS_COMMANDS}}}")), None
    )
    return CommandRefused(error["type"], error["condition"], application, error["text"] or None)


# aioxmpp


ACTION = {action.value: action for action in aioxmpp.adhoc.ActionType}


class AioxmppCommands:
    """aioxmpp's AdHocClient on an ``AioxmppClient``."""

    def __init__(self, jid: str, password: str, port: int, timeout: float = 10.0) -> None:
        self.client = AioxmppClient(jid, password, port, timeout)
        self.adhoc = self.client.client.summon(aioxmpp.adhoc.AdHocClient)
        self.timeout = timeout

    def call(self, coroutine_function, *args, **kwargs):
        """Run an aioxmpp coroutine on the client's loop; a stanza error comes out as ``CommandRefused``."""

        async def guarded():
            try:
                return await coroutine_function(*args, **kwargs)
            except aioxmpp.errors.StanzaError as e:
                raise aioxmpp_refusal(e) from None
            except aioxmpp.adhoc.service.SessionError as e:
                # aioxmpp turns bad-sessionid and session-expired into SessionError(text), raised
                # while handling the stanza error that says which: read it from there.
                raise aioxmpp_refusal(e.__context__) from None

        return self.client.call(guarded, timeout=self.timeout)

    def commands(self, jid: str) -> set[tuple[str, str, str]]:
        items = self.call(self.adhoc.get_commands, aioxmpp.JID.fromstr(jid))
        return {(str(item.jid), item.node, item.name) for item in items}

    def execute(self, jid: str, node: str) -> AioxmppSession:
        return AioxmppSession(self, self.call(self.adhoc.execute, aioxmpp.JID.fromstr(jid), node))

    def send(self, jid: str, node: str, sessionid: str, action: str, **values: Any) -> CommandReply:
        request = aioxmpp.IQ(
            type_=aioxmpp.IQType.SET,
            to=aioxmpp.JID.fromstr(jid),
            payload=aioxmpp.adhoc.xso.Command(
                node, action=ACTION[action], sessionid=sessionid, payload=[submission(values)] if values else []
            ),
        )
        return aioxmpp_reply(self.call(self.client.client.send, request))

    def close(self) -> None:
        self.client.close()


class AioxmppSession:
    """One ``aioxmpp.adhoc.ClientSession``: ``proceed`` with the action and the submitted form."""

    def __init__(self, commands: AioxmppCommands, session: aioxmpp.adhoc.service.ClientSession) -> None:
        self.commands = commands
        self.session = session
        self.reply = aioxmpp_reply(session.response)

    def _proceed(self, action: str, values: Mapping[str, Any] | None) -> CommandReply:
        form_type = (self.reply.fields.get("FORM_TYPE") or [None])[0]
        payload = [] if values is None else [submission(values, form_type)]
        self.commands.call(self.session.proceed, action=ACTION[action], payload=payload)
        self.reply = aioxmpp_reply(self.session.response)
        return self.reply

    def next(self, **values: Any) -> CommandReply:
        return self._proceed("next", values)

    def prev(self) -> CommandReply:
        return self._proceed("prev", None)

    def complete(self, **values: Any) -> CommandReply:
        return self._proceed("complete", values)

    def cancel(self) -> CommandReply:
        return self._proceed("cancel", None)


def submission(values: Mapping[str, Any], form_type: str | None = None) -> aioxmpp.forms.Data:
    form = aioxmpp.forms.Data(aioxmpp.forms.DataType.SUBMIT)
    if form_type is not None:
        form.fields.append(
            aioxmpp.forms.Field(type_=aioxmpp.forms.FieldType.HIDDEN, var="FORM_TYPE", values=[form_type])
        )
    for var, value in values.items():
        texts = [_text(v) for v in value] if isinstance(value, list) else [_text(value)]
        form.fields.append(aioxmpp.forms.Field(var=var, values=texts))
    return form


def aioxmpp_reply(command: aioxmpp.adhoc.xso.Command) -> CommandReply:
    actions = command.actions
    offered = frozenset()
    if actions is not None:
        offered = frozenset(action.value for action in actions.allowed_actions) - {"execute", "cancel"}
    form = command.first_payload
    return CommandReply(
        status=command.status.value,
        sessionid=command.sessionid,
        actions=offered,
        default=actions.execute.value if actions is not None and actions.execute is not None else None,
        notes=tuple((note.type_.value, note.body or "") for note in command.notes),
        form=form.type_.value if form is not None else None,
        fields={} if form is None else {item.var: list(item.values) for item in form.fields if item.var},
    )


def aioxmpp_refusal(error: aioxmpp.errors.StanzaError) -> CommandRefused:
    application = error.application_defined_condition
    return CommandRefused(
        error.TYPE.value,
        error.condition.value[1],
        application.TAG[1] if application is not None and application.TAG[0] == NS_COMMANDS else None,
        error.text,
    )


LIBRARIES = {"slixmpp": SlixmppCommands, "aioxmpp": AioxmppCommands}
"""The clients the tests run with, by name."""
