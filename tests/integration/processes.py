"""The component as operators run it: twistd in a child process, with its log read line by line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar, TypeVar

T = TypeVar("T")

EVENT_START = re.compile(r"\d{4}-\d\d-\d\dT")
"""A line of the text log twistd and twist write that starts an event (its time stamp)."""
FAILURE_MARKS = ("#error]", "#critical]", "Traceback (most recent call last)", "Unhandled error", "Unhandled Error")
"""What marks a failure in an event of that log (``[namespace#level]``, a traceback)."""
TWISTD = Path(sys.executable).parent / "twistd"
TWIST = Path(sys.executable).parent / "twist"


class ComponentProcess:
    """``twistd -n iqresponder --config FILE`` (or ``twist``) started by the test and stopped by its pid."""

    started: ClassVar[list[ComponentProcess]] = []  # every one, so the session can stop any a failed test left behind

    def __init__(
        self,
        config: Path,
        *extra: str,
        twist: bool = False,
        env: dict[str, str] | None = None,
        twistd_options: tuple[str, ...] = ("--logfile=-",),
        twist_options: tuple[str, ...] = ("--log-format=text",),
        changed: threading.Condition | None = None,
        twistd: Path = TWISTD,
    ) -> None:
        """``changed``: a condition several processes share, so that ``wait_until`` can watch all their logs;
        ``twistd``: that of another installation (a wheel in a virtualenv of its own)."""
        self.config = config
        self.lines: list[str] = []
        self._changed = changed or threading.Condition()
        runner = [str(TWIST), *twist_options] if twist else [str(twistd), "--nodaemon", "--pidfile=", *twistd_options]
        command = [*runner, "iqresponder", "--config", str(config), *extra]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ComponentProcess.started.append(self)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 15.0) -> str:
        """Wait until ``text`` has appeared in ``count`` log lines; return the last such line."""

        def found() -> str | None:
            matches = [line for line in self.lines if text in line]
            return matches[count - 1] if len(matches) >= count else None

        return self.wait_until(found, f"a log line with {text!r} (x{count})", timeout)

    def wait_until(self, found: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
        """Wait until ``found()``, called each time a line is logged, returns something other than None; return it.

        ``found`` runs under the lock that guards ``lines``: of this process, and of every process
        made with the same ``changed`` condition, so it may read all their lines.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while (result := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {what} within {timeout} s:\n" + "\n".join(self.lines))
                self._changed.wait(min(remaining, 0.5))  # wakes to notice the process has exited
            return result

    def failures(self) -> list[str]:
        """The logged failures: error and critical events, and any event with a traceback, each with its lines.

        The component logs a failure and carries on where one request's fault must not end the
        stream, so a test that only reads replies cannot see one; it reads them here.
        """
        with self._changed:
            events: list[list[str]] = []
            for line in self.lines:
                if EVENT_START.match(line) or not events:
                    events.append([line])
                else:  # a traceback's lines, or a message's own
                    events[-1].append(line)
        texts = ["\n".join(event) for event in events]
        return [text for text in texts if any(mark in text for mark in FAILURE_MARKS)]

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the process to exit by itself; return its exit status."""
        status = self.process.wait(timeout)
        self._reader.join(timeout)
        return status

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM our child by pid, then SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._reader.join(timeout)
        return self.process.returncode


def write_config(
    path: Path,
    server: str,
    secret_file: Path,
    directories: list[Path],
    extra: str = "",
    component_extra: str = "",
) -> Path:
    """A configuration for a component reaching the test's server at the endpoint ``server``.

    ``component_extra`` goes into [component], ``extra`` after [handlers].
    """
    listed = ", ".join(f'"{directory}"' for directory in directories)
    path.write_text(
        f"""
[component]
jid = "iq.localhost"
secret_file = "{secret_file}"
server = "{server}"
reconnect_max = 2.0
{component_extra}
[handlers]
directories = [{listed}]
{extra}
"""
    )
    return path


@contextmanager
def instances(config: Path, shared: str, names: Sequence[str]) -> Iterator[list[ComponentProcess]]:
    """One configuration run as several processes under the name ``shared``, each also under one of ``names``.

    Yields them once each is authenticated under both names; stops them after, and fails if one logged a failure.
    """
    changed = threading.Condition()  # shared, so that a wait can watch every instance's log at once
    processes = [ComponentProcess(config, "--instance-jid", name, changed=changed) for name in names]
    try:
        for process, name in zip(processes, names, strict=True):
            process.wait_for_log(f"Authenticated as {shared} ")
            process.wait_for_log(f"Authenticated as {name} ")
        yield processes
    finally:
        for process in processes:
            process.stop()
    assert [text for process in processes for text in process.failures()] == []
