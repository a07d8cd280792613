"""The XMPP servers the integration suite runs against: Prosody and ejabberd, each over TCP and TLS.

Every test that talks to a server takes the ``server`` fixture, which runs it once per
variant in ``VARIANTS``. A variant is a private server started by the suite on loopback
ports with its data in a temporary directory, and the endpoint string the component's
``[component] server`` takes to reach it: plain ``tcp:``, or ``tls:`` from the first byte
with the server's certificate checked against the suite's own CA.

- Prosody offers direct TLS through mod_net_multiplex (``ssl_ports``), which hands the
  stream to its component listener once the handshake is done.
- ejabberd has a second ``ejabberd_service`` listener with ``tls: true`` and a ``certfile``
  of its own (one PEM with the certificate and its key).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from private_servers.base import free_port
from private_servers.ejabberd import PrivateEjabberd
from private_servers.prosody import PrivateProsody
from tests.integration.certificates import ServerCertificate, make_authority, make_server_certificate

VARIANTS = ("prosody-tcp", "prosody-tls", "ejabberd-tcp", "ejabberd-tls")
EACH_SERVER = ("prosody-tcp", "ejabberd-tcp")
HOSTNAME = "localhost"
"""The name on the servers' certificate, and the ``host`` the component verifies."""


@dataclass(frozen=True)
class Pki:
    """The suite's CA (in ``trust_roots``, for the component) and a certificate for ``localhost``."""

    trust_roots: Path
    certificate: Path
    key: Path
    combined: Path
    """Certificate and key in one PEM file: ejabberd's ``certfile``."""


def make_pki(directory: Path) -> Pki:
    authority = make_authority(directory / "ca", "iqresponder suite CA")
    server = make_server_certificate(authority, directory / "server", HOSTNAME)
    return pki_for(authority.trust_roots, server)


def pki_for(trust_roots: Path, server: ServerCertificate) -> Pki:
    """A server certificate as both servers take it; its combined file is written next to it."""
    combined = server.certificate_path.with_suffix(".combined.pem")
    combined.write_bytes(server.certificate_path.read_bytes() + server.key_path.read_bytes())
    combined.chmod(0o600)
    return Pki(trust_roots, server.certificate_path, server.key_path, combined)


class XmppServer:
    """One running private server and how a component reaches it."""

    def __init__(
        self,
        variant: str,
        directory: Path,
        secret: str,
        pki: Pki,
        component_names: tuple[str, ...] = ("iq.localhost",),
        ejabberd_loglevel: str = "info",
    ) -> None:
        self.variant = variant
        self.kind, self.transport = variant.split("-")
        tls_port = free_port() if self.transport == "tls" else None
        common = {"c2s_port": free_port(), "component_port": free_port(), "secret": secret, "tls_port": tls_port}
        if self.kind == "prosody":
            if component_names != ("iq.localhost",):
                raise ValueError("the suite's Prosody config defines iq.localhost only")
            tls = {"tls_certificate": pki.certificate, "tls_key": pki.key} if tls_port else {}
            self.launcher: PrivateProsody | PrivateEjabberd = PrivateProsody(directory, **common, **tls)
        else:
            tls = {"tls_certfile": pki.combined} if tls_port else {}
            self.launcher = PrivateEjabberd(
                directory, **common, component_names=component_names, loglevel=ejabberd_loglevel, **tls
            )
        if tls_port is None:
            self.endpoint = f"tcp:host=127.0.0.1:port={self.launcher.component_port}"
        else:
            # trustRoots is a directory: Twisted loads each *.pem in it as one CA certificate.
            self.endpoint = f"tls:host={HOSTNAME}:port={tls_port}:trustRoots={pki.trust_roots}/"

    def __repr__(self) -> str:
        return f"<XmppServer {self.variant}>"

    @property
    def c2s_port(self) -> int:
        return self.launcher.c2s_port

    @property
    def component_port(self) -> int:
        return self.launcher.component_port

    @property
    def tls_port(self) -> int | None:
        return self.launcher.tls_port

    @property
    def pid(self) -> int | None:
        return self.launcher.pid

    @property
    def log_path(self) -> Path:
        return self.launcher.log_path

    def start(self) -> None:
        self.launcher.start()

    def stop(self) -> None:
        self.launcher.stop()

    def restart(self) -> None:
        self.launcher.restart()

    def register(self, user: str, password: str) -> None:
        """Create ``user@localhost`` (or reset its password)."""
        self.launcher.register(user, HOSTNAME, password)


def wait_for_log(path: Path, text: str, offset: int = 0, timeout: float = 10.0) -> str:
    """Wait until the server log at ``path`` shows ``text`` after character ``offset``; return that part.

    Servers have no way to notify a test, and ejabberd writes a line 50-150 ms after the
    event: poll the file, bounded by ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while text not in (log := path.read_text(errors="replace")[offset:]):
        assert time.monotonic() < deadline, f"{path} did not show {text!r} within {timeout} s"
        time.sleep(0.02)
    return log
