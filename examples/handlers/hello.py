"""Hello: <hello xmlns='urn:example:hello' name='alice'/> is answered with a greeting for alice.

The command "hello" asks for a name in a form, and greets it.
"""

from component import Done, Form, Last, Payload, Request, Session, attribute, command, responder, text
from component.dataforms import text_single

NS_HELLO = "urn:example:hello"


class Hello(Payload, namespace=NS_HELLO, element="hello"):
    name: str = attribute()
    greeting: str = text(default="")


@responder(Hello, "get")
def hello(request: Request) -> Hello:
    name = request.payload.name
    return Hello(name=name, greeting=f"Hello, {name}!")


class Whom(Form, form_type="urn:example:hello", title="Say hello"):
    name: str = text_single("Name", required=True)


@command("hello", "Say hello", access="local")
async def say_hello(session: Session) -> Last:
    return Last(Whom(name=session.sender.user))


@say_hello.stage
async def greet(session: Session, form: Whom) -> Done:
    return Done(f"Hello, {form.name}!")
