"""An ad-hoc command in two stages: pick a host, confirm, and it is (pretend) rebooted."""

from component import Done, Form, Last, Note, command
from component.dataforms import boolean, list_single, text_single


class Target(Form, form_type="urn:example:reboot", title="Reboot"):
    host: str = list_single("Host", options=["web1", "web2"], required=True)
    delay: int = text_single("Delay (s)", datatype="xs:int", range=(0, 3600), default=0)


class Confirm(Form, form_type="urn:example:reboot#confirm"):
    sure: bool = boolean("Really?", required=True)


@command("reboot", "Reboot a host")  # access="admins" by default
class Reboot:
    async def start(self, session):
        return Target()  # the first form; the client offers "next"

    async def target(self, session, form: Target):
        session.data["host"] = form.host  # kept between stages (JSON data)
        return Last(Confirm())  # the last form; the client offers "complete" (and "prev")

    async def confirm(self, session, form: Confirm):
        if not form.sure:
            return Done(Note("Nothing done", "warn"))
        return Done(f"Rebooting {session.data['host']}")  # notes, and form= a result form
