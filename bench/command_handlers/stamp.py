"""A one-stage ad-hoc command for the benchmark's commands section: execute, and it is done with a result form."""

from component import Done, Form, command
from component.dataforms import text_single


class Stamp(Form, form_type="urn:example:bench:stamp", title="Stamp"):
    asker: str = text_single("Asked by", default="")


@command("stamp", "Stamp")  # access="admins": the section's configuration makes every user of localhost one
async def stamp(session):
    return Done("Stamped", form=Stamp(asker=session.sender.full()))
