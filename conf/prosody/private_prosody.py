"""A private Prosody 0.12 server for iqresponder's tests and ``make run``.

Each run gets its own directory (data, pid file, log) and its own loopback ports, so
tests and developers never share state with each other or with a system-wide Prosody.
All per-run values reach ``prosody.cfg.lua`` (next to this file) as environment
variables, which Prosody 0.12 exposes to the config as ``ENV_*`` globals.

This module uses only the standard library on purpose: tests import it through pytest's
``pythonpath = conf/prosody`` and ``make run`` runs it as a script, both without
installing anything.

Command line (what ``make run`` does)::

    python conf/prosody/private_prosody.py --dir DIR --c2s-port 5222 \\
        --component-port 5347 --secret-file conf/secret.txt \\
        --user alice --password alice -- COMMAND ARGS...

Only one launcher runs per directory: it holds a lock on ``DIR/launcher.pid`` (which holds its
pid) while it runs, and a second one exits at once naming the first one's pid. The kernel drops
the lock when the launcher dies, however it dies, so a file left behind never blocks a new run.
A hangup (the terminal closing) stops everything as Ctrl-C does, and if the launcher is killed
outright, Prosody and the command get SIGTERM from the kernel.

Direct TLS (optional): with ``--tls-port``, ``--tls-certificate`` and ``--tls-key`` (or
the matching ``tls_*`` arguments of PrivateProsody) Prosody also listens on that loopback
port with TLS from the first byte, and passes a component stream on to the component
listener once the handshake is done (mod_net_multiplex's ``ssl_ports``).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # conf/, when this runs as a script
from private_server import LOOPBACK, PrivateServer, die_with_caller, free_port, port_in_use

__all__ = ["COMPONENT_JID", "LOOPBACK", "VIRTUAL_HOST", "PrivateProsody", "free_port", "port_in_use"]

DEFAULT_CONFIG = Path(__file__).resolve().with_name("prosody.cfg.lua")
"""The shared config; it takes everything run-specific from the environment."""

VIRTUAL_HOST = "localhost"
"""The client domain defined in the config; accounts live here."""

COMPONENT_JID = "iq.localhost"
"""The external component's name defined in the config."""

STOP_TIMEOUT = 5.0
LOCK_NAME = "launcher.pid"
"""In the run directory: locked while a launcher runs there, and holding its pid."""

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
            raise ValueError("tls_port needs tls_certificate and tls_key")
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


class AlreadyRunning(Exception):
    """Another launcher holds the run directory; ``str()`` says which and how to stop it."""


def claim(directory: Path) -> TextIO:
    """Lock ``directory`` for this process and write its pid there; keep the returned file open.

    flock, not the file's existence, says whether a launcher runs: the kernel releases the lock
    when its holder exits, even by SIGKILL, so a stale file is simply overwritten. The file is
    never removed, since removing it could let two launchers lock two different files.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    lock = path.open("a+")  # not truncated: the holder's pid stays readable for the message
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        raise AlreadyRunning(
            f"already running in {directory} (pid {holder or 'not written yet'}): use that one, or stop it "
            f"first: Ctrl-C in its terminal, or kill {holder or '<pid>'}"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, a plain kill, and the terminal closing: each stops the launcher, cleaning up."""


class _Stopped(Exception):
    """Raised in the main thread when the launcher receives one of ``STOPPING``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    # Ignore the next ones before raising: a closing terminal sends SIGHUP more than once (the
    # shell passes it on, then the kernel sends it as the shell exits), and a second one raised
    # inside the clean-up would cut it short, leaving the command running.
    for stopping in STOPPING:
        signal.signal(stopping, signal.SIG_IGN)
    raise _Stopped(signum)


def _wait_for_command(child: subprocess.Popen[bytes], interruption: int) -> int:
    """Let ``child`` finish after this process was interrupted, and return its status.

    A terminal Ctrl-C reaches the child by itself (same process group), so it gets a
    moment first and the SIGINT is passed on only if it is still running (the SIGINT
    may have been sent to this process alone). A SIGTERM or a SIGHUP may have reached
    this process only, so the child gets a SIGTERM at once: a hangup means "stop",
    but a SIGHUP to the component means "reload its handlers". A child that still
    does not exit is terminated and finally killed.
    """
    if interruption == signal.SIGINT:
        steps = [(1.0, signal.SIGINT), (STOP_TIMEOUT, signal.SIGTERM), (STOP_TIMEOUT, signal.SIGKILL)]
    else:
        child.send_signal(signal.SIGTERM)
        steps = [(STOP_TIMEOUT, signal.SIGKILL)]
    for timeout, next_signal in steps:
        try:
            return child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.send_signal(next_signal)
    return child.wait()


def _exit_status(returncode: int) -> int:
    """Map Popen's -N (killed by signal N) to the shell's 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    # Everything after the first "--" is the command, untouched by argparse, so its
    # own options cannot be mistaken for ours.
    if "--" in argv:
        split = argv.index("--")
        ours, command = argv[:split], argv[split + 1 :]
    else:
        ours, command = argv, []
    parser = argparse.ArgumentParser(
        description="Run a private Prosody on loopback while COMMAND runs.",
        usage="%(prog)s [options] -- COMMAND [ARGS...]",
    )
    parser.add_argument("--dir", type=Path, required=True, help="run directory")
    parser.add_argument("--c2s-port", type=int, default=5222)
    parser.add_argument("--component-port", type=int, default=5347)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password", default="alice")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--tls-port", type=int, help="also listen here with direct TLS (needs the next two)")
    parser.add_argument("--tls-certificate", type=Path, help="PEM certificate (chain) for the TLS port")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for the TLS port")
    args = parser.parse_args(ours)
    if args.tls_port is not None and (args.tls_certificate is None or args.tls_key is None):
        parser.error("--tls-port needs --tls-certificate and --tls-key")
    return args, command


def main(argv: list[str] | None = None) -> int:
    """Start Prosody, run the command in the foreground, stop Prosody, pass on the status.

    Without a command, Prosody simply runs until Ctrl-C.
    """
    args, command = _parse(sys.argv[1:] if argv is None else argv)
    try:
        lock = claim(args.dir)
    except (AlreadyRunning, OSError) as error:
        sys.exit(str(error))
    try:
        secret = args.secret_file.read_text().strip()
    except OSError as error:
        sys.exit(f"cannot read the component secret: {error}")
    if not secret:
        sys.exit(f"the component secret file {args.secret_file} is empty")
    prosody = PrivateProsody(
        args.dir,
        args.c2s_port,
        args.component_port,
        secret,
        config=args.config,
        tls_port=args.tls_port,
        tls_certificate=args.tls_certificate,
        tls_key=args.tls_key,
    )
    prosody.die_with_caller = True
    for port in prosody.ports:
        if port_in_use(port):
            sys.exit(
                f"port {port} on {LOOPBACK} is already in use (by a system Prosody or ejabberd, perhaps); "
                "stop it, or choose other ports with --c2s-port and --component-port "
                "(make run C2S_PORT=... COMPONENT_PORT=...)"
            )

    child: subprocess.Popen[bytes] | None = None
    previous = {signum: signal.getsignal(signum) for signum in STOPPING}
    for signum in STOPPING:
        signal.signal(signum, _stop)
    try:
        prosody.start()
        prosody.register(args.user, VIRTUAL_HOST, args.password)
        print(
            f"Prosody is running (pid {prosody.pid}, log {prosody.log_path}). "
            f"Clients log in on {LOOPBACK}:{args.c2s_port} without TLS as "
            f"{args.user}@{VIRTUAL_HOST}, password {args.password!r}. "
            f"The component {COMPONENT_JID} connects to {LOOPBACK}:{args.component_port} "
            + (f"(or with direct TLS to {LOOPBACK}:{args.tls_port}) " if args.tls_port is not None else "")
            + f"with the secret in {args.secret_file}; send an Iq to {COMPONENT_JID} "
            "to reach it. Ctrl-C stops everything.",
            flush=True,
        )
        if not command:
            signal.pause()  # until Ctrl-C, SIGTERM or a hangup
            return 0
        child = subprocess.Popen(command, preexec_fn=die_with_caller())  # noqa: PLW1509 - no threads here
        return _exit_status(child.wait())
    except _Stopped as stopped:
        if child is None:
            return 128 + stopped.signum
        return _exit_status(_wait_for_command(child, stopped.signum))
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        # Start-up failures and a command that cannot be run: one message, no traceback.
        print(error, file=sys.stderr)
        return 1
    finally:
        for signum in STOPPING:
            signal.signal(signum, signal.SIG_IGN)
        prosody.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
