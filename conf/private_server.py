"""What a private XMPP server for iqresponder's tests and ``make run`` needs, whichever server it is.

``PrivateServer`` runs one server process on loopback ports with everything it writes in its
own directory, waits until its log says it listens and every port accepts, and stops only
the process it started, by pid. ``conf/prosody/private_prosody.py`` and
``conf/ejabberd/private_ejabberd.py`` say how to start each server and how to tell it is ready.

Standard library only: the launchers run as scripts and are imported by the tests, both
without installing anything.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

LOOPBACK = "127.0.0.1"
POLL_INTERVAL = 0.02
LOG_TAIL_LINES = 30
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Instances with a live process, stopped at interpreter exit so that a run that forgets
# stop() (or dies on an exception) leaves no server behind. A plain set, not a weak one:
# an instance dropped while running must still be stopped.
_running: set[PrivateServer] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks it (bind to port 0), which keeps parallel runs apart. Another process
    may still take it before the server binds it; start() detects that.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Tell whether something already listens on 127.0.0.1:port.

    Binding with SO_REUSEADDR, as the servers do, ignores connections left in TIME_WAIT by
    a previous run, so a restart on the same port is not mistaken for a clash.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def die_with_caller() -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel send the child SIGTERM when this process dies, even by SIGKILL.

    For a launcher in a terminal: whatever ends it, what it started does not run on, holding the
    ports and the run directory, with nobody left to stop it. Linux only. The signal follows the
    thread that starts the child, so use it from the main thread of a process without other threads
    (a ``preexec_fn`` is not safe with threads anyway).
    """
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child
    caller = os.getpid()

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != caller:  # the caller died before prctl: nobody would signal this child
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} is missing)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


class PrivateServer:
    """One server process on loopback ports, with its files in ``directory``.

    A subclass names the server, gives its command, environment and ports, and says from
    its log whether it is ready or could not bind a port.
    """

    name: ClassVar[str] = "the server"
    start_timeout: ClassVar[float] = 10.0
    stop_timeout: ClassVar[float] = 5.0

    def __init__(self, directory: Path) -> None:
        # Absolute, because the server runs with the directory as its working directory.
        self.directory = Path(directory).resolve()
        self._process: subprocess.Popen[bytes] | None = None
        # Whether the server gets SIGTERM when the process that started it dies (see die_with_caller()).
        self.die_with_caller = False

    # -- what a subclass provides --------------------------------------------------

    @property
    def log_path(self) -> Path:
        """The server's own log, which readiness is read from."""
        raise NotImplementedError

    @property
    def ports(self) -> list[int]:
        """Every port the server listens on."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write whatever the server reads at start (its config, for one)."""

    def ready(self, log: str) -> bool:
        """Whether what the server logged since this start says every listener is up."""
        raise NotImplementedError

    def bind_failed(self, log: str) -> bool:
        """Whether the server logged that it could not open a listener (it may go on running)."""
        raise NotImplementedError

    def watch(self, process: subprocess.Popen[bytes]) -> None:
        """Called on every poll while the server starts, and once more just before it is stopped."""

    def stopped(self, process: subprocess.Popen[bytes]) -> None:
        """Called once the server process has exited in stop()."""

    # -- the life cycle ------------------------------------------------------------

    @property
    def output_path(self) -> Path:
        """The process's stdout and stderr: config errors and crashes end up here."""
        return self.log_path.with_suffix(".out")

    @property
    def pid(self) -> int | None:
        """The pid of the running server, or None when it is not running."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def start(self) -> None:
        """Launch the server and wait until it is ready and every port accepts connections.

        Raises RuntimeError, with the tails of its log and output, if a port is taken, if
        the process exits, or if it is not ready within ``start_timeout`` seconds.
        """
        if self.pid is not None:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        for port in self.ports:
            if port_in_use(port):
                raise RuntimeError(f"port {port} on {LOOPBACK} is already in use")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prepare()
        # The log is appended to across restarts; only read what this start writes.
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.output_path.open("ab") as output:
            self._process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C in the terminal goes to the foreground process
                # group only, and the caller decides when the server stops.
                start_new_session=True,
                preexec_fn=die_with_caller() if self.die_with_caller else None,  # noqa: PLW1509 - off unless asked
            )
        _running.add(self)
        try:
            self._wait_until_ready(log_offset)
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self, log_offset: int) -> None:
        assert self._process is not None
        waiting = set(self.ports)
        deadline = time.monotonic() + self.start_timeout
        while True:
            status = self._process.poll()
            if status is not None:
                self._fail(f"{self.name} exited with status {status} while starting")
            self.watch(self._process)
            log = self.read_log(log_offset)
            if self.bind_failed(log):
                self._fail(f"{self.name} could not open a listener")
            if self.ready(log):
                waiting = {port for port in waiting if not accepts(port)}
                if not waiting:
                    return
            if time.monotonic() > deadline:
                self._fail(f"{self.name} was not ready after {self.start_timeout:g} s")
            time.sleep(POLL_INTERVAL)

    def read_log(self, offset: int = 0) -> str:
        """The server's log from byte ``offset`` on ("" before it exists)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _fail(self, reason: str) -> None:
        self.stop()
        raise RuntimeError(
            f"{reason}.\n--- {self.log_path}:\n{tail(self.log_path)}\n--- {self.output_path}:\n{tail(self.output_path)}"
        )

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``stop_timeout``. Safe to repeat."""
        process, self._process = self._process, None
        _running.discard(self)
        if process is None:
            return
        # Popen only signals its own child, and not once it has been reaped, so a recycled
        # pid can never be hit.
        if process.poll() is None:
            self.watch(process)
            process.terminate()
            try:
                process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.stopped(process)

    def restart(self) -> None:
        """Stop and start again on the same ports; accounts and data are kept."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()
