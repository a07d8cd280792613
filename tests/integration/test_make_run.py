"""``make run`` as a new user runs it: typed into an interactive shell in a terminal (a pty), on free ports.

The shell matters: closing a terminal hangs up its shell, and the shell passes the hangup on to
its jobs, as bash does in a terminal window or over ssh. Each test finds the processes by pid
(the launcher's pid file, Prosody's pid in the launcher's banner, the component as the
launcher's other child) and checks that they are gone when they should be.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from private_servers.base import free_port
from private_servers.launcher import LOCK_NAME
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

START_TIMEOUT = 60.0  # make run, Prosody, the account and the component's handshake; pip only if pyproject changed
STOP_TIMEOUT = 20.0
PROBE_TIMEOUT = 30
# What a user's shell has, without what an outer make (make test) passes to its children.
ENVIRONMENT = {
    **{
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MAKE", "MFLAGS")) and name != "IQRESPONDER_PROBE_PASSWORD"
    },
    "HISTFILE": "/dev/null",
    "TERM": "dumb",
}
TERMINAL = {**ENVIRONMENT, "PS1": "terminal> "}
PROMPT = r"^terminal> "
"""What the shell shows when it waits for a command (its PS1)."""
WARNING = re.compile(r"#(warn|error|critical)\]|Traceback")


def pid_gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` has ended within ``timeout`` seconds (a zombie counts as ended)."""
    try:
        descriptor = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)  # readable once the process has exited
        return bool(poller.poll(timeout * 1000))
    finally:
        os.close(descriptor)


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


class Terminal:
    """An interactive bash in a pty of its own, with ``cwd`` the checkout; what it shows is in ``text``."""

    def __init__(self, cwd: Path = ROOT) -> None:
        self._master, slave = os.openpty()
        self._wake, self._waker = os.pipe()
        self.text = ""
        self.open = True
        self._typed = 0  # where the output of the last command typed begins
        self.pids: list[int] = []  # of everything a run started here, so that close() can stop what a test left
        self._changed = threading.Condition()
        # setsid --ctty makes the pty the shell's controlling terminal, so Ctrl-C and hangups work as in a terminal.
        self.shell = subprocess.Popen(
            ["setsid", "--ctty", "bash", "--norc", "--noprofile", "-i"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=TERMINAL,
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._wake], [], [])
            if self._wake in ready:
                break
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: nothing holds the terminal any more
                chunk = b""
            if not chunk:
                break
            with self._changed:
                self.text += chunk.decode(errors="replace").replace("\r\n", "\n")
                self._changed.notify_all()
        os.close(self._master)  # the terminal window closes: the kernel hangs up the shell
        with self._changed:
            self.open = False
            self._changed.notify_all()

    def type(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def wait_for(self, pattern: str, start: int = 0, timeout: float = START_TIMEOUT) -> re.Match:
        """Wait until the regular expression ``pattern`` matches what the terminal showed from ``start`` on."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (match := re.compile(pattern, re.MULTILINE).search(self.text, start)):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.open:
                    raise AssertionError(f"{pattern!r} did not show within {timeout} s:\n{self.text}")
                self._changed.wait(remaining)
            return match

    def hang_up(self) -> None:
        """Close the terminal, as closing its window does."""
        if self.open:
            os.write(self._waker, b"!")
        self._reader.join(STOP_TIMEOUT)

    def start(self, command: str, run_dir: Path) -> Run:
        """Type ``command`` (make run, or the launcher it runs) and wait until the component is connected."""
        self.wait_for(PROMPT, self._typed)  # what was typed before has ended, so what follows is this command's
        begins = self._typed = len(self.text)
        self.type(command + "\n")
        run = Run(self, run_dir, begins)
        self.pids.extend(run.pids.values())
        return run

    def close(self) -> None:
        """Hang up, then kill by pid whatever outlived the hangup (which a passing test never leaves)."""
        self.hang_up()
        try:
            self.shell.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.shell.kill()
            self.shell.wait()
        for pid in self.pids:
            if not pid_gone(pid, STOP_TIMEOUT):
                os.kill(pid, signal.SIGKILL)
        os.close(self._wake)
        os.close(self._waker)


class Run:
    """One ``make run`` (or launcher) typed into ``terminal``, with the pids of what it started."""

    def __init__(self, terminal: Terminal, run_dir: Path, start: int) -> None:
        ready = terminal.wait_for(rf"Authenticated as iq\.localhost|{PROMPT}", start)
        assert "Authenticated" in ready.group(), f"the command ended:\n{terminal.text[start:]}"
        banner = re.compile(r"Prosody is running \(pid (\d+)").search(terminal.text, start)
        self.terminal = terminal
        self.begins = start
        self.launcher = int((run_dir / "prosody" / LOCK_NAME).read_text())
        self.prosody = int(banner.group(1))
        [self.component] = [pid for pid in children(self.launcher) if pid != self.prosody]
        self.make = int(Path(f"/proc/{self.launcher}/stat").read_text().rsplit(")", 1)[1].split()[1])

    @property
    def pids(self) -> dict[str, int]:
        return {"launcher": self.launcher, "Prosody": self.prosody, "component": self.component}

    def output(self) -> str:
        return self.terminal.text[self.begins :]

    def assert_all_gone(self, timeout: float = STOP_TIMEOUT) -> None:
        running = {name: pid for name, pid in self.pids.items() if not pid_gone(pid, timeout)}
        assert not running, f"still running: {running}\n{self.output()}"


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def run_dir(tmp_path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def make_run(ports, run_dir) -> str:
    """``make run`` as the README gives it, on free ports and with its files in the test's directory."""
    c2s, component = ports
    return f"make run C2S_PORT={c2s} COMPONENT_PORT={component} RUN_DIR={run_dir}"


@pytest.fixture
def launcher(ports, run_dir) -> str:
    """What ``make run`` runs, typed without make."""
    c2s, component = ports
    return (
        f".venv/bin/python -m private_servers prosody --dir {run_dir}/prosody --c2s-port {c2s} "
        f"--component-port {component} --secret-file conf/secret.txt --user alice --password alice -- "
        f".venv/bin/twistd --nodaemon --pidfile= iqresponder --config conf/iqresponder.toml "
        f"--server tcp:host=127.0.0.1:port={component}"
    )


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    opened = Terminal()
    try:
        yield opened
    finally:
        opened.close()


def probe(c2s_port: int, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [".venv/bin/iqresponder-probe", "--jid", "alice@localhost", "--port", str(c2s_port), *arguments],
        cwd=ROOT,
        env={**ENVIRONMENT, "IQRESPONDER_PROBE_PASSWORD": "alice"},
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        check=False,
    )


def untracked_and_ignored() -> set[str]:
    """Every file in the checkout that git does not track, but for the virtualenv and Python's bytecode caches."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    untracked = [line[3:] for line in status.stdout.splitlines() if line.startswith(("??", "!!"))]
    return {path for path in untracked if not path.startswith(".venv/") and "/__pycache__/" not in f"/{path}"}


def component_state(paths: set[str]) -> set[str]:
    """The store's SQLite file (and its journal) that the component makes beside conf/iqresponder.toml."""
    return {path for path in paths if path.startswith("conf/store.sqlite3")}


def test_ctrl_c_stops_the_component_and_prosody_and_logs_no_warning(terminal, make_run, run_dir):
    run = terminal.start(make_run, run_dir)
    terminal.type("\x03")
    run.assert_all_gone()
    assert pid_gone(run.make, STOP_TIMEOUT)
    assert "Closed the connection" in run.output()
    assert not WARNING.search(run.output()), run.output()


def test_sigterm_to_make_stops_everything_and_logs_no_warning(terminal, make_run, run_dir):
    run = terminal.start(make_run, run_dir)
    os.kill(run.make, signal.SIGTERM)
    run.assert_all_gone()
    assert "Closed the connection" in run.output()
    assert not WARNING.search(run.output()), run.output()


def test_closing_the_terminal_stops_the_component_and_prosody(terminal, make_run, run_dir):
    run = terminal.start(make_run, run_dir)
    terminal.hang_up()
    run.assert_all_gone()
    assert pid_gone(run.make, STOP_TIMEOUT)


def test_a_hangup_of_the_launcher_alone_stops_everything(terminal, launcher, run_dir):
    run = terminal.start(launcher, run_dir)
    os.kill(run.launcher, signal.SIGHUP)
    run.assert_all_gone()
    # The component was told to stop, not to reload its handlers (which a SIGHUP means to it).
    assert "Received SIGTERM" in run.output() and "Reloaded" not in run.output()


def test_a_second_make_run_says_at_once_that_one_is_running_with_its_pid(terminal, make_run, run_dir, ports):
    run = terminal.start(make_run, run_dir)
    began = time.monotonic()
    second = subprocess.run(
        make_run.split(), cwd=ROOT, env=ENVIRONMENT, capture_output=True, text=True, timeout=STOP_TIMEOUT, check=False
    )
    took = time.monotonic() - began
    assert second.returncode != 0
    assert f"already running in {run_dir / 'prosody'} (pid {run.launcher})" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr and "lua" not in second.stderr.lower(), second.stderr
    assert took < 5.0  # no start-up attempt: Prosody's own would take 10 s to give up
    assert probe(ports[0], "iq.localhost", "ping").returncode == 0  # the first run serves on
    assert int((run_dir / "prosody" / LOCK_NAME).read_text()) == run.launcher


def test_a_killed_launcher_takes_its_servers_along_and_its_pid_file_does_not_block_the_next_run(
    terminal, launcher, make_run, run_dir
):
    killed = terminal.start(launcher, run_dir)
    os.kill(killed.launcher, signal.SIGKILL)
    killed.assert_all_gone()  # the kernel stopped Prosody and the component (PR_SET_PDEATHSIG)
    assert int((run_dir / "prosody" / LOCK_NAME).read_text()) == killed.launcher  # the stale pid file stays

    run = terminal.start(make_run, run_dir)
    assert run.launcher != killed.launcher
    terminal.type("\x03")
    run.assert_all_gone()


def test_handlers_adds_directories_to_the_bundled_ones(terminal, make_run, run_dir, ports):
    run = terminal.start(f"{make_run} HANDLERS=examples/handlers", run_dir)
    assert "Loaded handler module custom_xep" in run.output() and "Loaded handler module ping" in run.output()
    stored = probe(
        ports[0],
        "iq.localhost",
        "raw",
        "--xml",
        "<iq type='set'><query xmlns='custom-xep'><item key='colour'>blue</item></query></iq>",
    )
    assert stored.returncode == 0, stored.stderr
    assert probe(ports[0], "iq.localhost", "ping").returncode == 0
    terminal.type("\x03")
    run.assert_all_gone()


def probe_blocks(*pages: Path) -> list[str]:
    """Every shell block of these pages that runs the probe, as typed (dedented out of list items)."""
    blocks = [
        block
        for page in pages
        for _, block in re.findall(r"^( *)```sh\n(.*?)^ *```", page.read_text(), re.MULTILINE | re.DOTALL)
    ]
    return [textwrap.dedent(block) for block in blocks if "iqresponder-probe" in block]


def readme_probe_blocks() -> list[str]:
    """The probe blocks of the README, then those of the documentation's pages."""
    pages = sorted(page for page in (ROOT / "docs").rglob("*.md") if "_build" not in page.parts)
    return probe_blocks(ROOT / "README.md", *pages)


def test_the_readme_shows_a_first_query_on_its_first_screen():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:40])
    first_query = probe_blocks(ROOT / "README.md")[0]
    assert first_query in first_screen
    assert first_screen.index("make run") < first_screen.index(first_query)


def test_the_readmes_probe_commands_work_after_make_run_and_leave_no_file(terminal, make_run, run_dir, ports):
    run = terminal.start(f"{make_run} HANDLERS=examples/handlers", run_dir)
    before = untracked_and_ignored()
    for block in readme_probe_blocks():
        # As typed in a second terminal; --port only because this make run is not on the README's 5222.
        typed = block.replace("iqresponder-probe", f"iqresponder-probe --port {ports[0]}")
        result = subprocess.run(
            ["sh", "-ec", typed],
            check=False,
            cwd=ROOT,
            env=ENVIRONMENT,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
        assert result.returncode == 0, f"{block}\n{result.stderr}"
        assert result.stdout.count('type="result"') == block.count("iqresponder-probe"), result.stdout
    after = untracked_and_ignored()
    # The example's set keeps its value in the component's store, which make run's configuration puts in
    # conf/store.sqlite3; besides that state, nothing is left.
    assert after - component_state(after) == before - component_state(before)
    terminal.type("\x03")
    run.assert_all_gone()
