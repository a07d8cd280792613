"""Private XMPP servers for iqresponder's tests, ``make run`` and ``make bench``.

Each one runs a real Prosody or ejabberd on loopback ports with everything it writes in a
directory of its own, and stops only what it started. ``base`` holds what every server
shares (starting and stopping through mirakuru, the readiness wait), ``prosody`` and
``ejabberd`` how to run each server, and ``launcher`` the command line that ``make run``
uses (``python -m private_servers prosody ... -- COMMAND``). Their configuration files stay
in ``conf/prosody/`` and ``conf/ejabberd/``.

``postgresql`` is apart: the private PostgreSQL cluster of the store's tests and benchmarks, on
pytest-postgresql's executor.
"""
