"""A private PostgreSQL cluster on 127.0.0.1, for the store's tests and benchmarks.

pytest-postgresql's ``PostgreSQLExecutor`` carries the cluster: it runs ``initdb`` once and
``pg_ctl start``/``stop`` on the same data directory, through mirakuru. What stays here is what
it cannot know: where Debian keeps ``pg_ctl`` (``/usr/lib/postgresql/<version>/bin``, on no
PATH), that PostgreSQL refuses to run as root (so as root every ``pg_ctl`` runs as the
``postgres`` user, in a directory that user owns), that pytest-postgresql turns fsync off
(which a durability test must not have), and a directory of the cluster's own under /tmp that
is removed afterwards, even when a caller forgets.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from mirakuru.exceptions import AlreadyRunning, ProcessExitedWithError, TimeoutExpired
from pytest_postgresql.executors import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from private_servers.base import LOOPBACK, POLL_INTERVAL, free_port, tail

DEBIAN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
"""The database superuser initdb creates, and the system user that runs PostgreSQL for root."""
TEMPORARY_PARENT = Path("/tmp")
"""Where clusters live: reachable by the postgres user (pytest's and $TMPDIR's directories may not be), and short
enough for a unix socket's path."""

# Clusters whose directory still exists, removed at interpreter exit so that a run that forgets
# remove() (or dies on an exception) leaves no server and no data behind.
_unremoved: set[PostgreSQLCluster] = set()


class PostgreSQLNotInstalled(RuntimeError):
    """No PostgreSQL server binaries where Debian's packages put them."""


def find_pg_ctl(root: Path = DEBIAN_ROOT) -> Path:
    """The ``pg_ctl`` of the highest PostgreSQL version installed under ``root`` (``<root>/<version>/bin``).

    Not from PATH: Debian links only the client programs there.
    """
    found = [path for path in root.glob("*/bin/pg_ctl") if path.parent.parent.name.isdigit()]
    if not found:
        raise PostgreSQLNotInstalled(
            f"PostgreSQL is not installed: no {root}/<version>/bin/pg_ctl (`make postgresql` installs Debian's package)"
        )
    return max(found, key=lambda path: int(path.parent.parent.name))


class PostgreSQLCluster:
    """One PostgreSQL server on 127.0.0.1 at a free port, with its data in a temporary directory of its own.

    ``start()`` creates the cluster the first time and starts it again on the same port and data
    after ``stop()``; ``remove()`` stops it and deletes the directory. As a context manager it
    starts on entry and is removed on exit. Clients connect over TCP as the superuser
    ``postgres`` without a password; ``new_database()`` gives each caller a database of its own.

    fsync is on unless ``fsync=False``, which also turns off synchronous commits and full page
    writes: faster, for uses that never ask whether data survives a crash.
    """

    def __init__(self, *, fsync: bool = True, timeout: float = 30.0, pg_ctl: Path | None = None) -> None:
        self.pg_ctl = pg_ctl or find_pg_ctl()
        self.fsync = fsync
        self.timeout = timeout
        """Seconds for initdb, for the server to start, and for it to stop."""
        self.host = LOOPBACK
        self.port = free_port()
        self.user = SUPERUSER
        self.directory: Path | None = None
        """The cluster's own directory, from the first start() until remove()."""
        self._executor: PostgreSQLExecutor | None = None
        self._database_numbers = itertools.count(1)
        self._runs_as = _system_user_for_postgresql()

    @property
    def data_directory(self) -> Path:
        return self._cluster_directory / "data"

    @property
    def log_path(self) -> Path:
        return self._cluster_directory / "postgresql.log"

    @property
    def _cluster_directory(self) -> Path:
        """What PostgreSQL writes (data, log, unix socket); owned by the user that runs it."""
        if self.directory is None:
            raise RuntimeError("the cluster has no directory: it was never started, or was removed")
        return self.directory / "cluster"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while the server runs, else None."""
        if self._executor is None or not self._executor.running():
            return None
        return int((self.data_directory / "postmaster.pid").read_text().split("\n", 1)[0])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def new_database(self, name: str | None = None) -> str:
        """Create an empty database (named ``name``, or a fresh name) and return its URL."""
        name = name or f"database_{next(self._database_numbers)}"
        DatabaseJanitor(
            user=self.user, host=self.host, port=self.port, dbname=name, connection_timeout=int(self.timeout)
        ).init()
        return self.url(name)

    def start(self) -> None:
        """Start the server (creating the cluster the first time) and wait until it accepts connections.

        Raises RuntimeError, with the tail of the server's log, if the port is taken, if the
        server exits, or if it is not ready within ``timeout`` seconds.
        """
        if self._executor is None:
            self._executor = self._create()
        executor = self._executor
        try:
            executor.start()
            # pg_ctl start -w exits once the server is ready. Forget it then, so that stopping
            # signals no process group by its pid, which may be another process's by then;
            # pg_ctl stop finds the server by the pid in its data directory.
            launcher, executor.process = executor.process, None
            if launcher is not None:
                with launcher:
                    launcher.wait(self.timeout)
        except AlreadyRunning:
            raise RuntimeError(f"port {self.port} on {self.host} is already in use") from None
        except (ProcessExitedWithError, TimeoutExpired, subprocess.SubprocessError) as error:
            self.stop()
            raise RuntimeError(
                f"PostgreSQL did not start: {error}\n--- {self.log_path}:\n{tail(self.log_path)}"
            ) from None

    def stop(self) -> None:
        """Stop the server (pg_ctl's fast shutdown: clients are disconnected, data is kept). Safe to repeat."""
        if self._executor is not None and self._executor.running():
            self._executor.stop()

    def remove(self) -> None:
        """Stop the server and delete its directory. Safe to repeat."""
        self.stop()
        _unremoved.discard(self)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
        self._executor = None

    def _create(self) -> PostgreSQLExecutor:
        self.directory = Path(tempfile.mkdtemp(prefix="iqresponder-postgresql-", dir=TEMPORARY_PARENT))
        _unremoved.add(self)
        self._cluster_directory.mkdir()
        executable = self.pg_ctl
        if self._runs_as is not None:
            self.directory.chmod(0o711)  # postgres passes through to its own directory, and sees nothing else here
            os.chown(self._cluster_directory, self._runs_as.pw_uid, self._runs_as.pw_gid)
            executable = self._write_pg_ctl_as(self._runs_as)
        options = ["-c listen_addresses=127.0.0.1"]
        if self.fsync:
            options.append("-c fsync=on")  # pytest-postgresql starts the server with -F (fsync off)
        else:
            options.append("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        return PostgreSQLExecutor(
            executable=str(executable),
            host=self.host,
            port=self.port,
            datadir=str(self.data_directory),
            unixsocketdir=str(self._cluster_directory),
            logfile=str(self.log_path),
            startparams=f"-w -t {int(self.timeout)}",
            dbname="postgres",
            timeout=int(self.timeout),
            sleep=POLL_INTERVAL,
            user=self.user,
            postgres_options=" ".join(options),
        )

    def _write_pg_ctl_as(self, user: pwd.struct_passwd) -> Path:
        """A pg_ctl that runs the real one as ``user``; outside the directory that user owns, which root runs it from."""
        wrapper = self.directory / "pg_ctl"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"cd {shlex.quote(str(self._cluster_directory))} || exit 1\n"
            f"exec setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --init-groups -- "
            f'{shlex.quote(str(self.pg_ctl))} "$@"\n'
        )
        wrapper.chmod(0o700)
        return wrapper

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.remove()


def _system_user_for_postgresql() -> pwd.struct_passwd | None:
    """The user to run PostgreSQL as: ``postgres`` when this process is root (which PostgreSQL refuses), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgreSQLNotInstalled(
            f"PostgreSQL refuses to run as root, and there is no {SUPERUSER} user to run it as "
            "(Debian's postgresql package creates it)"
        ) from None


@atexit.register
def _remove_all() -> None:
    for cluster in list(_unremoved):
        cluster.remove()
