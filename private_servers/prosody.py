"""A private Prosody 0.12 server for iqresponder's tests, ``make run`` and ``make bench``.

Each run gets its own directory (data, pid file, log) and its own loopback ports, so
tests and developers never share state with each other or with a system-wide Prosody.
All per-run values reach ``conf/prosody/prosody.cfg.lua`` as environment variables, which
Prosody 0.12 exposes to the config as ``ENV_*`` globals.

Direct TLS (optional): with ``tls_port``, ``tls_certificate`` and ``tls_key`` Prosody also
listens on that loopback port with TLS from the first byte, and passes a component stream on
to the component listener once the handshake is done (mod_net_multiplex's ``ssl_ports``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from private_servers.base import COMPONENT_JID, LOOPBACK, VIRTUAL_HOST, PrivateServer

__all__ = ["COMPONENT_JID", "VIRTUAL_HOST", "PrivateProsody"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "prosody" / "prosody.cfg.lua"
"""The shared config; it takes everything run-specific from the environment."""

# Prosody keeps running when it cannot bind a port (it only logs this), and another
# program may then be answering on that port; so a start is only good when Prosody's
# own log shows every listener.
_BIND_FAILED = "Failed to open server port"
_ACTIVATED = "Activated service '{service}' on [{host}]:{port}"


class PrivateProsody(PrivateServer):
    """One Prosody process on loopback ports, with its data in ``directory``.

    start() returns only when clients and the component can connect; stop() signals
    only the process that start() launched, never anything found by name, so parallel
    runs and a system Prosody are safe. Prosody starts in about 0.1 s here.
    """

    name = "Prosody"

    def __init__(
        self,
        directory: Path,
        c2s_port: int,
        component_port: int,
        secret: str,
        config: Path = DEFAULT_CONFIG,
        tls_port: int | None = None,
        tls_certificate: Path | None = None,
        tls_key: Path | None = None,
        conflict_resolve: str | None = None,
    ) -> None:
        if tls_port is not None and (tls_certificate is None or tls_key is None):
            raise ValueError("--tls-port needs --tls-certificate and --tls-key")
        super().__init__(directory)  # the config builds every path from the (absolute) directory
        self.c2s_port = c2s_port
        self.component_port = component_port
        self.secret = secret
        self.config = Path(config).resolve()
        self.tls_port = tls_port
        # Absolute too: Prosody resolves relative certificate paths against the config's directory.
        self.tls_certificate = Path(tls_certificate).resolve() if tls_certificate is not None else None
        self.tls_key = Path(tls_key).resolve() if tls_key is not None else None
        # What Prosody does with a second connection for the component's name: refuse it
        # (None, the default) or "kick_old", replace the first.
        self.conflict_resolve = conflict_resolve

    # -- the command line (private_servers.launcher) ---------------------------------

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
        parser.add_argument("--tls-certificate", type=Path, help="PEM certificate (chain) for the TLS port")
        parser.add_argument("--tls-key", type=Path, help="PEM private key for the TLS port")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, secret: str) -> PrivateProsody:
        return cls(
            args.dir,
            args.c2s_port,
            args.component_port,
            secret,
            config=args.config,
            tls_port=args.tls_port,
            tls_certificate=args.tls_certificate,
            tls_key=args.tls_key,
        )

    # -- the server ------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        """Prosody's own log (the config writes it here)."""
        return self.directory / "prosody.log"

    @property
    def ports(self) -> list[int]:
        """Every port this Prosody listens on."""
        ports = [self.c2s_port, self.component_port]
        if self.tls_port is not None:
            ports.append(self.tls_port)
        return ports

    def command(self) -> list[str]:
        return ["prosody", "--config", str(self.config), "-F"]

    def environment(self) -> dict[str, str]:
        """The environment that Prosody and prosodyctl read the config with."""
        # The caller's own IQR_TLS_* (or conflict setting) must not switch anything on behind this object's back.
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("IQR_TLS_") and name != "IQR_CONFLICT_RESOLVE"
        }
        environment.update(
            {
                "IQR_PROSODY_DIR": str(self.directory),
                "IQR_C2S_PORT": str(self.c2s_port),
                "IQR_COMPONENT_PORT": str(self.component_port),
                "IQRESPONDER_SECRET": self.secret,
            }
        )
        if self.conflict_resolve is not None:
            environment["IQR_CONFLICT_RESOLVE"] = self.conflict_resolve
        if self.tls_port is not None:
            environment.update(
                {
                    "IQR_TLS_PORT": str(self.tls_port),
                    "IQR_TLS_CERT": str(self.tls_certificate),
                    "IQR_TLS_KEY": str(self.tls_key),
                }
            )
        return environment

    def ready(self, log: str) -> bool:
        expected = [
            _ACTIVATED.format(service="c2s", host=LOOPBACK, port=self.c2s_port),
            _ACTIVATED.format(service="component", host=LOOPBACK, port=self.component_port),
        ]
        if self.tls_port is not None:
            # mod_net_multiplex's TLS service; it hands component streams to mod_component.
            expected.append(_ACTIVATED.format(service="multiplex_ssl", host=LOOPBACK, port=self.tls_port))
        return all(line in log for line in expected)

    def bind_failed(self, log: str) -> bool:
        return _BIND_FAILED in log

    def register(self, user: str, host: str, password: str) -> None:
        """Create (or reset the password of) ``user@host`` with prosodyctl.

        prosodyctl writes the account files directly, so this works whether or not
        Prosody is running, and a running Prosody sees the account at once.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["prosodyctl", "--config", str(self.config), "register", user, host, password],
            env=self.environment(),
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise RuntimeError(f"prosodyctl register {user} {host} failed with status {result.returncode}: {output}")
