"""What a private XMPP server needs, whichever server it is: start it on loopback, know when it is ready, stop it.

mirakuru carries the process: it starts the server in a session of its own with a marker in
its environment, refuses to start when a port is taken, waits for the readiness check within
a deadline (killing the server when it passes), and stops it with SIGTERM to its process
group, SIGKILL after the deadline, and the same signal to every process still carrying the
marker (the helper programs a server runs in sessions of their own). What stays here is what
mirakuru cannot know: which ports, which log lines say ready or failed, and a failure message
with the tails of the log. ``prosody`` and ``ejabberd`` say how to run each server.
"""

from __future__ import annotations

import atexit
import errno
import socket
import subprocess
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar, Self

import mirakuru.base
from mirakuru import Executor
from mirakuru.base import ENV_UUID
from mirakuru.exceptions import AlreadyRunning, ProcessExitedWithError, ProcessFinishedWithError, TimeoutExpired

LOOPBACK = "127.0.0.1"
VIRTUAL_HOST = "localhost"
"""The client domain both servers' configs define; accounts live here."""
COMPONENT_JID = "iq.localhost"
"""The external component's name both servers' configs define."""
POLL_INTERVAL = 0.02
LOG_TAIL_LINES = 30

# mirakuru's own exit hook SIGKILLs every process whose marker merely *contains* this process's
# pid as text, which can be a server of another run on this machine. The servers of this process
# are stopped by _stop_all() below instead, each by its own executor.
atexit.unregister(mirakuru.base.cleanup_subprocesses)

# Servers with a live process, stopped at interpreter exit so that a run that forgets stop()
# (or dies on an exception) leaves no server behind. A plain set, not a weak one: a server
# dropped while running must still be stopped.
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


def die_with_caller(command: list[str]) -> list[str]:
    """``command``, run so that the kernel sends it SIGTERM when the process that starts it dies, even by SIGKILL.

    For a launcher in a terminal: whatever ends it, what it started does not run on, holding
    the ports and the run directory, with nobody left to stop it. util-linux's setpriv sets
    PR_SET_PDEATHSIG and then executes the command, which keeps setpriv's pid. Linux only. The
    signal follows the thread that starts the command, so start it from the main thread.
    """
    return ["setpriv", "--pdeathsig", "TERM", "--", *command]


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


class StartFailed(Exception):
    """The server showed, while starting, that it will not become ready."""


class _ServerExecutor(Executor):
    """mirakuru's executor for one start of ``server``: ready when its log says so and every port accepts."""

    def __init__(self, server: PrivateServer, command: list[str], log_offset: int, output: IO[bytes]) -> None:
        super().__init__(
            command,
            cwd=str(server.directory),
            timeout=server.timeout,
            sleep=POLL_INTERVAL,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        self._server = server
        self._environment = server.environment()
        self._log_offset = log_offset  # the log is appended to across restarts; only what this start writes counts
        self._waiting = set(server.ports)

    @property
    def envvars(self) -> dict[str, str]:
        # Exactly the server's environment (which leaves out what must not reach the server),
        # plus mirakuru's marker; mirakuru's own adds the whole of os.environ.
        return {**self._environment, ENV_UUID: super().envvars[ENV_UUID]}

    def pre_start_check(self) -> bool:
        return any(port_in_use(port) for port in self._server.ports)

    def after_start_check(self) -> bool:
        assert self.process is not None
        status = self.process.poll()
        if status is not None:  # mirakuru only notices a non-zero status
            raise StartFailed(f"{self._server.name} exited with status {status} while starting")
        log = self._server.read_log(self._log_offset)
        if self._server.bind_failed(log):
            raise StartFailed(f"{self._server.name} could not open a listener")
        if not self._server.ready(log):
            return False
        self._waiting = {port for port in self._waiting if not accepts(port)}
        return not self._waiting


class PrivateServer:
    """One server process on loopback ports, with its files in ``directory``.

    A subclass names the server, gives its command, environment and ports, and says from
    its log whether it is ready or could not bind a port.
    """

    name: ClassVar[str] = "the server"
    component_names: tuple[str, ...] = (COMPONENT_JID,)
    """The external components' names the server's config defines."""
    timeout: ClassVar[float] = 10.0
    """Seconds to become ready, and to exit after SIGTERM before it gets SIGKILL."""

    def __init__(self, directory: Path) -> None:
        # Absolute, because the server runs with the directory as its working directory.
        self.directory = Path(directory).resolve()
        self._executor: _ServerExecutor | None = None
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

    # -- the life cycle ------------------------------------------------------------

    @property
    def output_path(self) -> Path:
        """The process's stdout and stderr: config errors and crashes end up here."""
        return self.log_path.with_suffix(".out")

    @property
    def pid(self) -> int | None:
        """The pid of the running server, or None when it is not running."""
        if self._executor is None or not self._executor.running():
            return None
        assert self._executor.process is not None
        return self._executor.process.pid

    def start(self) -> None:
        """Launch the server and wait until it is ready and every port accepts connections.

        Raises RuntimeError, with the tails of its log and output, if a port is taken, if
        the process exits, or if it is not ready within ``timeout`` seconds.
        """
        if self.pid is not None:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prepare()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = die_with_caller(self.command()) if self.die_with_caller else self.command()
        with self.output_path.open("ab") as output:
            self._executor = _ServerExecutor(self, command, log_offset, output)
            _running.add(self)
            try:
                self._executor.start()
            except AlreadyRunning:
                self.stop()
                taken = [port for port in self.ports if port_in_use(port)] or self.ports
                raise RuntimeError(f"port {taken[0]} on {LOOPBACK} is already in use") from None
            except StartFailed as failed:
                self._fail(str(failed))
            except ProcessExitedWithError as exited:
                self._fail(f"{self.name} exited with status {exited.exit_code} while starting")
            except TimeoutExpired:
                self._fail(f"{self.name} was not ready after {self.timeout:g} s")
            except BaseException:
                self.stop()
                raise

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
        ) from None

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout``. Safe to repeat."""
        executor, self._executor = self._executor, None
        _running.discard(self)
        if executor is None:
            return
        if executor.running():
            try:
                executor.stop()
            except ProcessFinishedWithError:
                pass  # it exited with a status of its own choosing; it is stopped all the same
        else:
            # It exited by itself and has been reaped, so its pid may be another process's by
            # now: only what still carries its marker is signalled.
            executor.kill()

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
