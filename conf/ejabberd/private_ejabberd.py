"""A private ejabberd 23.01 server for iqresponder's tests, next to PrivateProsody.

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

Like private_prosody.py this module uses only the standard library.

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
import signal
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # conf/, when this runs as a script
from private_server import LOOPBACK, POLL_INTERVAL, PrivateServer, free_port

__all__ = ["COMPONENT_JID", "VIRTUAL_HOST", "PrivateEjabberd", "free_port"]

TEMPLATE = Path(__file__).resolve().with_name("ejabberd.yml.template")
"""Rendered per run into ``directory/ejabberd.yml``."""

VIRTUAL_HOST = "localhost"
COMPONENT_JID = "iq.localhost"

ERL = "erl"
EJABBERDCTL = Path("/usr/sbin/ejabberdctl")
DEFAULT_ERL_LIBS = "/usr/lib/x86_64-linux-gnu"
"""Where Debian's ejabberd keeps its own OTP applications (ejabberdctl sets ERL_LIBS to it)."""

CHILD_EXIT_TIMEOUT = 2.0

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


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` (field 22 of /proc/PID/stat), or None if it is gone.

    A zombie counts as gone: it has exited and only waits for its parent (here often
    init, after the VM died) to reap it.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after it do not.
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def _descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid``, with its start time (to recognise it later)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        started = _start_time(child)
        if started is not None:
            found[child] = started
            pending.extend(children.get(child, []))
    return found


class PrivateEjabberd(PrivateServer):
    """One ejabberd (one Erlang VM) on loopback ports, with its config and spool in ``directory``.

    start() returns only when the VM reports ejabberd started and every listener accepts
    (about 0.9 s after erl starts here); stop() signals only the VM that start() launched
    (SIGTERM makes it run init:stop(), which takes 1-3 s), and then makes sure the helper
    programs the VM ran (erl_child_setup, inet_gethost, memsup, eimp) are gone too.
    """

    name = "ejabberd"
    start_timeout = 15.0
    stop_timeout = 10.0

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
            raise ValueError("tls_port and tls_certfile go together")
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
        # The VM's helper programs as last seen (pid -> start time): they outlive a VM
        # that exits by itself, and are reparented to init, so they cannot be found later.
        self._helpers: dict[int, str] = {}

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

    def watch(self, process: subprocess.Popen[bytes]) -> None:
        self._helpers.update(_descendants(process.pid))

    def stopped(self, process: subprocess.Popen[bytes]) -> None:
        """The VM's helper programs each run in a session of their own, so a process-group
        signal would not reach them; they exit by themselves once the VM is gone. Any that
        are still there after CHILD_EXIT_TIMEOUT are killed, recognised by pid *and* start
        time so that a recycled pid is never hit."""
        helpers, self._helpers = self._helpers, {}
        deadline = time.monotonic() + CHILD_EXIT_TIMEOUT
        while True:
            helpers = {pid: started for pid, started in helpers.items() if _start_time(pid) == started}
            if not helpers or time.monotonic() > deadline:
                break
            time.sleep(POLL_INTERVAL)
        for pid in helpers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

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


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run a private ejabberd in the foreground until Ctrl-C (for trying things by hand)."""
    parser = argparse.ArgumentParser(description="Run a private ejabberd on loopback until Ctrl-C.")
    parser.add_argument("--dir", type=Path, required=True, help="run directory")
    parser.add_argument("--c2s-port", type=int, default=5222)
    parser.add_argument("--component-port", type=int, default=5347)
    parser.add_argument("--api-port", type=int, default=5280)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--component", action="append", help=f"component name (repeatable; default {COMPONENT_JID})")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password", default="alice")
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--tls-certfile", type=Path, help="ONE PEM file with certificate and key")
    args = parser.parse_args(argv)
    if (args.tls_port is None) != (args.tls_certfile is None):
        parser.error("--tls-port and --tls-certfile go together")
    secret = args.secret_file.read_text().strip()
    if not secret:
        parser.error(f"the component secret file {args.secret_file} is empty")
    server = PrivateEjabberd(
        args.dir,
        args.c2s_port,
        args.component_port,
        secret,
        component_names=tuple(args.component or [COMPONENT_JID]),
        tls_port=args.tls_port,
        tls_certfile=args.tls_certfile,
        api_port=args.api_port,
    )
    # SIGTERM ends the command like Ctrl-C does, so that ejabberd is stopped on the way out.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # even when started in the background with SIGINT ignored
    try:
        started = time.monotonic()
        server.start()
        server.register(args.user, VIRTUAL_HOST, args.password)
        print(
            f"ejabberd is running (pid {server.pid}, ready in {time.monotonic() - started:.2f} s, "
            f"log {server.log_path}); {args.user}@{VIRTUAL_HOST} / {args.password!r} on "
            f"{LOOPBACK}:{args.c2s_port}, components on {LOOPBACK}:{args.component_port}. Ctrl-C stops it.",
            flush=True,
        )
        signal.pause()
    except KeyboardInterrupt:
        return 130
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        # A second signal must not cut the clean-up short and orphan the VM.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
