"""A private ejabberd 23.01 server for iqresponder's tests and ``make bench``, next to PrivateProsody.

Each run gets its own directory (rendered config, Mnesia spool, log) and its own loopback
ports, so tests never share state with each other or with a system-wide ejabberd. The
Erlang VM is started directly with ``erl`` (what ``ejabberdctl foreground`` does, minus
the switch to the ejabberd user and /etc/ejabberd), *without* a node name: Erlang
distribution stays off, so no epmd is started, no cookie file is written and nothing but
the configured listeners is opened. The node is ``nonode@nohost``.

Accounts are created through mod_http_api on a third loopback port (``api_port``); the
config lets only 127.0.0.1 run ``register``, ``change_password`` and ``unregister`` there.
ejabberdctl would need a named node (and so epmd and a cookie), and as root it switches to
the ejabberd user. Unlike prosodyctl, registration therefore needs the server running.

The VM runs helper programs (erl_child_setup, inet_gethost, memsup, eimp) in sessions of
their own, out of reach of a signal to its process group; they carry mirakuru's marker in
their environment, so stop() signals them too (private_servers.base).

Direct TLS (optional): with ``tls_port`` and ``tls_certfile`` a second ejabberd_service
listener takes TLS from the first byte. ejabberd's ``certfile`` is ONE PEM file holding
the certificate (chain) and its private key; the global ``certfiles`` are not used by a
listener (without a certfile of its own every handshake is reset and nothing is logged).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import string
import urllib.error
import urllib.request
from pathlib import Path

from private_servers.base import COMPONENT_JID, LOOPBACK, VIRTUAL_HOST, PrivateServer, free_port

__all__ = ["COMPONENT_JID", "VIRTUAL_HOST", "PrivateEjabberd"]

TEMPLATE = Path(__file__).resolve().parents[1] / "conf" / "ejabberd" / "ejabberd.yml.template"
"""Rendered per run into ``directory/ejabberd.yml``."""

ERL = "erl"
EJABBERDCTL = Path("/usr/sbin/ejabberdctl")
DEFAULT_ERL_LIBS = "/usr/lib/x86_64-linux-gnu"
"""Where Debian's ejabberd keeps its own OTP applications (ejabberdctl sets ERL_LIBS to it)."""

_STARTED = "is started in the node"
_ACCEPTING = "Start accepting {transport} connections at {host}:{port} for {module}"
# Logged when a listener cannot bind its port (the VM keeps running without it).
_BIND_FAILED = re.compile(r"Failed to open socket at|eaddrinuse|Failed to start ejabberd application")

# Inherited variables that would change how erl starts (a node name, for one) or where
# ejabberd reads its configuration from.
_SCRUBBED_ENV = (
    "ERL_FLAGS",
    "ERL_AFLAGS",
    "ERL_ZFLAGS",
    "ERL_EPMD_ADDRESS",
    "ERL_EPMD_PORT",
    "ERL_DIST_PORT",
    "ERL_INETRC",
    "EJABBERD_PID_PATH",
    "EJABBERD_MACRO",
    "CONTRIB_MODULES_PATH",
    "CONTRIB_MODULES_CONF_DIR",
)


def erl_libs() -> str:
    """ERL_LIBS as Debian's ejabberdctl sets it, or the Debian default."""
    try:
        text = EJABBERDCTL.read_text()
    except OSError:
        return DEFAULT_ERL_LIBS
    match = re.search(r"^ERL_LIBS=['\"]?([^'\"\n]+)['\"]?$", text, re.MULTILINE)
    return match.group(1) if match else DEFAULT_ERL_LIBS


class PrivateEjabberd(PrivateServer):
    """One ejabberd (one Erlang VM) on loopback ports, with its config and spool in ``directory``.

    start() returns only when the VM reports ejabberd started and every listener accepts
    (about 0.9 s after erl starts here); stop() signals only the VM that start() launched
    (SIGTERM makes it run init:stop(), which takes 1-3 s), and then the helper programs the
    VM ran (erl_child_setup, inet_gethost, memsup, eimp), found by mirakuru's marker.
    """

    name = "ejabberd"
    timeout = 15.0

    def __init__(
        self,
        directory: Path,
        c2s_port: int,
        component_port: int,
        secret: str,
        component_names: tuple[str, ...] | list[str] = (COMPONENT_JID,),
        tls_port: int | None = None,
        tls_certfile: Path | None = None,
        api_port: int | None = None,
        template: Path = TEMPLATE,
        loglevel: str = "info",
    ) -> None:
        if (tls_port is None) != (tls_certfile is None):
            raise ValueError("--tls-port and --tls-certfile go together")
        if not component_names:
            raise ValueError("at least one component name is needed")
        super().__init__(directory)
        self.c2s_port = c2s_port
        self.component_port = component_port
        self.secret = secret
        self.component_names = tuple(component_names)
        self.tls_port = tls_port
        self.tls_certfile = Path(tls_certfile).resolve() if tls_certfile is not None else None
        # Chosen once, so that restart() keeps every port.
        self.api_port = api_port if api_port is not None else free_port()
        self.template = Path(template).resolve()
        # debug also logs "Route unregistered: NAME" when a component connection goes away,
        # the only trace of it (nothing is logged at info).
        self.loglevel = loglevel

    # -- the command line (private_servers.launcher) ---------------------------------

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--api-port", type=int, default=5280, help="mod_http_api, for registering accounts")
        parser.add_argument(
            "--component", action="append", help=f"component name (repeatable; default {COMPONENT_JID})"
        )
        parser.add_argument("--tls-certfile", type=Path, help="ONE PEM file with certificate and key")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, secret: str) -> PrivateEjabberd:
        return cls(
            args.dir,
            args.c2s_port,
            args.component_port,
            secret,
            component_names=tuple(args.component or [COMPONENT_JID]),
            tls_port=args.tls_port,
            tls_certfile=args.tls_certfile,
            api_port=args.api_port,
        )

    # -- paths -----------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.directory / "ejabberd.yml"

    @property
    def spool_path(self) -> Path:
        """The Mnesia directory: accounts and rosters of this run only."""
        return self.directory / "spool"

    @property
    def log_path(self) -> Path:
        """ejabberd's own log (error.log is written next to it)."""
        return self.directory / "ejabberd.log"

    @property
    def ports(self) -> list[int]:
        ports = [self.c2s_port, self.component_port, self.api_port]
        if self.tls_port is not None:
            ports.append(self.tls_port)
        return ports

    # -- config ----------------------------------------------------------------------

    def render_config(self) -> str:
        """The config for this run: the template with this object's ports and secret."""
        hosts = {name: {"password": self.secret} for name in self.component_names}
        tls_listener = ""
        if self.tls_port is not None:
            tls_listener = (
                f"  - port: {self.tls_port}\n"
                f'    ip: "{LOOPBACK}"\n'
                "    module: ejabberd_service\n"
                "    tls: true\n"
                f"    certfile: {json.dumps(str(self.tls_certfile))}\n"
                "    global_routes: false\n"
                f"    hosts: {json.dumps(hosts)}\n"
            )
        return string.Template(self.template.read_text()).substitute(
            c2s_port=self.c2s_port,
            component_port=self.component_port,
            api_port=self.api_port,
            # JSON is YAML's flow style, and JSON strings are YAML double-quoted scalars.
            component_hosts=json.dumps(hosts),
            tls_listener=tls_listener,
            loglevel=self.loglevel,
        )

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render_config())
        self.config_path.chmod(0o600)  # it holds the component secret
        return self.config_path

    def command(self) -> list[str]:
        # -noinput: no shell, no stdin. No -sname/-name: no distribution, so no epmd.
        # The spool path is an Erlang string term; JSON string quoting matches it.
        return [ERL, "-noinput", "-mnesia", "dir", json.dumps(str(self.spool_path)), "-s", "ejabberd"]

    def environment(self) -> dict[str, str]:
        environment = {name: value for name, value in os.environ.items() if name not in _SCRUBBED_ENV}
        environment.update(
            {
                "ERL_LIBS": erl_libs(),
                "EJABBERD_CONFIG_PATH": str(self.config_path),
                "EJABBERD_LOG_PATH": str(self.log_path),
                "ERL_CRASH_DUMP": str(self.directory / "erl_crash.dump"),
                "ERL_CRASH_DUMP_BYTES": "0",  # no crash dump files at all
                # erl and ejabberd look in $HOME (.erlang, .erlang.cookie, .ejabberd-modules).
                "HOME": str(self.directory),
            }
        )
        return environment

    # -- life cycle ------------------------------------------------------------------

    def prepare(self) -> None:
        self.write_config()

    def ready(self, log: str) -> bool:
        expected = [
            _ACCEPTING.format(transport="TCP", host=LOOPBACK, port=self.c2s_port, module="ejabberd_c2s"),
            _ACCEPTING.format(transport="TCP", host=LOOPBACK, port=self.component_port, module="ejabberd_service"),
            _ACCEPTING.format(transport="TCP", host=LOOPBACK, port=self.api_port, module="ejabberd_http"),
        ]
        if self.tls_port is not None:
            expected.append(
                _ACCEPTING.format(transport="TLS", host=LOOPBACK, port=self.tls_port, module="ejabberd_service")
            )
        return _STARTED in log and all(line in log for line in expected)

    def bind_failed(self, log: str) -> bool:
        return _BIND_FAILED.search(log) is not None

    # -- accounts --------------------------------------------------------------------

    def _api(self, command: str, arguments: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.api_port}/api/{command}",
            data=json.dumps(arguments).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        # Never through a proxy from the environment: this is loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def register(self, user: str, host: str, password: str) -> None:
        """Create ``user@host``, or reset its password if it exists. The server must be running."""
        if self.pid is None:
            raise RuntimeError("ejabberd is not running; start() it before register()")
        status, body = self._api("register", {"user": user, "host": host, "password": password})
        if status == 409:  # "User ... already registered"
            status, body = self._api("change_password", {"user": user, "host": host, "newpass": password})
        if status != 200:
            raise RuntimeError(f"registering {user}@{host} through mod_http_api failed with HTTP {status}: {body}")
