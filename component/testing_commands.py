"""The test kit's driver for whole ad-hoc command sessions (XEP-0050): ``harness.command(node)``.

A ``CommandRun`` sends the requests a client's command window sends (execute,
next, prev, complete, cancel, with a submitted form built from keywords) and
returns each reply as a ``CommandStep`` a test reads: its status, actions,
notes, form fields, or error. It also checks every reply the way the strictest
clients do (Gajim's nbxmpp): the same session id on each reply, a status, an
``execute`` action that is among the offered ones, note types XEP-0050 knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


@dataclass
class CommandStep:
    """One reply of a command session.

    ``error`` is ``(type, condition, application condition or None, text or None)``
    for an error reply, else None. ``fields`` maps each field of the reply's
    form to its values; ``field_types`` to its type; ``form_type`` is the form's
    ``type`` attribute (``form`` or ``result``).
    """

    xml: str
    status: str | None = None
    sessionid: str | None = None
    actions: tuple[str, ...] = ()
    default: str | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)
    form_type: str | None = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    field_types: dict[str, str] = field(default_factory=dict)
    error: tuple[str | None, str | None, str | None, str | None] | None = None

    @classmethod
    def read(cls, xml: str) -> CommandStep:
        iq = ElementTree.fromstring(xml)
        step = cls(xml)
        if iq.get("type") == "error":
            error = iq.find("{jabber:component:accept}error")
            if error is None:
                error = next(child for child in iq if child.tag.endswith("}error") or child.tag == "error")
            condition = application = text = None
            for child in error:
                namespace, _, name = child.tag[1:].partition("}")
                if namespace == NS_STANZAS and name == "text":
                    text = child.text
                elif namespace == NS_STANZAS:
                    condition = name
                elif namespace == NS_COMMANDS:
                    application = name
            step.error = (error.get("type"), condition, application, text)
            return step
        command = iq.find(f"{{{NS_COMMANDS}}}command")
        if command is None:
            raise AssertionError(f"a command reply without <command/>: {xml}")
        step.status, step.sessionid = command.get("status"), command.get("sessionid")
        actions = command.find(f"{{{NS_COMMANDS}}}actions")
        if actions is not None:
            step.actions = tuple(child.tag.partition("}")[2] for child in actions)
            step.default = actions.get("execute", "next")
        step.notes = [(note.get("type", "info"), note.text or "") for note in command.findall(f"{{{NS_COMMANDS}}}note")]
        form = command.find(f"{{{NS_DATA}}}x")
        if form is not None:
            step.form_type = form.get("type")
            for element in form.findall(f"{{{NS_DATA}}}field"):
                var = element.get("var")
                if var is None:
                    continue
                step.fields[var] = [value.text or "" for value in element.findall(f"{{{NS_DATA}}}value")]
                step.field_types[var] = element.get("type", "text-single")
        step._check()
        return step

    def _check(self) -> None:
        """What strict clients refuse."""
        assert self.status in ("executing", "completed", "canceled"), f"no valid status: {self.xml}"
        assert self.sessionid, f"no session id: {self.xml}"
        if self.status == "executing":
            assert self.actions and set(self.actions) <= {"prev", "next", "complete"}, f"bad actions: {self.xml}"
            assert self.default in self.actions, f"execute={self.default!r} is not offered: {self.xml}"
        assert all(kind in ("info", "warn", "error") for kind, _ in self.notes), f"bad note type: {self.xml}"


class CommandRun:
    """One command session, driven as a client would: ``execute()`` first, then the stages' actions."""

    def __init__(self, harness: Any, node: str, sender: str) -> None:
        self.harness = harness
        self.node = node
        self.sender = sender
        self.sessionid: str | None = None
        self.last: CommandStep | None = None

    def execute(self, **values: Any) -> CommandStep:
        """Start the session (or, once started, send the stage's default action with ``values``)."""
        return self.send("execute", values if self.sessionid else None)

    def next(self, **values: Any) -> CommandStep:
        return self.send("next", values)

    def complete(self, **values: Any) -> CommandStep:
        return self.send("complete", values)

    def prev(self) -> CommandStep:
        return self.send("prev")

    def cancel(self) -> CommandStep:
        return self.send("cancel")

    def send(
        self,
        action: str | None,
        values: Mapping[str, Any] | None = None,
        sessionid: str | None = None,
        form_type: str = "submit",
    ) -> CommandStep:
        """Any request of this session: another ``action`` (None: none given), another ``sessionid``."""
        sessionid = sessionid if sessionid is not None else self.sessionid
        attributes = f" node='{_escape(self.node)}'"
        if sessionid is not None:
            attributes += f" sessionid='{_escape(sessionid)}'"
        if action is not None:
            attributes += f" action='{_escape(action)}'"
        form = "" if values is None else self._form(values, form_type)
        xml = f"<iq type='set'><command xmlns='{NS_COMMANDS}'{attributes}>{form}</command></iq>"
        reply = self.harness.ask(xml, sender=self.sender)
        if reply is None:
            raise AssertionError(f"no reply to {xml}")
        step = CommandStep.read(reply)
        if step.error is None:
            if self.sessionid is not None:
                assert step.sessionid == self.sessionid, f"the session id changed: {reply}"
            self.sessionid = step.sessionid
            self.last = step
        return step

    def _form(self, values: Mapping[str, Any], form_type: str) -> str:
        fields = []
        last = self.last.fields if self.last is not None else {}
        if "FORM_TYPE" in last and "FORM_TYPE" not in values:
            fields.append(_field("FORM_TYPE", last["FORM_TYPE"]))
        for var, value in values.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            fields.append(_field(var, value if isinstance(value, (list, tuple)) else [value]))
        return f"<x xmlns='{NS_DATA}' type='{form_type}'>{''.join(fields)}</x>"


def _field(var: str, values: Any) -> str:
    inner = "".join(f"<value>{_escape(str(value))}</value>" for value in values)
    return f"<field var='{_escape(var)}'>{inner}</field>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;").replace('"', "&quot;")
