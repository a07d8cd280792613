"""The command line of ``make run``: a private server, and a command in the foreground while it runs.

Command line (what ``make run`` does)::

    python -m private_servers prosody --dir DIR --c2s-port 5222 \\
        --component-port 5347 --secret-file conf/secret.txt \\
        --user alice --password alice -- COMMAND ARGS...

``ejabberd`` in place of ``prosody`` runs a private ejabberd the same way. Without a command,
the server simply runs until Ctrl-C.

Only one launcher runs per directory: it holds a lock on ``DIR/launcher.pid`` (which holds its
pid) while it runs, and a second one exits at once naming the first one's pid. The kernel drops
the lock when the launcher dies, however it dies, so a file left behind never blocks a new run.
A hangup (the terminal closing) stops everything as Ctrl-C does, and if the launcher is killed
outright, the server and the command get SIGTERM from the kernel.

mirakuru starts and stops the server (private_servers.base). It has no notion of a command in
the foreground of a terminal, which gets Ctrl-C with its process group, nor of passing a
hangup on as a stop; that supervision is this module's, and only this module's.
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

from private_servers.base import LOOPBACK, VIRTUAL_HOST, PrivateServer, die_with_caller, port_in_use
from private_servers.ejabberd import PrivateEjabberd
from private_servers.prosody import PrivateProsody

SERVERS: dict[str, type[PrivateProsody | PrivateEjabberd]] = {
    "prosody": PrivateProsody,
    "ejabberd": PrivateEjabberd,
}

STOP_TIMEOUT = 5.0
LOCK_NAME = "launcher.pid"
"""In the run directory: locked while a launcher runs there, and holding its pid."""


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m private_servers",
        description="Run a private XMPP server on loopback while COMMAND runs (or until Ctrl-C).",
    )
    kinds = parser.add_subparsers(dest="server", required=True, metavar="SERVER")
    for name, server in SERVERS.items():
        sub = kinds.add_parser(name, help=f"a private {server.name}", usage="%(prog)s [options] [-- COMMAND [ARGS...]]")
        sub.add_argument("--dir", type=Path, required=True, help="run directory")
        sub.add_argument("--c2s-port", type=int, default=5222)
        sub.add_argument("--component-port", type=int, default=5347)
        sub.add_argument("--secret-file", type=Path, required=True)
        sub.add_argument("--user", default="alice")
        sub.add_argument("--password", default="alice")
        sub.add_argument("--tls-port", type=int, help="also take components with direct TLS here")
        server.add_arguments(sub)
    return parser


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    """Everything after the first "--" is the command, untouched by argparse, so its own
    options cannot be mistaken for ours."""
    if "--" not in argv:
        return argv, []
    split = argv.index("--")
    return argv[:split], argv[split + 1 :]


def _banner(server: PrivateServer, args: argparse.Namespace) -> str:
    names = server.component_names
    tls = f"(or with direct TLS to {LOOPBACK}:{args.tls_port}) " if args.tls_port is not None else ""
    return (
        f"{server.name} is running (pid {server.pid}, log {server.log_path}). "
        f"Clients log in on {LOOPBACK}:{args.c2s_port} without TLS as "
        f"{args.user}@{VIRTUAL_HOST}, password {args.password!r}. "
        f"The component {' or '.join(names)} connects to {LOOPBACK}:{args.component_port} {tls}"
        f"with the secret in {args.secret_file}; send an Iq to {names[0]} to reach it. Ctrl-C stops everything."
    )


def main(argv: list[str] | None = None) -> int:
    """Start the server, run the command in the foreground, stop the server, pass on the status."""
    ours, command = _split(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(ours)
    try:
        secret = args.secret_file.read_text().strip()
    except OSError as error:
        sys.exit(f"cannot read the component secret: {error}")
    if not secret:
        sys.exit(f"the component secret file {args.secret_file} is empty")
    try:
        server = SERVERS[args.server].from_arguments(args, secret)
    except ValueError as error:
        parser.error(str(error))
    server.die_with_caller = True
    try:
        lock = claim(args.dir)
    except (AlreadyRunning, OSError) as error:
        sys.exit(str(error))
    for port in server.ports:
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
        server.start()
        server.register(args.user, VIRTUAL_HOST, args.password)
        print(_banner(server, args), flush=True)
        if not command:
            signal.pause()  # until Ctrl-C, SIGTERM or a hangup
            return 0
        child = subprocess.Popen(die_with_caller(command))
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
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        lock.close()
