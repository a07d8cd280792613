"""The roles of iqresponder, named: what each side may rely on, apart from the class that plays it.

As in twisted.words' ``ijabber.py``, these are zope.interface ``Interface`` classes: the
clock a handler gets is Twisted's own ``IReactorTime``, which is one, and
``zope.interface.verify.verifyObject`` checks in a test that an implementation
provides every attribute and method of its role, at run time. The annotations
say the same to mypy (``make lint``), which reads them with the mypy-zope plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IReactorTime
    from twisted.words.xish import domish

    from component.config import Settings
    from component.discovery import DiscoInfo, Discovery, Item
    from component.facade import Status
    from component.privilege import Privileged


class IComponent(Interface):
    """The running component as a handler sees it.

    This is ``request.component`` in a responder and the argument of a module's
    ``setup(component, options)`` and ``teardown(component)``. It offers what a
    handler needs and nothing of the machinery behind it (links, router,
    reload): handlers written against it keep working when that changes.
    """

    jid: str = Attribute("The component's domain (a str), as the server knows it: the address of its replies.")

    settings: Settings = Attribute(
        "The configuration (component.config.Settings, frozen). A reload replaces it: read it when needed, not once."
    )

    disco: Discovery = Attribute(
        "The service discovery provider (component.discovery.Discovery) that modules publish into from setup(): "
        "add_identity, add_feature, add_form, add_item, mount, provide."
    )

    clock: IReactorTime = Attribute(
        "The component's clock, an IReactorTime (callLater, seconds): the reactor in production, the test kit's "
        "task.Clock under test, so that a handler's timers run when a test advances the clock."
    )

    store: IStore = Attribute(
        "The module's own keys and values, kept beyond the process (an IStore, component/store.py): in a "
        "SQLite file by default, in PostgreSQL when several instances share them."
    )

    privileged: Privileged = Attribute(
        "What the server lets the component do for its users (XEP-0356), a component.privilege.Privileged: "
        "granted(), roster(user), set_roster(user, items), send_message(message), query(user, payload, type). "
        "Each fails at once with MissingPrivilege when the server did not grant what it needs."
    )

    # zope.interface spells methods without self.
    def query(
        to: str, payload: domish.Element | str, type: str = "get", timeout: float | None = None
    ) -> Deferred[domish.Element]:
        """Send an Iq ``type`` with ``payload`` to ``to``; return a Deferred that fires with the response stanza.

        ``payload`` is a domish Element, or a namespace meaning an empty
        ``<query/>`` in it. Fails with ``IqError``, ``IqTimeout`` or
        ``NotConnected``. ``timeout=None`` uses ``response_timeout``;
        ``component.NO_TIMEOUT`` waits as long as the connection lasts;
        ``cancel()`` forgets the query.
        """

    def disco_info(jid: str, node: str | None = None, timeout: float | None = None) -> Deferred[DiscoInfo]:
        """Ask ``jid`` for its disco#info; fires with a ``DiscoInfo`` or fails like ``query``."""

    def disco_items(jid: str, node: str | None = None, timeout: float | None = None) -> Deferred[tuple[Item, ...]]:
        """Ask ``jid`` for its disco#items; fires with a tuple of ``Item`` or fails like ``query``."""

    def status() -> Status:
        """A ``Status`` snapshot (component/facade.py): uptime, connections, requests by namespace, pending
        queries, loaded modules, commands. For the operators' commands (handlers/admin.py)."""

    def reload() -> bool:
        """Reload the handler modules, as SIGHUP does (the previous set keeps serving if it fails); True if it worked."""


class IStore(Interface):
    """One handler module's keys and values, kept beyond the process: ``component.store`` (component/store.py).

    Every method returns a Deferred (``await`` it in an ``async def``
    responder). Keys are non-empty strings (at most 512 characters, no NUL);
    values are ``bytes`` or JSON-serializable data, at most 256 KiB stored, and
    never ``None``, which stands for an absent key. A key may expire: ``ttl``
    seconds after it was written it reads as absent. A method called with a bad
    key, value or ttl fails with ``ValueError``; when the store cannot be
    reached in time it fails with ``StoreUnavailable``, which a responder that
    lets it escape answers with ``internal-server-error`` (wait).
    """

    namespace: str = Attribute("The module's name: the namespace its keys live in, apart from every other module's.")

    def get(key: str, default: Any = None) -> Deferred[Any]:
        """Fires with the value of ``key``, or ``default`` when it is absent or expired."""

    def set(key: str, value: Any, ttl: float | None = None) -> Deferred[None]:
        """Stores ``value`` under ``key`` (expiring after ``ttl`` seconds, or never); fires with None once durable."""

    def delete(key: str) -> Deferred[bool]:
        """Removes ``key``; fires with True if it was there (and not expired), else False."""

    def compare_and_set(key: str, expected: Any, value: Any, ttl: float | None = None) -> Deferred[bool]:
        """Stores ``value`` only if ``key`` holds ``expected`` now (``None``: only if absent); fires with True if it did.

        The test and the write are one step for every instance sharing the
        store, so a read-modify-write loop around it loses no update.
        """

    def keys(prefix: str = "", limit: int | None = None) -> Deferred[list[str]]:
        """Fires with the sorted list of the keys that start with ``prefix`` (at most ``limit`` of them)."""

    def items(prefix: str = "", limit: int | None = None) -> Deferred[list[tuple[str, Any]]]:
        """Fires with the sorted list of ``(key, value)`` pairs whose keys start with ``prefix``."""
