"""The roles of iqresponder, named: what each side may rely on, apart from the class that plays it.

As in twisted.words' ``ijabber.py``, these are zope.interface ``Interface``s: the
clock a handler gets is Twisted's own ``IReactorTime``, which is one, and
``zope.interface.verify.verifyObject`` checks in a test that an implementation
provides every attribute and method of its role, which a typing ``Protocol``
would leave to a type checker the project does not run.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IComponent(Interface):
    """The running component as a handler sees it.

    This is ``request.component`` in a responder and the argument of a module's
    ``setup(component, options)`` and ``teardown(component)``. It offers what a
    handler needs and nothing of the machinery behind it (links, router,
    reload): handlers written against it keep working when that changes.
    """

    jid = Attribute("The component's domain (a str), as the server knows it: the address of its replies.")

    settings = Attribute(
        "The configuration (component.config.Settings, frozen). A reload replaces it: read it when needed, not once."
    )

    disco = Attribute(
        "The service discovery provider (component.discovery.Discovery) that modules publish into from setup(): "
        "add_identity, add_feature, add_form, add_item, mount, provide."
    )

    clock = Attribute(
        "The component's clock, an IReactorTime (callLater, seconds): the reactor in production, the test kit's "
        "task.Clock under test, so that a handler's timers run when a test advances the clock."
    )

    # zope.interface spells methods without self.
    def query(to, payload, type="get", timeout=None):
        """Send an Iq ``type`` with ``payload`` to ``to``; return a Deferred that fires with the response stanza.

        ``payload`` is a domish Element, or a namespace meaning an empty
        ``<query/>`` in it. Fails with ``IqError``, ``IqTimeout`` or
        ``NotConnected``. ``timeout=None`` uses ``response_timeout``;
        ``component.NO_TIMEOUT`` waits as long as the connection lasts;
        ``cancel()`` forgets the query.
        """

    def disco_info(jid, node=None, timeout=None):
        """Ask ``jid`` for its disco#info; fires with a ``DiscoInfo`` or fails like ``query``."""

    def disco_items(jid, node=None, timeout=None):
        """Ask ``jid`` for its disco#items; fires with a tuple of ``Item`` or fails like ``query``."""
