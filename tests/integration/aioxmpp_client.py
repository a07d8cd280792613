"""A second real XMPP client for the tests: aioxmpp, logged in to the test's server as a user account.

aioxmpp is a client library independent of slixmpp (tests/integration/xmpp_client.py):
its own XML parsing, stream management and XSO classes, so what both accept is no
artefact of one library. Like the slixmpp client it runs on asyncio in a thread of
its own, so tests stay plain synchronous functions and every wait has a bound.
"""

from __future__ import annotations

import asyncio
import threading

import aioxmpp
import aioxmpp.connector


class AioxmppClient:
    """One logged-in aioxmpp client, available (Prosody routes Iqs to a full JID only once it has sent presence)."""

    def __init__(self, jid: str, password: str, port: int, timeout: float = 10.0) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self.client = self.call(self._connect, jid, password, port, timeout=timeout)
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise

    async def _connect(self, jid: str, password: str, port: int) -> aioxmpp.PresenceManagedClient:
        # Loopback without TLS: the test servers take PLAIN there (see shared/xmpp-servers.md); a STARTTLS
        # the server offers anyway is accepted without checking its certificate.
        layer = aioxmpp.make_security_layer(password, no_verify=True)._replace(tls_required=False)
        client = aioxmpp.PresenceManagedClient(
            aioxmpp.JID.fromstr(jid),
            layer,
            override_peer=[("127.0.0.1", port, aioxmpp.connector.STARTTLSConnector())],
        )
        established = asyncio.get_running_loop().create_future()
        client.on_stream_established.connect(established, client.on_stream_established.AUTO_FUTURE)
        client.on_failure.connect(established, client.on_failure.AUTO_FUTURE)
        client.presence = aioxmpp.PresenceState(True)  # available, which starts the client
        try:
            await established
        except BaseException:
            client.stop()
            raise
        return client

    def call(self, coroutine_function, *args, timeout: float = 10.0, **kwargs):
        """Run ``await coroutine_function(*args, **kwargs)`` on the client's loop and return its value."""
        coroutine = asyncio.wait_for(coroutine_function(*args, **kwargs), timeout)
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout + 1)

    def close(self) -> None:
        """End the session and the client's thread; safe to call twice."""
        if not self._thread.is_alive():
            return

        async def disconnect():
            if self.client.running:
                stopped = asyncio.get_running_loop().create_future()
                self.client.on_stopped.connect(stopped, self.client.on_stopped.AUTO_FUTURE)
                self.client.stop()
                await asyncio.wait_for(stopped, 5)
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(disconnect(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
