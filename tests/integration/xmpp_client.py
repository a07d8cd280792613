"""A real XMPP client for the tests: slixmpp, logged in to the test's Prosody as a user account.

slixmpp runs on asyncio in a thread of its own, so tests stay plain synchronous
functions and every wait has a bound.
"""

from __future__ import annotations

import asyncio
import threading
from xml.etree import ElementTree

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatcherId, MatchXPath

NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


class XmppClient:
    """One logged-in client session; ``iq()`` sends raw XML and returns the reply stanza."""

    def __init__(self, jid: str, password: str, port: int, timeout: float = 10.0) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.xmpp = self._run(self._connect(jid, password, port, timeout), timeout)

    def _run(self, coroutine, timeout: float):
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), self.loop).result(timeout + 1)

    async def _connect(self, jid: str, password: str, port: int, timeout: float) -> slixmpp.ClientXMPP:
        xmpp = slixmpp.ClientXMPP(jid, password)
        # Plaintext on loopback, as the test Prosody allows (see shared/xmpp-servers.md).
        xmpp.enable_starttls = False
        xmpp.enable_direct_tls = False
        xmpp.enable_plaintext = True
        xmpp.plugin["feature_mechanisms"].unencrypted_plain = True
        for plugin in ("xep_0030", "xep_0128", "xep_0115", "xep_0199"):
            xmpp.register_plugin(plugin)
        started = asyncio.get_running_loop().create_future()
        xmpp.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        xmpp.add_event_handler(
            "failed_auth", lambda _: started.done() or started.set_exception(AssertionError("login failed"))
        )
        xmpp.connect("127.0.0.1", port)
        await started
        xmpp.send_presence()  # available: Prosody routes Iqs to a full JID only once it has sent presence
        return xmpp

    async def _exchange(self, body: str, type: str, to: str, timeout: float) -> ElementTree.Element | None:
        """Send ``<iq type=... to=...>body</iq>``; the reply (result or error), or ``None`` after ``timeout``."""
        stanza = ElementTree.fromstring(f"<iq xmlns='{NS_CLIENT}' type='{type}' to='{to}'>{body}</iq>")
        iq = self.xmpp.Iq(xml=stanza)
        iq["id"] = self.xmpp.new_id()
        try:
            reply = await iq.send(timeout=timeout)
        except IqError as e:
            reply = e.iq
        except IqTimeout:
            return None
        assert reply["id"] == iq["id"]
        return reply.xml

    def iq(self, body: str, type: str = "get", to: str = "iq.localhost", timeout: float = 10.0) -> ElementTree.Element:
        """Send ``<iq type=... to=...>body</iq>`` and return the reply (result or error)."""
        reply = self._run(self._exchange(body, type, to, timeout), timeout + 1)
        if reply is None:
            raise AssertionError(f"no reply within {timeout} s to {body!r} for {to}")
        return reply

    def iqs(
        self, bodies: list[str], type: str = "get", to: str = "iq.localhost", timeout: float = 10.0
    ) -> list[ElementTree.Element | None]:
        """Send one Iq per body all at once; the replies in order, ``None`` where none came within ``timeout``."""

        async def exchange_all():
            return await asyncio.gather(*(self._exchange(body, type, to, timeout) for body in bodies))

        return self._run(exchange_all(), timeout + 5)

    def iqs_to(
        self, requests: list[tuple[str, str]], type: str = "get", timeout: float = 10.0
    ) -> list[ElementTree.Element | None]:
        """Like ``iqs``, each request a ``(to, body)`` pair: several addressees at once."""

        async def exchange_all():
            return await asyncio.gather(*(self._exchange(body, type, to, timeout) for to, body in requests))

        return self._run(exchange_all(), timeout + 5)

    def raw_iq(self, xml: str, id: str, timeout: float = 10.0) -> ElementTree.Element | None:
        """Write ``xml`` to the server exactly as given and return the reply with ``id``, or ``None``.

        For what a stock client would not write: raw quote characters in text and attribute
        values (slixmpp escapes them), or a stanza nested a thousand levels deep.
        """

        async def exchange() -> ElementTree.Element | None:
            replied = asyncio.get_running_loop().create_future()
            name = f"raw reply {id}"
            self.xmpp.register_handler(
                Callback(name, MatcherId(id), lambda stanza: replied.done() or replied.set_result(stanza.xml))
            )
            try:
                self.xmpp.send_raw(xml)
                return await asyncio.wait_for(replied, timeout)
            except TimeoutError:
                return None
            finally:
                self.xmpp.remove_handler(name)

        return self._run(exchange(), timeout + 1)

    def echo(self, namespace: str, element: str) -> None:
        """Answer every Iq get with ``<element xmlns=namespace/>`` by a result that carries the same payload."""

        def answer(iq) -> None:
            iq.reply(clear=False).send()

        matcher = MatchXPath(f"{{{NS_CLIENT}}}iq/{{{namespace}}}{element}")
        self.loop.call_soon_threadsafe(
            self.xmpp.register_handler, Callback(f"echo {namespace} {element}", matcher, answer)
        )

    def call(self, coroutine_function, *args, timeout: float = 10.0, **kwargs):
        """Run ``await coroutine_function(*args, **kwargs)`` on the client's loop and return its value."""
        return self._run(coroutine_function(*args, **kwargs), timeout)

    def close(self) -> None:
        """End the session and the client's thread; safe to call twice."""
        if not self._thread.is_alive():
            return

        async def disconnect():
            await asyncio.wait_for(self.xmpp.disconnect(), 5)
            # Finish slixmpp's background tasks here, so none is left to a loop that has stopped.
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(disconnect(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


def error_of(reply: ElementTree.Element) -> tuple[str, str]:
    """(type, condition) of an error reply."""
    assert reply.get("type") == "error", ElementTree.tostring(reply)
    error = reply.find(f"{{{NS_CLIENT}}}error")
    conditions = [child.tag.split("}")[1] for child in error if child.tag.startswith(f"{{{NS_STANZAS}}}")]
    conditions = [c for c in conditions if c != "text"]
    return error.get("type"), conditions[0]
