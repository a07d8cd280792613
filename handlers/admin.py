"""Commands for the operators (XEP-0050), for the JIDs in [access] admins only.

admin-status   uptime, each connection, requests by namespace, pending queries
admin-reload   reload the handler modules, as SIGHUP does
admin-modules  the loaded modules, the namespaces they serve, and the commands
"""

from component import Done, Form, Note, Session, command
from component.dataforms import text_multi, text_single


class StatusReport(Form, form_type="urn:iqresponder:admin:status", title="Status"):
    uptime: str = text_single("Uptime", default="")
    connections: list[str] = text_multi("Connections")
    requests: list[str] = text_multi("Requests by namespace")
    pending_queries: int = text_single("Pending outbound queries", default=0)


class ModulesReport(Form, form_type="urn:iqresponder:admin:modules", title="Handler modules"):
    modules: list[str] = text_multi("Modules and their namespaces")
    commands: list[str] = text_multi("Commands")


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d}:{minutes:02d}:{seconds:02d}"


@command("admin-status", "Status")
async def status(session: Session) -> Done:
    now = session.component.status()
    return Done(
        form=StatusReport(
            uptime=_duration(now.uptime),
            connections=[f"{jid}: {'connected' if up else 'not connected'}" for jid, up in now.connections],
            requests=[f"{namespace}: {count}" for namespace, count in sorted(now.requests.items())],
            pending_queries=now.pending_queries,
        )
    )


@command("admin-reload", "Reload the handler modules")
async def reload(session: Session) -> Done:
    if session.component.reload():
        return Done("Reloaded the handler modules")
    return Done(Note("The reload failed and the previous handlers still serve; the log says why", "error"))


@command("admin-modules", "Loaded handler modules")
async def modules(session: Session) -> Done:
    now = session.component.status()
    return Done(
        form=ModulesReport(
            modules=[f"{name}: {', '.join(namespaces) or 'no responders'}" for name, namespaces in now.modules],
            commands=list(now.commands),
        )
    )
